#include "pg/poll/poll_source.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "core/errors.h"
#include "pg/common/conninfo.h"
#include "pg/common/sql_text.h"
#include "pg/decode/assembler.h"

namespace outbox_relay::pg {

namespace {

[[noreturn]] void rethrow_as_transient(const std::string& what, const std::exception& e) {
  throw core::TransientError(what + ": " + e.what());
}

}  // namespace

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
std::unique_ptr<pqxx::connection> PollSource::connect() {
  auto c = std::make_unique<pqxx::connection>(with_defaults(
      config_.conninfo, {{"application_name", "outbox-relay"},
                         {"connect_timeout", "10"},
                         {"keepalives_idle", "10"},
                         {"keepalives_interval", "5"},
                         {"keepalives_count", "3"},
                         // a statement on a silent link fails instead of blocking ~15 min
                         {"tcp_user_timeout", std::to_string(config_.session_timeout.count())}}));
  // A dead or partitioned relay's session (and with it its claim and its lead) must not outlive
  // session_timeout on the server, or the standby could never take over.
  const auto secs = std::max<long long>(1, config_.session_timeout.count() / 1000);
  pqxx::nontransaction n(*c);
  // A paused (SIGSTOP) or hung leader idle between polls keeps an idle, healthy-looking session (its
  // kernel still answers keepalives): idle_session_timeout ends it too. A live relay is never idle that
  // long: it claims every --poll-interval and a standby tries the lock every standby_interval.
  n.exec("SET idle_in_transaction_session_timeout = '" + std::to_string(config_.session_timeout.count()) +
         "ms'; SET idle_session_timeout = '" + std::to_string(config_.session_timeout.count()) +
         "ms'; SET tcp_keepalives_idle = " + std::to_string(std::max<long long>(1, secs / 4)) +
         "; SET tcp_keepalives_interval = " + std::to_string(std::max<long long>(1, secs / 8)) +
         "; SET tcp_keepalives_count = 3; SET tcp_user_timeout = " +
         std::to_string(config_.session_timeout.count()));
  // The claim must walk the pending index in id order and stop after `batch-size` rows. Outbox
  // statistics are almost always stale (the table fills and drains between analyzes), and with a
  // small row estimate the planner picks a bitmap scan that reads and sorts the whole backlog on
  // every claim (seen: 10-450 ms per claim at a 50k backlog, against 1-3 ms for the index scan).
  n.exec("SET enable_bitmapscan = off; SET enable_seqscan = off");
  return c;
}

void PollSource::open() {
  close();
  try {
    sessions_.resize(config_.pipeline ? 2 : 1);
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      sessions_[i].conn = connect();
      if (i == 0) inspect_table(*sessions_[0].conn);
      prepare_statements(*sessions_[i].conn);
    }
    leader_ = false;
    floor_ = INT64_MIN;  // a new leader (or a new session) learns the watermark again
    candidate_.reset();
    full_next_ = true;
    listener_ = std::make_unique<Listener>(*sessions_[0].conn, config_.notify_channel, notified_);
  } catch (const pqxx::broken_connection& e) {
    close();
    rethrow_as_transient("could not connect to " + redact_conninfo(config_.conninfo), e);
  } catch (const pqxx::sql_error& e) {
    close();
    if (e.sqlstate().rfind("08", 0) == 0 || e.sqlstate().rfind("57P", 0) == 0) {
      rethrow_as_transient("could not prepare " + describe(), e);
    }
    throw core::FatalError("could not prepare " + describe() + ": " + e.what());
  }
  spdlog::info("connected: {}{}", describe(), sessions_.size() > 1 ? " (2 sessions, pipelined)" : "");
}

