#pragma once
// Building SQL text where parameters cannot be used (identifiers, the replication command grammar) or
// are passed as one value (arrays). The one quoting scheme of the tree: pure, no connection needed.
// Correct for a server with standard_conforming_strings on (the default since PostgreSQL 9.1, and the
// only form the replication grammar knows).

#include <string>
#include <string_view>
#include <vector>

namespace outbox_relay::pg {

// An identifier, always double-quoted, inner " doubled: orders -> "orders", a"b -> "a""b".
std::string quote_ident(std::string_view name);

// A string literal, inner ' doubled: it's -> 'it''s'.
std::string quote_literal(std::string_view text);

// The parts of `schema.table` or `table` as the operator wrote it: split at the first dot outside double
// quotes; a part written in double quotes is taken without them ("" inside is one "), any other as
// written (no case folding: --table Outbox names "Outbox").
std::vector<std::string> split_qualified(std::string_view name);

// split_qualified(name), each part quoted: outbox -> "outbox", "my.schema".outbox -> "my.schema"."outbox".
std::string quote_qualified(std::string_view name);

// A PostgreSQL array literal of the given elements, each double-quoted ({"1","2"}), for `= ANY($1)`.
std::string array_literal(const std::vector<std::string>& items);

}  // namespace outbox_relay::pg
