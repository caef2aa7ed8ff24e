#pragma once
// What the relay reads from the system catalogs about a table: its schema, name, kind and columns with
// their types, in one query (the only one on pg_attribute), over libpqxx or raw libpq alike.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pg/common/text_query.h"

namespace outbox_relay::pg {

struct TableShape {
  std::string oid;
  std::string schema;
  std::string name;
  std::string relkind;                                       // "r" table, "p" partitioned table, ...
  std::vector<std::pair<std::string, std::string>> columns;  // name, format_type(); in column order

  [[nodiscard]] bool has(std::string_view column) const;
  // format_type() of the column ("bigint", "uuid", "timestamp with time zone"); "" when absent.
  [[nodiscard]] std::string type_of(std::string_view column) const;
  // "schema"."name", for SQL text.
  [[nodiscard]] std::string quoted() const;
};

// The table named `table` as the operator wrote it (`name` or `schema.name`, each part taken as written:
// quote_qualified), or nullopt when it does not exist. Errors are the query's.
std::optional<TableShape> describe_table(const TextQuery& query, const std::string& table);

}  // namespace outbox_relay::pg