void PollSource::inspect_table(pqxx::connection& c) {
  pqxx::nontransaction n(c);
  const auto rel = n.exec_params("SELECT to_regclass($1)::oid", config_.table);
  if (rel[0][0].is_null()) {
    throw core::ConfigError("table \"" + config_.table +
                            "\" does not exist (create it with `outbox-relay migrate` or set --table)");
  }
  const auto cols = n.exec_params(
      "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
      "WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped",
      rel[0][0].as<std::string>());
  std::map<std::string, std::string> types;
  for (const auto& r : cols) types[r[0].as<std::string>()] = r[1].as<std::string>();
  for (const auto& col : router_.layout().required_columns()) {
    if (!types.count(col)) {
      throw core::ConfigError("table \"" + config_.table + "\" has no column \"" + col +
                              "\" required by the \"" + router_.layout().name + "\" layout");
    }
  }
  id_type_ = types[router_.layout().id_column];
  const auto& order = config_.order_column.empty() ? router_.layout().id_column : config_.order_column;
  if (!types.count(order)) {
    throw core::ConfigError("--order-by: table \"" + config_.table + "\" has no column \"" + order + "\"");
  }
  if (types[order] == "uuid") {
    spdlog::warn(
        "claiming from \"{}\" in order of column \"{}\" (uuid): events of one aggregate may be published "
        "out of order; set --order-by to a sequence or timestamp column, or use --mode wal",
        config_.table, order);
  }
  value_is_bytea_ = types[router_.layout().value_column] == "bytea";
  watermark_ = order == router_.layout().id_column &&
               (id_type_ == "bigint" || id_type_ == "integer" || id_type_ == "smallint");
  has_failed_columns_ = types.count("failed_at") && types.count("error");
  if (config_.on_sent == OnSent::kMark && !types.count("sent_at")) {
    throw core::ConfigError("--on-sent=mark needs a \"sent_at\" column in table \"" + config_.table + "\"");
  }
  quoted_table_ = quote_qualified(c, config_.table);
}

