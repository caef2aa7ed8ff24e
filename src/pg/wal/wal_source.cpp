#include "pg/wal/wal_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/errors.h"
#include "pg/common/conninfo.h"
#include "pg/common/libpq_exec.h"
#include "pg/common/parking.h"
#include "pg/common/session.h"
#include "pg/decode/lsn.h"
#include "pg/wal/failover.h"
#include "pg/wal/replication_stream.h"
#include "pg/wal/slot_setup.h"

namespace outbox_relay::pg {

namespace {

using std::chrono::milliseconds;

// How often fetch() asks the server where it is while not caught up (keepalive with reply requested).
constexpr milliseconds kCatchUpProbe{50};

// Connect timeout for each standby of --db-url asked whether it holds a copy of the slot.
constexpr milliseconds kStandbyProbeTimeout{3000};

}  // namespace

void WalSource::ConnCloser::operator()(pg_conn* c) const noexcept { PQfinish(c); }

WalSource::WalSource(WalSourceConfig cfg, core::Router router)
    : cfg_(std::move(cfg)),
      router_(router),
      redacted_(redact_conninfo(cfg_.conninfo)),
      stream_(std::make_unique<ReplicationStream>(cfg_.slot, cfg_.command_timeout)),
      assembler_(std::move(router), {}) {
  if (!valid_slot_name(cfg_.slot)) {
    throw core::ConfigError("invalid slot name \"" + cfg_.slot +
                            "\": use 1 to 63 lower-case letters, digits and underscores");
  }
  if (cfg_.publication.empty()) throw core::ConfigError("the publication name is empty");
  if (cfg_.table.empty()) throw core::ConfigError("the table name is empty");
  if (cfg_.status_interval.count() <= 0) throw core::ConfigError("the status interval must be positive");
  (void)parse_conninfo(cfg_.conninfo);  // ConfigError naming the problem, never the string
}

WalSource::~WalSource() { close(); }

std::string WalSource::describe() const {
  return "wal slot \"" + cfg_.slot + "\" publication \"" + cfg_.publication + "\" table \"" + cfg_.table +
         "\" (" + redacted_ + ")";
}

// ---- open ------------------------------------------------------------------------------------------

void WalSource::open() {
  const int previous_walsender = stream_->backend_pid();
  close();
  restart_ = false;
  try {
    connect_primary();
    check_server(meta_.get(), cfg_, warned_keep_size_);
    table_ = resolve_table(meta_.get(), cfg_, router_.layout());
    check_relay_tables(meta_.get(), cfg_);
    make_assembler();
    ensure_publication(meta_.get(), cfg_, table_);
    auto slot = inspect_slot(meta_.get(), cfg_, previous_walsender);
    if (!slot.exists) {
      if (stream_->slot_seen()) {
        throw core::FatalError("replication slot \"" + cfg_.slot + "\" was dropped" +
                               (promoted() ? " or never synchronized to the promoted standby " + host_ : "") +
                               ": refusing to restart from now, which would lose events");
      }
      refuse_if_slot_was_dropped(meta_.get(), cfg_);
      if (!cfg_.create_slot) {
        throw core::ConfigError("replication slot \"" + cfg_.slot +
                                "\" does not exist: create it (pg_create_logical_replication_slot('" +
                                cfg_.slot + "', 'pgoutput')) or let the relay create it");
      }
      create_slot(stream_->connection(), cfg_);
      slot = inspect_slot(meta_.get(), cfg_, stream_->backend_pid());
      if (!slot.exists)
        throw core::TransientError("replication slot \"" + cfg_.slot + "\" vanished after creation");
      remember_slot(meta_.get(), cfg_, slot.confirmed_flush);
    }
    align_slot_failover(stream_->connection(), cfg_, slot);
    // Not past a hold of exactly-once recovery (its rows to park would not be read again): the
    // checkpoint is applied again after every open, and holds again.
    auto start = std::max(confirmable(), slot.confirmed_flush);
    if (promoted()) start = follow_promotion(slot);
    target_ = current_wal_lsn(meta_.get(), cfg_);
    stream_->start(start, cfg_.publication, !cfg_.message_prefix.empty());
    assembler_.reset();
    queue_.reset(start);
    idle_position_ = start;
    streamed_ = start;
    held_.reset();
    last_activity_ = Clock::now();
    send_status(!position_reached());
    stream_->mark_slot_seen();
    system_id_ = stream_->system_id();
    timeline_ = stream_->timeline();
  } catch (...) {
    close();
    throw;
  }
  spdlog::info(
      "streaming slot \"{}\" from {} (publication \"{}\", table \"{}.{}\", caught up at {}) on {} (timeline "
      "{})",
      cfg_.slot, format_lsn(queue_.confirmed()), cfg_.publication, table_.schema, table_.name,
      format_lsn(target_), host_, timeline_);
  if (!failover_reported_) {
    failover_reported_ = true;
    report_failover();
  }
}

void WalSource::connect_primary() {
  const auto hosts = split_hosts(
      session_params(cfg_.conninfo, {"outbox-relay", cfg_.command_timeout, cfg_.session_timeout}));
  std::string skipped;
  for (const auto& params : hosts) {
    const auto label = host_label(params);
    auto meta_params = params;
    meta_params.erase("replication");
    std::string why;
    try {
      meta_.reset(connect_libpq(meta_params, "could not connect to " + label).release());
      stream_->connect(params, label, cfg_.session_timeout);
      if (stream_->in_recovery()) {
        why = label + " is a standby (in recovery)";
      } else if (!system_id_.empty() && stream_->system_id() == system_id_ &&
                 stream_->timeline() < timeline_) {
        why = label + " is on timeline " + std::to_string(stream_->timeline()) + ", behind timeline " +
              std::to_string(timeline_) + " that the relay followed (an old primary that came back)";
      } else {
        host_ = label;
        return;
      }
    } catch (const core::TransientError& e) {
      why = e.what();
    }
    stream_->close();
    meta_.reset();
    skipped += (skipped.empty() ? "" : "; ") + why;
  }
  throw core::TransientError("no primary to stream slot \"" + cfg_.slot + "\" from: " + skipped);
}

bool WalSource::promoted() const {
  return !system_id_.empty() && stream_->system_id() == system_id_ && stream_->timeline() != timeline_;
}

uint64_t WalSource::follow_promotion(const SlotInfo& slot) {
  const auto tli = stream_->timeline();
  spdlog::warn(
      "following the new primary {} (timeline {} -> {}): resuming slot \"{}\" from its synchronized position "
      "{}; events after it may be published again",
      host_, timeline_, tli, cfg_.slot, format_lsn(slot.confirmed_flush));
  if (const auto branch = stream_->timeline_start(tli); branch && queue_.confirmed() > *branch) {
    spdlog::error(
        "slot \"{}\" was confirmed up to {} on the old primary, past {} where timeline {} began: events "
        "published from that WAL may be missing on the new primary (set synchronized_standby_slots on the "
        "primary so the relay receives nothing a standby lacks)",
        cfg_.slot, format_lsn(queue_.confirmed()), format_lsn(*branch), tli);
  }
  failover_reported_ = false;  // the new primary's standbys (if any) are checked again
  // The in-memory position belongs to the old timeline: only the slot's copy is known to hold here.
  queue_.reset(slot.confirmed_flush);
  return slot.confirmed_flush;
}

void WalSource::report_failover() noexcept {
  try {
    auto facts = primary_failover_facts(
        libpq_query(meta_.get(), cfg_.command_timeout, "could not check the slot's failover readiness"),
        cfg_.slot);
    probe_standbys(cfg_.conninfo, host_, cfg_.slot, kStandbyProbeTimeout, facts);
    const auto verdict = judge_failover(facts, cfg_.slot, cfg_.failover_slot);
    for (const auto& line : verdict.fine) spdlog::info("failover: {}", line);
    for (const auto& line : verdict.warnings) spdlog::warn("failover: {}", line);
  } catch (const std::exception& e) {
    spdlog::warn("could not check whether slot \"{}\" survives a failover: {}", cfg_.slot, e.what());
  }
}

void WalSource::connect_meta() {
  auto hosts = split_hosts(
      session_params(cfg_.conninfo, {"outbox-relay", cfg_.command_timeout, cfg_.session_timeout}));
  // The node the stream is on, not whichever host of the list answers first.
  auto it = std::find_if(hosts.begin(), hosts.end(), [&](const auto& h) { return host_label(h) == host_; });
  auto params = it != hosts.end() ? *it : hosts.front();
  params.erase("replication");
  meta_.reset(connect_libpq(params, "could not connect to " + host_label(params)).release());
}

void WalSource::make_assembler() {
  TransactionAssembler::Options opts;
  opts.table_schema = table_.schema;
  opts.table_name = table_.name;
  opts.message_prefix = cfg_.message_prefix;
  opts.chunk_bytes = cfg_.chunk_bytes;
  opts.warn = [](const std::string& text) noexcept {
    try {
      spdlog::warn("{}", text);
    } catch (...) {
    }
  };
  assembler_ = TransactionAssembler(router_, std::move(opts));
}

// ---- streaming ---------------------------------------------------------------------------------------

bool WalSource::position_reached() const { return std::max(queue_.confirmed(), idle_position_) >= target_; }

bool WalSource::enough_ready(std::size_t stop_at_records) const {
  return queue_.has_ready() &&
         (queue_.ready_bytes() >= cfg_.max_buffered_bytes || queue_.ready_records() >= stop_at_records);
}

bool WalSource::pump(std::size_t stop_at_records) {
  if (!stream_->streaming())
    throw core::TransientError("wal source on slot \"" + cfg_.slot + "\" is not streaming");
  for (;;) {
    if (enough_ready(stop_at_records)) return false;
    stream_->receive();
    bool got = false;
    while (auto msg = stream_->next()) {
      got = true;
      handle(*msg);
      if (enough_ready(stop_at_records)) return false;
    }
    if (!got) return true;
  }
}

void WalSource::handle(const CopyMessage& msg) {
  if (const auto* k = std::get_if<PrimaryKeepalive>(&msg)) {
    if (!assembler_.in_transaction()) {
      idle_position_ = std::max(idle_position_, k->end_lsn);
      streamed_ = std::max(streamed_, k->end_lsn);
    }
    if (k->reply_requested) send_status(false);
  } else {
    handle_data(std::get<XLogData>(msg));
  }
  if (held_ && streamed_ >= held_->through) {
    if (held_->parked > 0)
      spdlog::info("exactly-once recovery: {} malformed rows of transactions already in Kafka parked",
                   held_->parked);
    held_.reset();
  }
}

void WalSource::handle_data(const XLogData& x) {
  last_activity_ = Clock::now();
  std::optional<Transaction> txn;
  try {
    txn = assembler_.feed_bytes(x.payload);
  } catch (const DecodeError& e) {
    throw core::FatalError("could not decode the replication stream of slot \"" + cfg_.slot + "\" at " +
                           format_lsn(x.start_lsn) + ": " + e.what());
  }
  park_skipped(assembler_.take_skipped_rejected());
  if (!txn) return;
  idle_position_ = std::max(idle_position_, txn->end_lsn);
  streamed_ = std::max(streamed_, txn->end_lsn);
  const auto end = txn->end_lsn;
  if (end > queue_.confirmed()) {
    queue_.push(std::move(*txn));
    return;
  }
  spdlog::debug("skipped transaction ending at {}: confirmed already", format_lsn(end));
  if (held_ && end > held_->from) park_skipped(std::move(txn->rejected));
}

uint64_t WalSource::confirmable() const {
  return held_ ? std::min(queue_.confirmed(), held_->from) : queue_.confirmed();
}

void WalSource::send_status(bool request_reply) { stream_->send_status(confirmable(), request_reply); }

bool WalSource::stream_idle() const { return queue_.idle() && !assembler_.in_transaction(); }

// The server's answer to a reply request (a keepalive: how far it has sent) tells an idle stream that
// it is caught up, or (held_) how far it has been read.
bool WalSource::wants_reply() const { return stream_idle() && (!position_reached() || held_); }

WalSource::Clock::time_point WalSource::next_timer() const {
  auto t = stream_->last_status() + cfg_.status_interval;
  const bool idle = stream_idle();
  if (wants_reply()) t = std::min(t, stream_->last_reply_request() + kCatchUpProbe);
  if (idle && idle_position_ > queue_.confirmed()) t = std::min(t, last_activity_ + cfg_.heartbeat_interval);
  return t;
}

void WalSource::tick() {
  const auto now = Clock::now();
  const bool idle = stream_idle();
  if (idle && idle_position_ > queue_.confirmed() && now - last_activity_ >= cfg_.heartbeat_interval &&
      queue_.advance_idle(idle_position_)) {
    spdlog::debug("nothing to relay up to {}: moving slot \"{}\" there", format_lsn(idle_position_),
                  cfg_.slot);
  }
  const bool probe = wants_reply() && now - stream_->last_reply_request() >= kCatchUpProbe;
  if (probe || confirmable() != stream_->sent_flush() || now - stream_->last_status() >= cfg_.status_interval)
    send_status(probe);
}

void WalSource::service() {
  if (!stream_->streaming()) return;
  (void)pump(SIZE_MAX);
  tick();
}

core::Batch WalSource::fetch(std::size_t max, std::chrono::milliseconds wait) {
  if (!stream_->streaming() || restart_)
    throw core::TransientError("wal source on slot \"" + cfg_.slot + "\" is not streaming");
  const bool behind = queue_.in_flight();  // pipelined: another batch awaits its acknowledgements
  max = std::max<std::size_t>(max, 1);
  const auto start = Clock::now();
  const auto deadline = start + wait;
  const auto floor = start + std::max(wait, cfg_.min_wait);
  for (;;) {
    const bool drained = pump(max);
    tick();
    const auto now = Clock::now();
    if (queue_.has_ready() && (drained || now >= deadline || queue_.ready_records() >= max ||
                               queue_.ready_bytes() >= cfg_.max_buffered_bytes)) {
      const auto before = queue_.confirmed();
      auto batch = queue_.take(max, cfg_.max_batch_bytes);
      if (!batch.empty()) {
        last_activity_ = now;
        return batch;
      }
      if (behind) return batch;                              // transactions without records wait
      if (queue_.confirmed() != before) send_status(false);  // only transactions without records
      continue;
    }
    if (now >= deadline && (behind || caught_up() || now >= floor)) return {};
    if (woken_.exchange(false)) return {};
    stream_->wait_readable(std::min(now >= deadline ? floor : deadline, next_timer()));
  }
}

// ---- commit ------------------------------------------------------------------------------------------

core::Checkpoint WalSource::checkpoint(const core::Batch& batch, const core::Settlement& settlement) const {
  core::Checkpoint c;
  TxnQueue::Partial partial = queue_.partial();
  if (batch.empty()) {
    c.position = queue_.confirmed();
  } else {
    const auto plan = queue_.plan(batch, settlement);
    c.position = plan.confirm;
    partial = plan.partial;
  }
  c.partial_lsn = partial.commit_lsn;
  c.partial_records = partial.records;
  return c;
}

std::optional<core::Checkpoint> WalSource::expected_checkpoint(const core::Batch& batch) const {
  if (batch.empty()) return std::nullopt;
  const auto [confirm, partial] = queue_.settled_through(batch);
  core::Checkpoint c;
  c.position = confirm;
  c.partial_lsn = partial.commit_lsn;
  c.partial_records = partial.records;
  return c;
}

// Transactions ending at or before the checkpoint are in Kafka: skipped, and the slot confirmed there.
// A transaction published in part (and not behind the slot already): its first records are dropped as it
// streams in again.
void WalSource::recover(const core::Checkpoint& checkpoint) {
  const bool partial = checkpoint.partial_records > 0 &&
                       checkpoint.partial_lsn >= std::max(queue_.confirmed(), checkpoint.position);
  if (partial) {
    if (queue_.has_ready() || queue_.in_flight() || assembler_.in_transaction()) {
      // Only right after open() is nothing of it buffered yet; start the stream over.
      throw core::TransientError("wal source on slot \"" + cfg_.slot +
                                 "\": restarting the stream to apply the exactly-once checkpoint");
    }
    spdlog::info(
        "exactly-once checkpoint applied: the first {} records of the transaction committed at {} "
        "are in Kafka already, not re-sent",
        checkpoint.partial_records, format_lsn(checkpoint.partial_lsn));
    assembler_.skip_records(checkpoint.partial_lsn, checkpoint.partial_records);
  } else if (checkpoint.position <= queue_.confirmed()) {
    return;
  }
  if (checkpoint.position > queue_.confirmed()) {
    spdlog::info("exactly-once checkpoint applied: slot \"{}\" confirmed up to {} without re-sending",
                 cfg_.slot, format_lsn(checkpoint.position));
  }
  if (checkpoint.position > queue_.confirmed()) held_ = Held{queue_.confirmed(), checkpoint.position, 0};
  park_skipped(queue_.skip_through(
      checkpoint.position,
      partial ? TxnQueue::Partial{checkpoint.partial_lsn, checkpoint.partial_records} : TxnQueue::Partial{}));
  idle_position_ = std::max(idle_position_, checkpoint.position);
  if (stream_->streaming()) send_status(false);
}

void WalSource::commit(const core::Batch& batch, const core::Settlement& settlement) {
  const auto plan = queue_.plan(batch, settlement);
  if (!settlement.park.empty()) park(batch, settlement);
  const auto before = queue_.confirmed();
  queue_.finish(plan, batch);
  last_activity_ = Clock::now();
  if (plan.retry) {
    spdlog::debug("confirmed up to {} on slot \"{}\"; the rest of the batch will be fetched again",
                  format_lsn(queue_.confirmed()), cfg_.slot);
  }
  if (queue_.confirmed() != before && stream_->streaming()) send_status(false);
}

// Parks (once: a row parked already is not added again; a crash may come between the parking and the
// slot's confirmation) the malformed rows of transactions skipped by exactly-once recovery.
void WalSource::park_skipped(std::vector<core::RejectedRow> rows) {
  if (rows.empty()) return;
  core::Batch batch;
  batch.rejected = std::move(rows);
  core::Settlement settlement;
  for (std::size_t i = 0; i < batch.rejected.size(); ++i)
    settlement.park.push_back({i, true, batch.rejected[i].error});
  park(batch, settlement, true);
  for (const auto& r : batch.rejected)
    spdlog::warn("parked malformed event \"{}\" (recovery: its transaction is in Kafka): {}", r.row.id,
                 r.error);
  if (held_) held_->parked += batch.rejected.size();
}

void WalSource::park(const core::Batch& batch, const core::Settlement& settlement, bool once) {
  const std::string what = "could not park poison events";
  if (!meta_ || PQstatus(meta_.get()) != CONNECTION_OK) connect_meta();
  if (!parked_table_ready_) {
    ensure_parked_table(
        libpq_query(meta_.get(), cfg_.command_timeout, "could not create table \"outbox_relay_parked\""));
    parked_table_ready_ = true;
  }
  const auto rows = parked_rows_json(batch, settlement, router_.layout(), "wal slot " + cfg_.slot);
  const auto r = exec(meta_.get(), insert_parked_sql(1, "", once), {rows}, cfg_.command_timeout, what);
  if (!ok(r)) throw_query_error(r, what);
}

void WalSource::abandon(const core::Batch& batch) noexcept {
  try {
    queue_.abandon(batch);
  } catch (...) {  // out of memory giving the records back: the stream starts over from the slot instead
    queue_.reset(queue_.confirmed());
    idle_position_ = queue_.confirmed();  // nothing read past it may be confirmed: it was dropped
    restart_ = true;
  }
}

bool WalSource::caught_up() const { return stream_->streaming() && stream_idle() && position_reached(); }

void WalSource::close() noexcept {
  if (stream_->streaming()) {
    try {
      if (!assembler_.in_transaction() && !restart_) queue_.advance_idle(idle_position_);
      send_status(false);
    } catch (...) {  // best effort: the position is sent again after the next open()
    }
  }
  stream_->close();
  meta_.reset();
}

}  // namespace outbox_relay::pg
