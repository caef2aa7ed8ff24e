#include "pg/common/maintenance.h"

#include <pqxx/pqxx>

#include "core/errors.h"
#include "pg/common/catalog.h"
#include "pg/common/conninfo.h"
#include "pg/common/session.h"
#include "pg/common/sql_text.h"

namespace outbox_relay::pg {

namespace {

int64_t as_int(const pqxx::field& f) { return f.is_null() ? -1 : f.as<int64_t>(); }

// The type of `column` in `table` as SQL text (e.g. "bigint", "uuid"), for casting parameters.
std::string column_type(pqxx::transaction_base& t, const std::string& table, const std::string& column) {
  const auto shape = describe_table(pqxx_query(t), table);
  const auto type = shape ? shape->type_of(column) : std::string();
  if (type.empty()) throw core::ConfigError("table \"" + table + "\" has no column \"" + column + "\"");
  return type;
}

}  // namespace

std::unique_ptr<pqxx::connection> connect_side(const std::string& conninfo,
                                               const std::string& application_name,
                                               std::chrono::milliseconds statement_timeout) {
  try {
    // Client-side bounds too: a query on a link that went silent must fail, not block its thread (and
    // shutdown, which joins it) until TCP gives up after ~15 minutes.
    auto c = std::make_unique<pqxx::connection>(
        session_conninfo(conninfo, {application_name, std::chrono::seconds(5), std::chrono::seconds(30)}));
    pqxx::nontransaction n(*c);
    n.exec("SET statement_timeout = " + std::to_string(statement_timeout.count()));
    return c;
  } catch (const pqxx::broken_connection& e) {
    throw_connect_error(conninfo, "could not connect to PostgreSQL (" + redact_conninfo(conninfo) + ")",
                        e.what());
  }
}

std::optional<std::set<std::string>> table_columns(pqxx::connection& c, const std::string& table) {
  pqxx::nontransaction n(c);
  const auto shape = describe_table(pqxx_query(n), table);
  if (!shape) return std::nullopt;
  std::set<std::string> out;
  for (const auto& col : shape->columns) out.insert(col.first);
  return out;
}

TableStats table_stats(pqxx::connection& c, const std::string& table, const core::Layout& layout,
                       bool with_sent) {
  TableStats s;
  const auto cols = table_columns(c, table);
  if (!cols) throw core::ConfigError("table \"" + table + "\" does not exist");
  const auto q = quote_qualified(table);
  const bool has_sent = cols->count("sent_at") > 0;
  const bool has_failed = cols->count("failed_at") > 0;
  const bool has_ts = !layout.timestamp_column.empty() && cols->count(layout.timestamp_column) > 0;
  std::string pending = "true";
  if (has_sent) pending += " AND sent_at IS NULL";
  if (has_failed) pending += " AND failed_at IS NULL";
  pqxx::nontransaction n(c);
  const std::string age = has_ts ? "(extract(epoch FROM clock_timestamp() - min(" +
                                       quote_ident(layout.timestamp_column) + ")) * 1000)::bigint"
                                 : "NULL::bigint";
  const auto r = n.exec("SELECT count(*), " + age + " FROM " + q + " WHERE " + pending);
  s.backlog_rows = as_int(r[0][0]);
  s.oldest_unsent_age_ms = s.backlog_rows > 0 ? as_int(r[0][1]) : -1;
  if (has_failed)
    s.failed_rows = as_int(n.exec("SELECT count(*) FROM " + q + " WHERE failed_at IS NOT NULL")[0][0]);
  if (has_sent && with_sent) {
    s.sent_rows = as_int(n.exec("SELECT count(*) FROM " + q + " WHERE sent_at IS NOT NULL")[0][0]);
  }
  if (!n.exec("SELECT to_regclass('outbox_relay_parked')")[0][0].is_null()) {
    s.parked_rows = as_int(n.exec("SELECT count(*) FROM outbox_relay_parked")[0][0]);
  }
  return s;
}

SlotStats slot_stats(pqxx::connection& c, const std::string& slot) {
  SlotStats s;
  pqxx::nontransaction n(c);
  const auto r = n.exec_params(
      "SELECT active, plugin, coalesce(wal_status, ''), confirmed_flush_lsn::text,"
      " (confirmed_flush_lsn - '0/0'::pg_lsn)::text,"
      " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
      "FROM pg_replication_slots WHERE slot_name = $1",
      slot);
  if (r.empty()) return s;
  s.exists = true;
  s.active = r[0][0].as<bool>();
  s.plugin = r[0][1].is_null() ? "" : r[0][1].as<std::string>();
  s.wal_status = r[0][2].as<std::string>();
  if (!r[0][3].is_null()) {
    s.confirmed_flush_lsn = r[0][3].as<std::string>();
    s.confirmed_lsn = std::stoull(r[0][4].as<std::string>());
    s.lag_bytes = as_int(r[0][5]);
  }
  return s;
}

ServerFacts server_facts(pqxx::connection& c, const std::string& table, const std::string& slot,
                         const std::string& publication) {
  ServerFacts f;
  pqxx::nontransaction n(c);
  const auto who = n.exec(
      "SELECT current_setting('server_version'), current_user, rolsuper, rolreplication,"
      " current_setting('wal_level') FROM pg_roles WHERE rolname = current_user");
  f.server_version = who[0][0].as<std::string>();
  f.user = who[0][1].as<std::string>();
  f.superuser = who[0][2].as<bool>();
  f.replication = who[0][3].as<bool>();
  f.wal_level = who[0][4].as<std::string>();
  if (const auto shape = describe_table(pqxx_query(n), table)) {
    f.table_exists = true;
    const auto& oid = shape->oid;
    for (const auto& col : shape->columns) f.columns.insert(col.first);
    const auto p = n.exec_params(
        "SELECT has_table_privilege($1::oid, 'SELECT'), has_table_privilege($1::oid, 'UPDATE'),"
        " has_table_privilege($1::oid, 'DELETE')",
        oid);
    f.can_select = p[0][0].as<bool>();
    f.can_update = p[0][1].as<bool>();
    f.can_delete = p[0][2].as<bool>();
    const auto pub = n.exec_params(
        "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),"
        " EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid"
        "         WHERE p.pubname = $1 AND pr.prrelid = $2::oid)"
        " OR EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1 AND puballtables)",
        publication, oid);
    f.publication_exists = pub[0][0].as<bool>();
    f.publication_has_table = pub[0][1].as<bool>();
  }
  const auto parked = n.exec("SELECT to_regclass('outbox_relay_parked')::oid");
  if (!parked[0][0].is_null()) {
    f.parked_table_exists = true;
    f.can_insert_parked =
        n.exec_params("SELECT has_table_privilege($1::oid, 'INSERT')", parked[0][0].as<std::string>())[0][0]
            .as<bool>();
  }
  const auto slots = n.exec("SELECT to_regclass('outbox_relay_slots')::oid");
  if (!slots[0][0].is_null()) {
    f.slots_table_exists = true;
    f.can_write_slots = n.exec_params("SELECT has_table_privilege($1::oid, 'SELECT, INSERT, UPDATE')",
                                      slots[0][0].as<std::string>())[0][0]
                            .as<bool>();
  }
  const auto s = n.exec_params("SELECT plugin FROM pg_replication_slots WHERE slot_name = $1", slot);
  if (!s.empty()) {
    f.slot_exists = true;
    f.slot_plugin = s[0][0].is_null() ? "" : s[0][0].as<std::string>();
  }
  return f;
}

int64_t delete_older_than(pqxx::connection& c, const std::string& table, const core::Layout& layout,
                          RetentionBy by, std::chrono::milliseconds retention, int batch,
                          const std::function<bool()>& keep_going) {
  const auto cols = table_columns(c, table);
  if (!cols) throw core::ConfigError("table \"" + table + "\" does not exist");
  const std::string column = by == RetentionBy::kSentAt ? "sent_at" : layout.timestamp_column;
  if (column.empty() || cols->count(column) == 0) {
    throw core::ConfigError(
        by == RetentionBy::kSentAt
            ? "table \"" + table +
                  "\" has no \"sent_at\" column: only --on-sent=mark keeps sent rows to clean up"
            : "table \"" + table + "\" has no timestamp column to apply retention to");
  }
  const auto q = quote_qualified(table);
  const auto id = quote_ident(layout.id_column);
  const std::string sql = "DELETE FROM " + q + " WHERE " + id + " IN (SELECT " + id + " FROM " + q +
                          " WHERE " + quote_ident(column) +
                          " < now() - $1::bigint * interval '1 millisecond' LIMIT $2 FOR UPDATE SKIP LOCKED)";
  int64_t total = 0;
  while (keep_going()) {
    pqxx::work w(c, "retention");
    const auto r = w.exec_params(sql, static_cast<int64_t>(retention.count()), batch);
    w.commit();
    total += static_cast<int64_t>(r.affected_rows());
    if (r.affected_rows() < static_cast<pqxx::result::size_type>(batch)) break;
  }
  return total;
}

ReplayResult replay(pqxx::connection& c, const std::string& table, const core::Layout& layout,
                    const ReplaySelection& sel, const std::string& notify_channel) {
  const auto cols = table_columns(c, table);
  if (!cols) throw core::ConfigError("table \"" + table + "\" does not exist");
  const std::string state = sel.failed ? "failed_at" : "sent_at";
  if (cols->count(state) == 0) {
    throw core::ConfigError(
        sel.failed ? "table \"" + table +
                         "\" has no \"failed_at\" column: its poison events are in outbox_relay_parked"
                   : "table \"" + table +
                         "\" has no \"sent_at\" column: sent rows are deleted (--on-sent=delete), nothing to "
                         "replay");
  }
  pqxx::work w(c, "replay");
  const auto q = quote_qualified(table);
  const auto id = quote_ident(layout.id_column);
  const auto type = column_type(w, table, layout.id_column);
  std::string set = sel.failed ? "failed_at = NULL" : "sent_at = NULL";
  if (sel.failed && cols->count("error")) set += ", error = NULL";
  std::string where = quote_ident(state) + " IS NOT NULL";
  if (!sel.failed && cols->count("failed_at")) where += " AND failed_at IS NULL";
  pqxx::result r;
  const std::string head = "UPDATE " + q + " SET " + set + " WHERE " + where;
  const std::string tail = " RETURNING " + id + "::text";
  if (!sel.ids.empty()) {
    r = w.exec_params(head + " AND " + id + " = ANY($1::" + type + "[])" + tail, array_literal(sel.ids));
  } else if (sel.from && sel.to) {
    r = w.exec_params(head + " AND " + id + " BETWEEN $1::" + type + " AND $2::" + type + tail, *sel.from,
                      *sel.to);
  } else if (sel.from) {
    r = w.exec_params(head + " AND " + id + " >= $1::" + type + tail, *sel.from);
  } else if (sel.to) {
    r = w.exec_params(head + " AND " + id + " <= $1::" + type + tail, *sel.to);
  } else {
    throw core::ConfigError("replay needs --from/--to or --ids");
  }
  ReplayResult out;
  out.reset = static_cast<int64_t>(r.size());
  for (const auto& row : r) out.reset_ids.push_back(row[0].as<std::string>());
  if (out.reset > 0) w.exec_params("SELECT pg_notify($1, $2)", notify_channel, table);
  w.commit();
  return out;
}

}  // namespace outbox_relay::pg