void PollSource::prepare_statements(pqxx::connection& c) {
  const auto& layout = router_.layout();
  std::string select = "SELECT ";
  std::vector<std::string> present;
  {
    pqxx::nontransaction n(c);
    const auto cols = n.exec_params(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT "
        "attisdropped",
        config_.table);
    for (const auto& r : cols) present.push_back(r[0].as<std::string>());
  }
  bool first = true;
  for (const auto& col : layout.columns()) {
    if (std::find(present.begin(), present.end(), col) == present.end()) continue;  // optional, absent
    if (!first) select += ", ";
    first = false;
    const auto q = c.quote_name(col);
    if (col == layout.timestamp_column) {
      select += "(extract(epoch FROM o." + q + ") * 1000)::bigint::text AS " + q;
    } else {
      select += "o." + q + "::text AS " + q;
    }
  }
  std::string pending;
  if (std::find(present.begin(), present.end(), "sent_at") != present.end())
    pending += " AND o.sent_at IS NULL";
  if (has_failed_columns_) pending += " AND o.failed_at IS NULL";
  const auto key = c.quote_name(layout.key_column);
  if (config_.shard_count > 1) {
    pending += " AND mod(abs(hashtextextended(o." + key + "::text, 0)), " +
               std::to_string(config_.shard_count) + ") = " + std::to_string(config_.shard_index);
  }
  if (config_.skip_blocked_keys) {
    pending += " AND NOT EXISTS (SELECT 1 FROM " + quoted_table_ +
               " AS f WHERE f.failed_at IS NOT NULL AND f." + key + " = o." + key + " AND f." +
               c.quote_name(layout.id_column) + " < o." + c.quote_name(layout.id_column) + ")";
  }
  const auto id = c.quote_name(layout.id_column);
  // ORDER BY the column itself (o.id), not its text alias: as text, "10" sorts before "9".
  const auto order = config_.order_column.empty() ? id : c.quote_name(config_.order_column);
  select += " FROM " + quoted_table_ + " AS o WHERE true" + pending +
            (watermark_ ? " AND o." + id + " > $2::bigint" : "") + " ORDER BY o." + order +
            (order == id ? "" : ", o." + id) + " LIMIT $1 FOR UPDATE OF o SKIP LOCKED";
  c.prepare("claim", select);
  if (watermark_) {
    c.prepare("snapshot_xmax", "SELECT txid_snapshot_xmax(txid_current_snapshot())::text");
    // Whether every transaction up to the candidate's xmax has ended, and the first claimable row at
    // or below the candidate (in flight on the other session, or skipped by a claim's LIMIT race).
    c.prepare("advance", "SELECT txid_snapshot_xmin(txid_current_snapshot()) >= $1::bigint, (SELECT min(o." +
                             id + ")::text FROM " + quoted_table_ + " AS o WHERE true" + pending + " AND o." +
                             id + " > $2::bigint AND o." + id + " <= $3::bigint)");
  }

  const std::string ids = id + " = ANY($1::" + id_type_ + "[])";
  if (config_.on_sent == OnSent::kDelete) {
    c.prepare("done", "DELETE FROM " + quoted_table_ + " WHERE " + ids);
  } else {
    c.prepare("done", "UPDATE " + quoted_table_ + " SET sent_at = now() WHERE " + ids);
  }
  if (has_failed_columns_) {
    c.prepare("park", "UPDATE " + quoted_table_ + " SET failed_at = now(), error = $2" +
                          std::string(std::find(present.begin(), present.end(), "attempts") != present.end()
                                          ? ", attempts = attempts + 1"
                                          : "") +
                          " WHERE " + id + " = $1::" + id_type_);
  } else {
    c.prepare(
        "park",
        "WITH gone AS (DELETE FROM " + quoted_table_ + " WHERE " + id + " = $1::" + id_type_ +
            " RETURNING 1) INSERT INTO outbox_relay_parked (id, topic, key, payload, headers, error, source)"
            " SELECT $1, $3, $4, $5, $6::jsonb, $2, $7 FROM gone");
  }
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

// Takes the lead if no other relay holds it: a session advisory lock per session, keyed by table and
// shard (released by the server when the session ends, so a crashed leader's lead passes on at once).
// A standby that got the first lock keeps it and waits for the second: the old leader's other session
// may still hold a claim whose batch is in flight.
bool PollSource::try_lead() {
  const auto base = "outbox-relay:" + config_.table + ":" + std::to_string(config_.shard_index) + "/" +
                    std::to_string(config_.shard_count);
  for (std::size_t i = 0; i < sessions_.size(); ++i) {
    auto& s = sessions_[i];
    if (s.locked) continue;
    s.used = std::chrono::steady_clock::now();
    pqxx::nontransaction n(*s.conn);
    const auto key = i == 0 ? base : base + ":session" + std::to_string(i);
    s.locked = n.exec_params("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key)[0][0].as<bool>();
    if (!s.locked) break;
  }
  leader_ = std::all_of(sessions_.begin(), sessions_.end(), [](const Session& s) { return s.locked; });
  if (leader_) {
    spdlog::info(
        "leading {}{}", describe(),
        config_.shard_count > 1 ? fmt::format(" shard {}/{}", config_.shard_index, config_.shard_count) : "");
    standby_logged_ = false;
  } else if (!standby_logged_) {
    spdlog::info("another relay leads table \"{}\"; standing by", config_.table);
    standby_logged_ = true;
  }
  return leader_;
}

core::Batch PollSource::fetch(std::size_t max, std::chrono::milliseconds wait) {
  core::Batch batch;
  Session* session = nullptr;
  try {
    if (!leader_ && !try_lead()) {
      caught_up_ = false;
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
    const auto from = watermark_ ? claim_floor(*session->tx) : INT64_MIN;
    const auto rows = watermark_ ? session->tx->exec_prepared("claim", static_cast<long>(max), from)
                                 : session->tx->exec_prepared("claim", static_cast<long>(max));
    if (rows.empty()) {
      session->tx->commit();
      session->tx.reset();
      // Every row committed before this claim is claimed or above the watermark (it never passes a
      // pending row), so this is caught up. Rows made pending again below it (replay, a resolved block)
      // are found by a claim from the head: the next one (at most once a second), or the periodic one.
      caught_up_ = true;
      full_next_ = from != INT64_MIN;
      if (batch.source_tag == 0) wait_for_notification(wait);
      return batch;
    }
    caught_up_ = false;
    if (watermark_) note_claimed(rows[rows.size() - 1][0].c_str());
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
      if (value_is_bytea_) {
        // bytea arrives as "\x<hex>": the record value is the raw bytes, as in WAL mode
        for (auto& c : row.columns) {
          if (c.name == router_.layout().value_column && c.value) {
            if (auto raw = decode_bytea_hex(*c.value)) c.value = std::move(*raw);
          }
        }
      }
      auto mapped = router_.map(row);
      if (mapped.index() == 0) {
        batch.messages.push_back(std::move(std::get<0>(mapped)));
      } else {
        const auto* key = row.find(router_.layout().key_column);
        auto key_value = key != nullptr ? *key : std::nullopt;
        batch.rejected.push_back(
            {std::move(row), std::move(std::get<1>(mapped)), std::move(key_value), batch.messages.size()});
      }
    }
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

// Where this claim starts: past the watermark, or from the head (after an empty claim, and every
// full_scan_interval). Moves the watermark when its candidate is safe.
int64_t PollSource::claim_floor(pqxx::work& tx) {
  const auto now = std::chrono::steady_clock::now();
  if (candidate_ && now - last_check_ >= std::chrono::milliseconds(200)) {
    last_check_ = now;
    if (candidate_->xmax.empty()) {
      if (now - candidate_->seen >= std::chrono::seconds(1)) {
        candidate_->xmax = tx.exec_prepared("snapshot_xmax")[0][0].as<std::string>();
      }
    } else {
      const auto r = tx.exec_prepared("advance", candidate_->xmax, std::to_string(floor_),
                                      std::to_string(candidate_->id));
      if (r[0][0].as<bool>()) {
        floor_ = r[0][1].is_null() ? candidate_->id : std::max(floor_, r[0][1].as<int64_t>() - 1);
        candidate_.reset();
        spdlog::debug("watermark at {}", floor_);
      } else {
        spdlog::debug("watermark held at {}: a transaction that may add rows at or below {} is still running",
                      floor_, candidate_->id);
      }
    }
  }
  // After an empty claim (at most once a second: under a light load most claims are empty) and every
  // full_scan_interval, from the head.
  if ((full_next_ && now - last_full_ >= std::chrono::seconds(1)) ||
      now - last_full_ >= config_.full_scan_interval) {
    full_next_ = false;
    last_full_ = now;
    return INT64_MIN;
  }
  return floor_;
}

void PollSource::note_claimed(const std::string& last_id) {
  if (candidate_) return;
  try {
    const auto id = std::stoll(last_id);
    if (id > floor_) candidate_ = Candidate{id, std::chrono::steady_clock::now(), {}};
  } catch (const std::exception&) {
    // not an integer after all: no watermark
  }
}

void PollSource::commit(const core::Batch& batch, const core::Settlement& settlement) {
  if (batch.source_tag >= sessions_.size() || !sessions_[batch.source_tag].tx)
    throw core::TransientError("no open claim to commit");
  auto& tx = sessions_[batch.source_tag].tx;
  std::vector<std::string> done;
  done.reserve(settlement.done.size());
  for (const auto i : settlement.done) done.push_back(batch.messages[i].id);
  sessions_[batch.source_tag].used = std::chrono::steady_clock::now();
  try {
    if (!done.empty()) tx->exec_prepared("done", array_literal(done));
    if (!settlement.park.empty()) park(*tx, batch, settlement);
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

void PollSource::park(pqxx::work& tx, const core::Batch& batch, const core::Settlement& settlement) {
  for (const auto& p : settlement.park) {
    const auto& id = p.rejected ? batch.rejected[p.index].row.id : batch.messages[p.index].id;
    if (has_failed_columns_) {
      tx.exec_prepared("park", id, p.reason);
      continue;
    }
    // No failed_at column: move the event to outbox_relay_parked with what we know of it.
    const core::OutboxMessage* msg = p.rejected ? nullptr : &batch.messages[p.index];
    std::string headers = "{}";
    if (msg != nullptr) {
      nlohmann::json h = nlohmann::json::object();
      for (const auto& [k, v] : msg->headers) h[k] = v;
      headers = h.dump();
    }
    auto cstr = [](const std::optional<std::string>& v) { return v ? v->c_str() : nullptr; };
    const char* topic = msg != nullptr ? msg->topic.c_str() : nullptr;
    const char* key = msg != nullptr ? cstr(msg->key) : nullptr;
    const char* value = msg != nullptr ? cstr(msg->value) : nullptr;
    tx.exec_prepared("park", id, p.reason, topic, key, value, headers, "table " + config_.table);
  }
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
