#pragma once
// Building SQL text safely where parameters cannot be used (identifiers) or are passed as one value
// (arrays).

#include <string>
#include <vector>

#include <pqxx/pqxx>

namespace outbox_relay::pg {

// `schema.table` or `table`, each part quoted as an identifier.
std::string quote_qualified(pqxx::connection& c, const std::string& name);

// A PostgreSQL array literal of the given elements, each double-quoted ({"1","2"}), for `= ANY($1)`.
std::string array_literal(const std::vector<std::string>& items);

}  // namespace outbox_relay::pg
