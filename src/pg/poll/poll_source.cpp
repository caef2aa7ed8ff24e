#include "pg/poll/poll_source.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "core/errors.h"
#include "pg/common/catalog.h"
#include "pg/common/conninfo.h"
#include "pg/common/parking.h"
#include "pg/common/preflight.h"
#include "pg/common/session.h"
#include "pg/common/sql_text.h"
#include "pg/decode/text_codec.h"

namespace outbox_relay::pg {

namespace {

[[noreturn]] void rethrow_as_transient(const std::string& what, const std::exception& e) {
  throw core::TransientError(what + ": " + e.what());
}

// The claimed rows, mapped: records in batch.messages, rows the router cannot map in batch.rejected.
void map_rows(const pqxx::result& rows, const core::Router& router, bool value_is_bytea, core::Batch& batch) {
  batch.messages.reserve(rows.size());
  const auto ncols = rows.columns();
  std::vector<std::string> names;
  for (pqxx::row::size_type i = 0; i < ncols; ++i) names.emplace_back(rows.column_name(i));
  for (const auto& r : rows) {
    core::OutboxRow row;
    row.columns.reserve(ncols);
    for (pqxx::row::size_type i = 0; i < ncols; ++i) {
      core::Column c{names[i], std::nullopt};
      if (!r[i].is_null()) c.value.emplace(r[i].c_str(), r[i].size());
      row.columns.push_back(std::move(c));
    }
    row.id = row.columns[0].value.value_or("");
    if (value_is_bytea) {
      // bytea arrives as "\x<hex>": the record value is the raw bytes, as in WAL mode
      for (auto& c : row.columns) {
        if (c.name == router.layout().value_column && c.value) {
          if (auto raw = decode_bytea_hex(*c.value)) c.value = std::move(*raw);
        }
      }
    }
    auto mapped = router.map(row);
    if (mapped.index() == 0) {
      batch.messages.push_back(std::move(std::get<0>(mapped)));
    } else {
      const auto* key = row.find(router.layout().key_column);
      auto key_value = key != nullptr ? *key : std::nullopt;
      batch.rejected.push_back(
          {std::move(row), std::move(std::get<1>(mapped)), std::move(key_value), batch.messages.size()});
    }
  }
}

}  // namespace

struct PollSource::Session {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<pqxx::work> tx;                // the open claim, if any
  bool locked = false;                           // holds its lead advisory lock
  std::chrono::steady_clock::time_point used{};  // last statement (the server ends idle sessions)
};

class PollSource::Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection& c, const std::string& channel, bool& flag)
      : pqxx::notification_receiver(c, channel), flag_(flag) {}
  void operator()(const std::string& /*payload*/, int /*backend_pid*/) override { flag_ = true; }

 private:
  bool& flag_;
};

PollSource::PollSource(PollSourceConfig config, core::Router router)
    : config_(std::move(config)),
      router_(std::move(router)),
      watermark_(config_.full_scan_interval),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

