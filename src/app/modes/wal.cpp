// --mode wal: reads the outbox table's INSERTs from a logical replication slot (pgoutput) and
// confirms the slot's LSN once Kafka acknowledged them (pg/wal/). Rows are never marked: the slot's
// lag is the backlog.

#include <pqxx/pqxx>

#include <chrono>
#include <mutex>

#include "app/modes.h"
#include "core/errors.h"
#include "core/routing.h"
#include "pg/common/text_query.h"
#include "pg/wal/failover.h"
#include "pg/wal/wal_source.h"

namespace outbox_relay::app {

namespace {

// Connect timeout for each standby of --db-url asked about the slot; /metrics asks at most this often.
constexpr std::chrono::milliseconds kStandbyProbeTimeout{3000};
constexpr std::chrono::seconds kStandbyProbeEvery{60};

// What the primary on `c` and the other hosts of --db-url say about the slot's failover readiness.
pg::FailoverReadiness failover_readiness(pqxx::connection& c, const Options& o, bool probe) {
  pg::FailoverFacts facts;
  {
    pqxx::nontransaction n(c);
    facts = pg::primary_failover_facts(pg::pqxx_query(n), o.slot);
  }
  if (probe) {
    const std::string host = c.hostname() != nullptr ? c.hostname() : "";
    const std::string port = c.port() != nullptr ? c.port() : "";
    pg::probe_standbys(o.db_url, port.empty() ? host : host + ":" + port, o.slot, kStandbyProbeTimeout,
                       facts);
  }
  return pg::judge_failover(facts, o.slot, o.failover_slot);
}

class WalMode final : public ModeDescription {
 public:
  [[nodiscard]] std::string_view name() const override { return "wal"; }

  // The slot is the relay's position: one identity per database and slot.
  [[nodiscard]] std::string identity(const Options& o) const override {
    return "outbox-relay.wal." + database_name(o) + "." + o.slot;
  }

  [[nodiscard]] std::unique_ptr<core::OutboxSource> make_source(const Options& o) const override {
    pg::WalSourceConfig c;
    c.conninfo = o.db_url;
    c.table = o.table;
    c.slot = o.slot;
    c.publication = o.publication;
    c.create_slot = !o.require_slot;
    c.create_publication = !o.require_slot;
    c.status_interval = o.status_interval;
    c.failover_slot = o.failover_slot;
    c.heartbeat_interval = o.heartbeat_interval;
    c.message_prefix = o.message_prefix;
    c.session_timeout = o.session_timeout;
    c.max_buffered_bytes = o.memory_budget / 4;
    c.max_batch_bytes = o.memory_budget / 4;
    c.chunk_bytes = o.batch_bytes;
    return std::make_unique<pg::WalSource>(std::move(c), core::Router(o.layout()));
  }

  void validate(const Options& o) const override {
    if (o.on_poison == core::PoisonPolicy::kBlock) throw core::ConfigError(kBlockPolicyRefused);
    if (o.on_sent == pg::OnSent::kMark) {
      throw core::ConfigError(
          "--on-sent=mark: WAL mode never marks rows (it moves the slot past what Kafka acknowledged); "
          "leave --on-sent out, or use --mode=poll to mark rows");
    }
    if (o.shard_count > 1) {
      throw core::ConfigError(
          "--shard is for poll mode; in WAL mode the slot holder publishes everything in order");
    }
  }

  void collect_stats(pqxx::connection& c, const Options& o, core::Metrics& m) const override {
    const auto s = pg::slot_stats(c, o.slot);
    m.slot_lag_bytes.store(s.exists ? s.lag_bytes : -1);
    if (s.exists) m.confirmed_lsn.store(s.confirmed_lsn);
    // Standbys are asked at most once a minute (a connection each); the primary at every collection.
    static std::mutex mu;
    static std::chrono::steady_clock::time_point last_probe{};
    static int64_t synced = -1;
    const std::lock_guard lock(mu);
    const auto now = std::chrono::steady_clock::now();
    const bool probe =
        last_probe == std::chrono::steady_clock::time_point{} || now - last_probe >= kStandbyProbeEvery;
    const auto r = failover_readiness(c, o, probe);
    if (probe) {
      last_probe = now;
      synced = r.synced;
    }
    m.failover_slot_synced.store(synced);
    m.failover_protected.store(r.protected_by_standby_slots);
  }

  // The confirmed LSN keeps its last known value: it only moves forward.
  void forget_stats(core::Metrics& m) const override {
    m.slot_lag_bytes.store(-1);
    m.failover_slot_synced.store(-1);
    m.failover_protected.store(-1);
  }

