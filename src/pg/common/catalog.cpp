#include "pg/common/catalog.h"

#include <algorithm>

#include "pg/common/sql_text.h"

namespace outbox_relay::pg {

bool TableShape::has(std::string_view column) const {
  return std::any_of(columns.begin(), columns.end(), [&](const auto& c) { return c.first == column; });
}

std::string TableShape::type_of(std::string_view column) const {
  for (const auto& [n, t] : columns) {
    if (n == column) return t;
  }
  return "";
}

std::string TableShape::quoted() const { return quote_ident(schema) + "." + quote_ident(name); }

std::optional<TableShape> describe_table(const TextQuery& query, const std::string& table) {
  const auto rows = query(
      "SELECT c.oid::text, n.nspname, c.relname, c.relkind::text, a.attname, "
      "format_type(a.atttypid, a.atttypmod) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
      "WHERE c.oid = to_regclass($1) ORDER BY a.attnum",
      {quote_qualified(table)});
  if (rows.empty()) return std::nullopt;
  TableShape shape;
  shape.oid = rows[0][0].value_or("");
  shape.schema = rows[0][1].value_or("");
  shape.name = rows[0][2].value_or("");
  shape.relkind = rows[0][3].value_or("");
  for (const auto& r : rows) {
    if (r[4]) shape.columns.emplace_back(*r[4], r[5].value_or(""));
  }
  return shape;
}

}  // namespace outbox_relay::pg