PollSource::~PollSource() {
  close();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void PollSource::wake() noexcept {
  const uint64_t one = 1;
  if (wake_fd_ >= 0) [[maybe_unused]]
    auto n = ::write(wake_fd_, &one, sizeof one);
}

std::string PollSource::describe() const {
  return "poll source on table \"" + config_.table + "\" (" + redact_conninfo(config_.conninfo) + ")";
}

// One session with the relay's settings (keepalives, timeouts, claim plan).
void PollSource::connect(Session& s) {
  s.conn = std::make_unique<pqxx::connection>(session_conninfo(
      config_.conninfo, {"outbox-relay", std::chrono::seconds(10), config_.session_timeout}));
  // A dead or partitioned relay's session (and with it its claim and its lead) must not outlive
  // session_timeout on the server, or the standby could never take over.
  const auto ms = std::to_string(config_.session_timeout.count());
  const auto secs = std::max<long long>(1, config_.session_timeout.count() / 1000);
  pqxx::nontransaction n(*s.conn);
  // A paused (SIGSTOP) or hung leader idle between polls keeps an idle, healthy-looking session (its
  // kernel still answers keepalives): idle_session_timeout ends it too. A live relay is never idle that
  // long: it claims every --poll-interval and a standby tries the lock every standby_interval.
  n.exec("SET idle_in_transaction_session_timeout = '" + ms + "ms'; SET idle_session_timeout = '" + ms +
         "ms'; SET tcp_keepalives_idle = " + std::to_string(std::max<long long>(1, secs / 4)) +
         "; SET tcp_keepalives_interval = " + std::to_string(std::max<long long>(1, secs / 8)) +
         "; SET tcp_keepalives_count = 3; SET tcp_user_timeout = " + ms);
  // The claim must walk the pending index in id order and stop after `batch-size` rows. Outbox
  // statistics are almost always stale (the table fills and drains between analyzes), and with a
  // small row estimate the planner picks a bitmap scan that reads and sorts the whole backlog on
  // every claim (seen: 10-450 ms per claim at a 50k backlog, against 1-3 ms for the index scan).
  n.exec("SET enable_bitmapscan = off; SET enable_seqscan = off");
  if (config_.async_commit) n.exec("SET synchronous_commit = off");
}

void PollSource::open() {
  close();
  try {
    sessions_.resize(config_.pipeline ? 2 : 1);
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      connect(sessions_[i]);
      if (i == 0) inspect_table(sessions_[0]);
      auto& c = *sessions_[i].conn;
      c.prepare("claim", statements_.claim);
      if (statements_.watermark) {
        c.prepare("snapshot_xmax", statements_.snapshot_xmax);
        c.prepare("advance", statements_.advance);
      }
      c.prepare("done", statements_.done);
      c.prepare("park", statements_.park);
    }
    leader_ = false;
    watermark_.reset();  // a new leader (or a new session) learns the watermark again
    parked_table_ready_ = false;
    listener_ = std::make_unique<Listener>(*sessions_[0].conn, config_.notify_channel, notified_);
  } catch (const pqxx::broken_connection& e) {
    close();
    throw_connect_error(config_.conninfo, "could not connect to " + redact_conninfo(config_.conninfo),
                        e.what());
  } catch (const pqxx::sql_error& e) {
    close();
    if (e.sqlstate().rfind("08", 0) == 0 || e.sqlstate().rfind("57P", 0) == 0) {
      rethrow_as_transient("could not prepare " + describe(), e);
    }
    throw core::FatalError("could not prepare " + describe() + ": " + e.what());
  }
  spdlog::info("connected: {}{}", describe(), sessions_.size() > 1 ? " (2 sessions, pipelined)" : "");
}

void PollSource::inspect_table(Session& s) {
  pqxx::nontransaction n(*s.conn);
  const auto query = pqxx_query(n);
  const auto table = describe_table(query, config_.table);
  if (!table) throw core::ConfigError(missing_table_message(query, config_.table));
  const auto& layout = router_.layout();
  for (const auto& col : layout.required_columns()) {
    if (!table->has(col)) {
      throw core::ConfigError("table \"" + config_.table + "\" has no column \"" + col +
                              "\" required by the \"" + layout.name + "\" layout");
    }
  }
  const auto& order = config_.order_column.empty() ? layout.id_column : config_.order_column;
  if (!table->has(order)) {
    throw core::ConfigError("--order-by: table \"" + config_.table + "\" has no column \"" + order + "\"");
  }
  if (table->type_of(order) == "uuid") {
    // A uuid does not follow the commit order: one aggregate's events would go out of order, silently.
    if (!config_.allow_unordered) {
      throw core::ConfigError(
          "table \"" + config_.table + "\" would be claimed in order of column \"" + order +
          "\" (uuid), which is not the order events were written in: add an ordering column (ALTER TABLE " +
          config_.table +
          " ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY; or `outbox-relay migrate "
          "--layout debezium --table " +
          config_.table +
          "`) and set --order-by seq, use --mode wal, or accept "
          "unordered delivery with --unordered");
    }
    spdlog::warn(
        "claiming from \"{}\" in order of column \"{}\" (uuid) with --unordered: events of one "
        "aggregate may be published out of order",
        config_.table, order);
  }
  if (config_.on_sent == OnSent::kMark && !table->has("sent_at")) {
    throw core::ConfigError("--on-sent=mark needs a \"sent_at\" column in table \"" + config_.table + "\"");
  }
  if (const auto problem = column_type_problem(*table, layout, true)) throw core::ConfigError(*problem);
  value_is_bytea_ = table->type_of(layout.value_column) == "bytea";
  statements_ = claim_statements(layout, *table, config_);
  // The lead is the table's, however --table names it (outbox, public.outbox, "public"."outbox").
  table_identity_ = table->schema + "." + table->name;
  check_privileges(query, *table);
  inspected_ = true;
}

// What claiming, marking and parking need. A role without them would publish every batch and fail to
// commit it, again and again: at start that is the operator's to fix (ConfigError); a privilege revoked
// while the relay runs fails each reconnect (TransientError, backing off) until it is granted again.
void PollSource::check_privileges(const TextQuery& query, const TableShape& table) {
  std::vector<Privilege> needed = {{"SELECT", "to read events"},
                                   {"UPDATE", "to claim rows with SELECT ... FOR UPDATE"}};
  if (config_.on_sent == OnSent::kDelete) needed.push_back({"DELETE", "for --on-sent=delete"});
  if (!statements_.failed_columns)
    needed.push_back({"DELETE", "to move poison events to outbox_relay_parked"});
  auto problem = privilege_problem(query, table, needed);
  if (!problem && !statements_.failed_columns) problem = parked_table_problem(query);
  if (!problem) return;
  if (!inspected_) throw core::ConfigError(*problem);
  throw core::TransientError(*problem);
}