  [[nodiscard]] std::vector<CheckLine> failover(pqxx::connection& c, const Options& o) const override {
    const auto r = failover_readiness(c, o, true);
    std::vector<CheckLine> lines;
    for (const auto& l : r.fine) add(lines, CheckLine::Level::kOk, "failover: " + l);
    for (const auto& l : r.warnings) add(lines, CheckLine::Level::kWarn, "failover: " + l);
    if (!r.supported || !o.failover_slot) {
      add(lines, CheckLine::Level::kWarn,
          "failover procedure: " + pg::manual_failover_procedure(o.slot, o.publication));
    }
    return lines;
  }

  void status_backlog(const pg::TableStats& /*s*/, const StatusRow& row) const override {
    row("backlog", "see the slot's lag (WAL mode does not mark rows)");
  }

  [[nodiscard]] bool reports_missing_slot() const override { return true; }

  // WAL mode only reads the table; it parks into outbox_relay_parked and records its slot in
  // outbox_relay_slots (each created at start from sql/ where the role may create tables).
  void check_table(const Options& o, const pg::ServerFacts& f, std::vector<CheckLine>& lines) const override {
    using L = CheckLine::Level;
    check_grants(o, f, {{"SELECT", "to read events"}}, lines);
    if (!f.parked_table_exists || !f.slots_table_exists) {
      add(lines, L::kWarn,
          "outbox_relay_parked or outbox_relay_slots does not exist: run `outbox-relay migrate` (the relay "
          "creates them at start only if role \"" +
              f.user + "\" may create tables)");
    }
    if (f.parked_table_exists && !f.can_insert_parked) {
      add(lines, L::kFail,
          "role \"" + f.user +
              "\" lacks INSERT on outbox_relay_parked (to park poison events): GRANT INSERT ON "
              "outbox_relay_parked TO \"" +
              f.user + "\"");
    }
    if (f.slots_table_exists && !f.can_write_slots) {
      add(lines, L::kFail,
          "role \"" + f.user +
              "\" lacks SELECT, INSERT or UPDATE on outbox_relay_slots (to record its slot): "
              "GRANT SELECT, INSERT, UPDATE ON outbox_relay_slots TO \"" +
              f.user + "\"");
    }
  }

  void check_server(const Options& o, const pg::ServerFacts& f,
                    std::vector<CheckLine>& lines) const override {
    using L = CheckLine::Level;
    if (f.wal_level != "logical") {
      add(lines, L::kFail,
          "wal_level is \"" + f.wal_level +
              "\"; --mode=wal needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart "
              "PostgreSQL)");
    } else {
      add(lines, L::kOk, "wal_level is logical");
    }
    if (!f.superuser && !f.replication) {
      add(lines, L::kFail,
          "role \"" + f.user + "\" lacks the REPLICATION attribute that --mode=wal needs (ALTER ROLE " +
              f.user + " REPLICATION)");
    }
    if (f.slot_exists) {
      if (f.slot_plugin != "pgoutput") {
        add(lines, L::kFail, "slot \"" + o.slot + "\" uses plugin \"" + f.slot_plugin + "\", not pgoutput");
      } else {
        add(lines, L::kOk, "slot \"" + o.slot + "\" exists (pgoutput)");
      }
    } else if (o.require_slot) {
      add(lines, L::kFail, "slot \"" + o.slot + "\" does not exist and --require-slot forbids creating it");
    } else {
      add(lines, L::kWarn, "slot \"" + o.slot + "\" does not exist yet; the relay creates it on start");
    }
    if (f.publication_exists && !f.publication_has_table && f.table_exists) {
      add(lines, L::kFail,
          "publication \"" + o.publication + "\" does not include table \"" + o.table + "\"");
    } else if (!f.publication_exists && o.require_slot) {
      add(lines, L::kFail,
          "publication \"" + o.publication + "\" does not exist and --require-slot forbids creating it");
    } else if (!f.publication_exists) {
      add(lines, L::kWarn,
          "publication \"" + o.publication +
              "\" does not exist yet; the relay creates it (needs table ownership)");
    }
  }

  // Rows are never marked in WAL mode: retention goes by created_at.
  [[nodiscard]] pg::RetentionBy retention_by() const override { return pg::RetentionBy::kCreatedAt; }

  [[nodiscard]] std::optional<std::string> replay_refusal() const override {
    return "replay: --mode=wal publishes from the WAL, not from table state; replay works with --mode=poll";
  }
};

}  // namespace

const ModeDescription& wal_mode() {
  static const WalMode mode;
  return mode;
}

}  // namespace outbox_relay::app
