#include "pg/common/preflight.h"

#include "pg/common/migrate.h"
#include "pg/common/sql_text.h"

namespace outbox_relay::pg {

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool is_timestamp(const std::string& type) { return starts_with(type, "timestamp"); }

bool is_text(const std::string& type) {
  return type == "text" || starts_with(type, "character varying") || starts_with(type, "character(");
}

std::string current_role(const TextQuery& query) {
  const auto r = query("SELECT current_user::text", {});
  return r.empty() ? std::string() : r[0][0].value_or("");
}

// The first of `needed` that the current role lacks on relation `regclass` (text accepted by ::regclass).
std::optional<std::string> lacking(const TextQuery& query, const std::string& regclass,
                                   const std::vector<Privilege>& needed) {
  for (const auto& p : needed) {
    const auto r = query("SELECT has_table_privilege($1::regclass, $2)", {regclass, p.name});
    if (!r.empty() && r[0][0] == std::optional<std::string>("f")) return p.name;
  }
  return std::nullopt;
}

std::string grant_problem(const TextQuery& query, const std::string& display, const std::string& quoted,
                          const std::vector<Privilege>& needed, const std::string& privilege) {
  const auto role = current_role(query);
  std::string why;
  for (const auto& p : needed) {
    if (p.name == privilege) why = p.why;
  }
  return "role \"" + role + "\" lacks " + privilege + " on table \"" + display + "\"" +
         (why.empty() ? "" : " (" + why + ")") + ": GRANT " + privilege + " ON " + quoted + " TO " +
         quote_ident(role);
}

}  // namespace

std::optional<std::string> column_type_problem(const TableShape& table, const core::Layout& layout,
                                               bool marks) {
  const auto display = table.schema + "." + table.name;
  auto problem = [&](const std::string& column, const std::string& type, const std::string& needs) {
    return "column \"" + column + "\" of table \"" + display + "\" is " + type + "; " + needs;
  };
  const auto& ts = layout.timestamp_column;
  if (!ts.empty() && table.has(ts) && !is_timestamp(table.type_of(ts))) {
    return problem(
        ts, table.type_of(ts),
        "the \"" + layout.name + "\" layout needs timestamp or timestamptz (the record timestamp)");
  }
  if (!marks) return std::nullopt;
  for (const char* column : {"sent_at", "failed_at"}) {
    if (table.has(column) && !is_timestamp(table.type_of(column))) {
      return problem(column, table.type_of(column), "the relay stamps it with now(): use timestamptz");
    }
  }
  if (table.has("failed_at") && table.has("error") && !is_text(table.type_of("error"))) {
    return problem("error", table.type_of("error"),
                   "the relay writes the reason of a parked event there: use text");
  }
  return std::nullopt;
}

std::optional<std::string> privilege_problem(const TextQuery& query, const TableShape& table,
                                             const std::vector<Privilege>& needed) {
  const auto missing = lacking(query, table.oid, needed);
  if (!missing) return std::nullopt;
  return grant_problem(query, table.schema + "." + table.name, table.quoted(), needed, *missing);
}

std::optional<std::string> relay_table_problem(const TextQuery& query, const std::string& name,
                                               const std::string& migration,
                                               const std::vector<Privilege>& needed) {
  auto exists = [&] {
    const auto r = query("SELECT to_regclass($1) IS NOT NULL", {quote_ident(name)});
    return !r.empty() && r[0][0] == std::optional<std::string>("t");
  };
  if (!exists()) {
    const auto r = query("SELECT has_schema_privilege(current_schema(), 'CREATE')", {});
    if (r.empty() || r[0][0] != std::optional<std::string>("t")) {
      return "table \"" + name + "\" does not exist and role \"" + current_role(query) +
             "\" may not create it: run `outbox-relay migrate` (migration " + migration + ")";
    }
    query(migration_sql(migration), {});
  }
  const auto missing = lacking(query, quote_ident(name), needed);
  if (!missing) return std::nullopt;
  return grant_problem(query, name, quote_ident(name), needed, *missing) +
         " (`outbox-relay migrate` grants it to role outbox_relay)";
}

std::optional<std::string> parked_table_problem(const TextQuery& query) {
  return relay_table_problem(query, "outbox_relay_parked", "003_parked.sql",
                             {{"INSERT", "to park poison events"}});
}

std::optional<std::string> slots_table_problem(const TextQuery& query) {
  return relay_table_problem(query, "outbox_relay_slots", "007_slots.sql",
                             {{"SELECT", "to notice a dropped slot"},
                              {"INSERT", "to record the slot it creates"},
                              {"UPDATE", "to record the slot it creates"}});
}

std::string missing_table_message(const TextQuery& query, const std::string& table) {
  std::string hint;
  const auto parts = split_qualified(table);
  const auto r = query(
      "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE lower(c.relname) = lower($1) AND c.relkind IN ('r', 'p') AND CASE WHEN $2 = '' THEN "
      "pg_table_is_visible(c.oid) ELSE lower(n.nspname) = lower($2) END LIMIT 1",
      {parts.back(), parts.size() > 1 ? parts.front() : std::string()});
  if (!r.empty() && r[0][0]) {
    hint = "; names are case-sensitive and table \"" + *r[0][0] + "\" exists";
  }
  return "table \"" + table + "\" does not exist (create it with `outbox-relay migrate` or set --table" +
         hint + ")";
}

}  // namespace outbox_relay::pg