// Waits for a NOTIFY on the channel, a wake(), or `wait`, whichever comes first.
void PollSource::wait_for_notification(std::chrono::milliseconds wait) {
  // The server ends a session idle for session_timeout (idle_session_timeout): come back and claim
  // well before that, however long the poll interval.
  wait = std::min(wait, config_.session_timeout / 3);
  if (wait.count() <= 0) return;
  notified_ = false;
  auto& conn = *sessions_[0].conn;
  conn.get_notifs();  // notifications that arrived while the claim ran
  if (notified_) return;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
            .count();
    if (left <= 0) return;
    pollfd fds[2] = {{conn.sock(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 60'000)));
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) {
      uint64_t v = 0;
      [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
      return;
    }
    if (fds[0].revents != 0) {
      conn.get_notifs();  // throws broken_connection if the server went away
      if (notified_) return;
    }
  }
}

// Takes the lead if no other relay holds it (pg/poll/leadership.h).
bool PollSource::try_lead() {
  for (std::size_t i = 0; i < sessions_.size(); ++i) {
    auto& s = sessions_[i];
    if (s.locked) continue;
    s.used = std::chrono::steady_clock::now();
    s.locked = try_lead_lock(*s.conn, lead_lock_key(table_identity_, config_, i));
    if (!s.locked) break;
  }
  leader_ = std::all_of(sessions_.begin(), sessions_.end(), [](const Session& s) { return s.locked; });
  lead_log_.note(leader_, config_, describe());
  return leader_;
}

core::Batch PollSource::fetch(std::size_t max, std::chrono::milliseconds wait) {
  core::Batch batch;
  Session* session = nullptr;
  try {
    if (!leader_) {
      caught_up_ = false;
      // Taking the lead returns an empty batch first: the dispatcher applies the exactly-once checkpoint
      // (recover()) before this relay claims anything.
      if (try_lead()) return batch;
      for (auto& other : sessions_) keep_alive(other);
      // Not woken by NOTIFY: under write load that would turn standing by into a hot loop.
      pollfd fd{wake_fd_, POLLIN, 0};
      if (::poll(&fd, 1, static_cast<int>(config_.standby_interval.count())) > 0) {
        uint64_t v = 0;
        [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
      }
      return batch;
    }
    for (std::size_t i = 0; i < sessions_.size() && session == nullptr; ++i) {
      if (!sessions_[i].tx) {
        session = &sessions_[i];
        batch.source_tag = i;
      }
    }
    if (session == nullptr) throw std::logic_error("poll source: fetch with every session holding a claim");
    for (auto& other : sessions_) {
      if (&other != session && !other.tx) keep_alive(other);
    }
    session->used = std::chrono::steady_clock::now();
    session->tx = std::make_unique<pqxx::work>(*session->conn, "claim");
    const auto from = statements_.watermark ? watermark_.claim_floor(*session->tx) : Watermark::kHead;
    const auto rows = statements_.watermark
                          ? session->tx->exec_prepared("claim", static_cast<long>(max), from)
                          : session->tx->exec_prepared("claim", static_cast<long>(max));
    if (rows.empty()) {
      session->tx->commit();
      session->tx.reset();
      // Every row committed before this claim is claimed or above the watermark (it never passes a
      // pending row), so this is caught up. Rows made pending again below it (replay, a resolved block)
      // are found by a claim from the head: the next one (at most once a second), or the periodic one.
      caught_up_ = true;
      watermark_.claimed_nothing(from);
      if (batch.source_tag == 0) wait_for_notification(wait);
      return batch;
    }
    caught_up_ = false;
    if (statements_.watermark) watermark_.claimed(rows[rows.size() - 1][0].c_str());
    map_rows(rows, router_, value_is_bytea_, batch);
  } catch (const pqxx::sql_error& e) {
    if (session != nullptr) session->tx.reset();
    rethrow_as_transient("could not claim from \"" + config_.table + "\"", e);
  } catch (const pqxx::failure& e) {
    // broken_connection, and in_doubt_error: the connection broke during the commit that ends an empty claim
    if (session != nullptr) session->tx.reset();
    rethrow_as_transient("lost connection while claiming from \"" + config_.table + "\"", e);
  }
  return batch;
}

// A session that only claims under load (the pipeline's second one) would otherwise sit idle long
// enough for the server to end it, and with it its lead lock.
void PollSource::keep_alive(Session& s) {
  const auto now = std::chrono::steady_clock::now();
  if (now - s.used < config_.session_timeout / 3) return;
  s.used = now;
  pqxx::nontransaction n(*s.conn);
  n.exec("SELECT 1");
}

void PollSource::commit(const core::Batch& batch, const core::Settlement& settlement) {
  if (batch.source_tag >= sessions_.size() || !sessions_[batch.source_tag].tx)
    throw core::TransientError("no open claim to commit");
  auto& session = sessions_[batch.source_tag];
  auto& tx = session.tx;
  std::vector<std::string> done;
  done.reserve(settlement.done.size());
  for (const auto i : settlement.done) done.push_back(batch.messages[i].id);
  session.used = std::chrono::steady_clock::now();
  try {
    if (!done.empty()) tx->exec_prepared("done", array_literal(done));
    if (!settlement.park.empty()) park(session, batch, settlement);
    tx->commit();
    tx.reset();
  } catch (const pqxx::broken_connection& e) {
    tx.reset();
    rethrow_as_transient("lost connection while marking sent rows of \"" + config_.table + "\"", e);
  } catch (const pqxx::sql_error& e) {
    tx.reset();
    rethrow_as_transient("could not mark sent rows of \"" + config_.table + "\"", e);
  } catch (const pqxx::in_doubt_error& e) {
    tx.reset();
    rethrow_as_transient(
        "commit of sent rows of \"" + config_.table + "\" is in doubt (they may be sent again)", e);
  } catch (const pqxx::failure& e) {
    tx.reset();
    rethrow_as_transient("could not mark sent rows of \"" + config_.table + "\"", e);
  }
}

// With failed_at/error: marks each row failed with its reason. Without: moves the events to
// outbox_relay_parked (pg/common/parking.h), within the claim's transaction.
void PollSource::park(Session& s, const core::Batch& batch, const core::Settlement& settlement) {
  if (statements_.failed_columns) {
    for (const auto& p : settlement.park) s.tx->exec_prepared("park", parked_id(batch, p), p.reason);
    return;
  }
  if (!parked_table_ready_) {
    ensure_parked_table(pqxx_query(*s.tx));
    parked_table_ready_ = true;
  }
  std::vector<std::string> ids;
  ids.reserve(settlement.park.size());
  for (const auto& p : settlement.park) ids.push_back(parked_id(batch, p));
  s.tx->exec_prepared("park", array_literal(ids),
                      parked_rows_json(batch, settlement, router_.layout(), "table " + config_.table));
}

// The rows the last Kafka transaction published are marked as the commit after it would have.
void PollSource::recover(const core::Checkpoint& checkpoint) {
  if (checkpoint.ids.empty()) return;
  if (sessions_.empty()) throw core::TransientError("poll source is not connected");
  auto& s = sessions_[0];
  s.used = std::chrono::steady_clock::now();
  try {
    pqxx::work tx(*s.conn, "recover");
    const auto r = tx.exec_prepared("done", array_literal(checkpoint.ids));
    tx.commit();
    spdlog::info("exactly-once checkpoint applied: {} of {} rows it names marked sent without re-sending",
                 r.affected_rows(), checkpoint.ids.size());
  } catch (const pqxx::failure& e) {
    rethrow_as_transient("could not apply the checkpoint to \"" + config_.table + "\"", e);
  }
}

core::Checkpoint PollSource::checkpoint(const core::Batch& batch, const core::Settlement& settlement) const {
  core::Checkpoint c;
  c.ids.reserve(settlement.done.size());
  for (const auto i : settlement.done) c.ids.push_back(batch.messages[i].id);
  return c;
}

std::optional<core::Checkpoint> PollSource::expected_checkpoint(const core::Batch& batch) const {
  core::Checkpoint c;
  c.ids.reserve(batch.messages.size());
  for (const auto& m : batch.messages) c.ids.push_back(m.id);
  return c;
}

// Rolls back every open claim: a batch claimed behind the abandoned one must not be marked sent before
// the abandoned rows are published again.
void PollSource::abandon(const core::Batch& /*batch*/) noexcept {
  for (auto& s : sessions_) {
    if (!s.tx) continue;
    try {
      s.tx->abort();
    } catch (...) {
    }
    s.tx.reset();
  }
}

void PollSource::close() noexcept {
  leader_ = false;
  listener_.reset();
  for (auto& s : sessions_) s.tx.reset();
  sessions_.clear();
}

}  // namespace outbox_relay::pg
