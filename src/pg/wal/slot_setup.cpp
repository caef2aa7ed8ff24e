#include "pg/wal/slot_setup.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/errors.h"
#include "pg/common/libpq_exec.h"
#include "pg/common/preflight.h"
#include "pg/common/sql_text.h"
#include "pg/decode/lsn.h"

namespace outbox_relay::pg {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long inspect_slot() waits for our own previous walsender to release the slot after a reconnect.
constexpr milliseconds kOwnSlotRelease{5000};

// server_version_num from which slots can be failover slots (synchronized to standbys).
constexpr int kFailoverSlots = 170000;

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

bool valid_slot_name(const std::string& s) {
  return !s.empty() && s.size() <= 63 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void check_server(PGconn* meta, const WalSourceConfig& cfg, bool& warned_keep_size) {
  const auto version = PQserverVersion(meta);
  if (version < 140000) {
    throw core::ConfigError(
        "WAL mode needs PostgreSQL 14 or later (pgoutput messages); the server is version " +
        std::to_string(version / 10000));
  }
  const auto r = exec(meta,
                      "SELECT current_setting('wal_level'), current_setting('max_slot_wal_keep_size'), "
                      "current_database()",
                      {}, cfg.command_timeout, "could not read the server settings");
  if (!ok(r)) throw_query_error(r, "could not read the server settings");
  const auto wal_level = field(r, 0, 0).value_or("");
  if (wal_level != "logical") {
    throw core::ConfigError(
        "wal_level is \"" + wal_level +
        "\" but WAL mode needs logical decoding: set wal_level = logical in postgresql.conf "
        "and restart the server");
  }
  if (field(r, 0, 1).value_or("") == "-1" && !warned_keep_size) {
    warned_keep_size = true;
    spdlog::warn(
        "max_slot_wal_keep_size is -1: while the relay is stopped, slot \"{}\" keeps WAL without bound "
        "and can fill the disk; consider setting a limit",
        cfg.slot);
  }
}

TableShape resolve_table(PGconn* meta, const WalSourceConfig& cfg, const core::Layout& layout) {
  const auto query = libpq_query(meta, cfg.command_timeout, "could not look up table \"" + cfg.table + "\"");
  const auto shape = describe_table(query, cfg.table);
  if (!shape) throw core::ConfigError(missing_table_message(query, cfg.table));
  for (const auto& want : layout.required_columns()) {
    if (!shape->has(want)) {
      throw core::FatalError("table \"" + shape->schema + "." + shape->name + "\" has no column \"" + want +
                             "\" required by the \"" + layout.name + "\" layout");
    }
  }
  if (const auto problem = column_type_problem(*shape, layout, false)) throw core::ConfigError(*problem);
  if (shape->relkind == "p") {
    spdlog::warn("table \"{}.{}\" is partitioned: its publication must publish via the partition root",
                 shape->schema, shape->name);
  }
  return *shape;
}

void ensure_publication(PGconn* meta, const WalSourceConfig& cfg, const TableShape& table) {
  const std::string what = "could not check publication \"" + cfg.publication + "\"";
  const auto r = exec(meta, "SELECT pubinsert, puballtables FROM pg_publication WHERE pubname = $1",
                      {cfg.publication}, cfg.command_timeout, what);
  if (!ok(r)) throw_query_error(r, what);
  if (PQntuples(r.get()) == 0) {
    const std::string ddl = "CREATE PUBLICATION " + quote_ident(cfg.publication) + " FOR TABLE " +
                            table.quoted() + " WITH (publish = 'insert', publish_via_partition_root = true)";
    if (!cfg.create_publication) {
      throw core::ConfigError("publication \"" + cfg.publication + "\" does not exist: create it with " +
                              ddl + ", or let the relay create it");
    }
    const auto c = exec(meta, ddl, {}, cfg.command_timeout, "could not create publication");
    if (!ok(c) && sqlstate(c.get()) != "42710") {  // 42710: another relay created it just now
      throw_query_error(c, "could not create publication \"" + cfg.publication + "\"");
    }
    spdlog::info("created publication \"{}\" for inserts into \"{}.{}\"", cfg.publication, table.schema,
                 table.name);
    return;
  }
  if (field(r, 0, 0).value_or("f") != "t") {
    throw core::ConfigError("publication \"" + cfg.publication +
                            "\" does not publish inserts: ALTER PUBLICATION " + quote_ident(cfg.publication) +
                            " SET (publish = 'insert')");
  }
  const auto t = exec(meta,
                      "SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid "
                      "WHERE p.pubname = $1 AND pr.prrelid = $2::regclass "
                      "UNION ALL SELECT 1 FROM pg_publication WHERE pubname = $1 AND puballtables "
                      "UNION ALL SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $3 "
                      "AND tablename = $4",
                      {cfg.publication, table.quoted(), table.schema, table.name}, cfg.command_timeout, what);
  if (!ok(t)) throw_query_error(t, what);
  if (PQntuples(t.get()) == 0) {
    throw core::ConfigError("publication \"" + cfg.publication + "\" does not include table \"" +
                            table.schema + "." + table.name + "\": ALTER PUBLICATION " +
                            quote_ident(cfg.publication) + " ADD TABLE " + table.quoted());
  }
}

SlotInfo inspect_slot(PGconn* meta, const WalSourceConfig& cfg, int own_walsender_pid) {
  const std::string what = "could not look up replication slot \"" + cfg.slot + "\"";
  const auto deadline = Clock::now() + kOwnSlotRelease;
  const auto version = PQserverVersion(meta);
  // Columns 7-10: temporary, why it is unusable (17+: invalidation_reason; 16: conflicting), failover,
  // synced.
  const std::string sql =
      std::string(
          "SELECT slot_type, plugin, database = current_database(), confirmed_flush_lsn::text, wal_status, "
          "active_pid, database, temporary, ") +
      (version >= kFailoverSlots ? "invalidation_reason, failover, synced"
       : version >= 160000       ? "CASE WHEN conflicting THEN 'conflicting with recovery' END, false, false"
                                 : "NULL, false, false") +
      " FROM pg_replication_slots WHERE slot_name = $1";
  for (;;) {
    const auto r = exec(meta, sql, {cfg.slot}, cfg.command_timeout, what);
    if (!ok(r)) throw_query_error(r, what);
    SlotInfo info;
    if (PQntuples(r.get()) == 0) return info;
    info.exists = true;
    if (field(r, 0, 0).value_or("") != "logical") {
      throw core::ConfigError("replication slot \"" + cfg.slot +
                              "\" is a physical slot; choose another --slot");
    }
    const auto plugin = field(r, 0, 1).value_or("");
    if (plugin != "pgoutput") {
      throw core::ConfigError("replication slot \"" + cfg.slot + "\" uses plugin \"" + plugin +
                              "\", not pgoutput; drop it or choose another --slot");
    }
    if (field(r, 0, 2).value_or("f") != "t") {
      throw core::ConfigError("replication slot \"" + cfg.slot + "\" belongs to database \"" +
                              field(r, 0, 6).value_or("") + "\", not the one in --db-url");
    }
    if (field(r, 0, 4).value_or("") == "lost") {
      throw core::FatalError(
          "replication slot \"" + cfg.slot +
          "\" was invalidated (its WAL was removed, see max_slot_wal_keep_size): events may have "
          "been lost; recreate the slot and reconcile");
    }
    if (const auto why = field(r, 0, 8)) {
      throw core::FatalError("replication slot \"" + cfg.slot + "\" was invalidated (" + *why +
                             "): events may have been lost; recreate the slot and reconcile");
    }
    if (field(r, 0, 7).value_or("f") == "t") {
      throw core::ConfigError("replication slot \"" + cfg.slot +
                              "\" is a temporary slot of another session; choose another --slot");
    }
    info.failover = field(r, 0, 9).value_or("f") == "t";
    info.synced = field(r, 0, 10).value_or("f") == "t";
    info.active = field(r, 0, 5).has_value();
    if (auto lsn = field(r, 0, 3)) info.confirmed_flush = parse_lsn(*lsn);
    // Our own walsender from before a reconnect may hold the slot for a moment while it exits.
    const auto pid = field(r, 0, 5);
    if (pid && own_walsender_pid != 0 && *pid == std::to_string(own_walsender_pid) &&
        Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(20));
      continue;
    }
    return info;
  }
}

void check_relay_tables(PGconn* meta, const WalSourceConfig& cfg) {
  const auto query = libpq_query(meta, cfg.command_timeout, "could not check the relay's tables");
  auto problem = parked_table_problem(query);
  if (!problem) problem = slots_table_problem(query);
  if (problem) throw core::ConfigError(*problem);
}

void refuse_if_slot_was_dropped(PGconn* meta, const WalSourceConfig& cfg) {
  const auto r = exec(meta, "SELECT s.created_lsn FROM outbox_relay_slots s WHERE s.slot_name = $1",
                      {cfg.slot}, cfg.command_timeout, "could not read outbox_relay_slots");
  if (!ok(r)) throw_query_error(r, "could not read outbox_relay_slots");
  if (const auto lsn = field(r, 0, 0)) {
    throw core::FatalError(
        "replication slot \"" + cfg.slot + "\" (created by the relay at " + *lsn +
        ") was dropped: refusing to re-create it at \"now\", which would lose the events "
        "committed since; to start over on purpose, DELETE its row from outbox_relay_slots");
  }
}

void create_slot(PGconn* repl, const WalSourceConfig& cfg) {
  const bool failover = cfg.failover_slot && PQserverVersion(repl) >= kFailoverSlots;
  const auto sql = "CREATE_REPLICATION_SLOT " + cfg.slot + " LOGICAL pgoutput " +
                   (failover ? "(SNAPSHOT 'nothing', FAILOVER)" : "NOEXPORT_SNAPSHOT");
  const auto r = exec(repl, sql, {}, cfg.command_timeout,
                      "could not create replication slot \"" + cfg.slot +
                          "\" (it waits for transactions running at the time to end)");
  if (ok(r)) {
    spdlog::info("created {}replication slot \"{}\" at {}: events committed before it are not relayed",
                 failover ? "failover " : "", cfg.slot, field(r, 0, 1).value_or("?"));
    return;
  }
  const auto state = sqlstate(r.get());
  if (state == "42710") return;  // another relay created it just now
  if (state == "55000" && contains(result_error(r.get()), "wal_level")) {
    throw core::ConfigError("could not create replication slot \"" + cfg.slot +
                            "\": " + result_error(r.get()) +
                            " (set wal_level = logical in postgresql.conf and restart)");
  }
  if (state == "53400") {  // configuration_limit_exceeded: all slots in use
    throw core::ConfigError("could not create replication slot \"" + cfg.slot +
                            "\": " + result_error(r.get()) + " (raise max_replication_slots)");
  }
  if (state == "42501") {
    throw core::ConfigError("could not create replication slot \"" + cfg.slot +
                            "\": " + result_error(r.get()));
  }
  throw core::TransientError("could not create replication slot \"" + cfg.slot +
                             "\": " + result_error(r.get()));
}

void align_slot_failover(PGconn* repl, const WalSourceConfig& cfg, const SlotInfo& slot) {
  if (PQserverVersion(repl) < kFailoverSlots || !slot.exists || slot.failover == cfg.failover_slot) return;
  if (slot.active) return;  // ALTER_REPLICATION_SLOT needs the slot free; the next start tries again
  const std::string value = cfg.failover_slot ? "true" : "false";
  const auto r = exec(repl, "ALTER_REPLICATION_SLOT " + cfg.slot + " (FAILOVER " + value + ")", {},
                      cfg.command_timeout, "could not alter replication slot \"" + cfg.slot + "\"");
  if (!ok(r)) {
    spdlog::warn("could not make slot \"{}\" {}a failover slot: {}", cfg.slot,
                 cfg.failover_slot ? "" : "not ", result_error(r.get()));
    return;
  }
  spdlog::info("slot \"{}\" is {} a failover slot (--failover-slot={})", cfg.slot,
               cfg.failover_slot ? "now" : "no longer", cfg.failover_slot ? "on" : "off");
}

void remember_slot(PGconn* meta, const WalSourceConfig& cfg, uint64_t created_lsn) {
  const std::string what = "could not record slot \"" + cfg.slot + "\" in outbox_relay_slots";
  const auto r =
      exec(meta,
           "INSERT INTO outbox_relay_slots (slot_name, created_lsn) VALUES ($1, $2) "
           "ON CONFLICT (slot_name) DO UPDATE SET created_lsn = EXCLUDED.created_lsn, created_at = now()",
           {cfg.slot, format_lsn(created_lsn)}, cfg.command_timeout, what);
  if (!ok(r)) throw_query_error(r, what);
}

uint64_t current_wal_lsn(PGconn* meta, const WalSourceConfig& cfg) {
  const auto r = exec(meta, "SELECT pg_current_wal_lsn()::text", {}, cfg.command_timeout,
                      "could not read the current WAL position");
  if (!ok(r)) throw_query_error(r, "could not read the current WAL position");
  return parse_lsn(field(r, 0, 0).value_or("0/0"));
}

}  // namespace outbox_relay::pg
