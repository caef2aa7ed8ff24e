#pragma once
// What a source needs of the database before it claims or streams anything, checked when it connects:
// the types of the columns it reads or writes, the privileges of its role, and the relay's own tables
// (outbox_relay_parked, outbox_relay_slots; their DDL is in sql/ only). Each check returns the problem
// as one line naming the object and the statement that fixes it (a GRANT, `outbox-relay migrate`), so
// that a setup the operator must fix stops the relay at start instead of failing at its first poison
// event or in every commit. Statements run through a TextQuery (libpqxx or raw libpq alike).

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/routing.h"
#include "pg/common/catalog.h"
#include "pg/common/text_query.h"

namespace outbox_relay::pg {

// A privilege a source needs on a table, and what for ("for --on-sent=delete").
struct Privilege {
  std::string name;  // SELECT, INSERT, UPDATE, DELETE
  std::string why;
};

// The layout's timestamp column must be a timestamp; sent_at and failed_at, when `marks` and present,
// timestamps too, and error text. The first mismatch, e.g. `column "created_at" of table
// "public.outbox" is bigint; the "default" layout needs timestamp or timestamptz`.
[[nodiscard]] std::optional<std::string> column_type_problem(const TableShape& table,
                                                             const core::Layout& layout, bool marks);

// The first privilege in `needed` the current role lacks on `table`, as `role "r" lacks DELETE on table
// "public.outbox" (for --on-sent=delete): GRANT DELETE ON "public"."outbox" TO "r"`.
[[nodiscard]] std::optional<std::string> privilege_problem(const TextQuery& query, const TableShape& table,
                                                           const std::vector<Privilege>& needed);

// The relay's own table `name` (created by sql migration `migration`) with the privileges in `needed`.
// When it does not exist it is created from the migration's text if the role may create tables in its
// schema; otherwise the problem says to run `outbox-relay migrate`.
[[nodiscard]] std::optional<std::string> relay_table_problem(const TextQuery& query, const std::string& name,
                                                             const std::string& migration,
                                                             const std::vector<Privilege>& needed);

// outbox_relay_parked, where poison events go (INSERT).
[[nodiscard]] std::optional<std::string> parked_table_problem(const TextQuery& query);

// outbox_relay_slots, where WAL mode records the slots it created (SELECT, INSERT, UPDATE).
[[nodiscard]] std::optional<std::string> slots_table_problem(const TextQuery& query);

// "table "X" does not exist (...)", with a hint when the name differs from an existing one only in case
// (--table names it as written, without folding).
[[nodiscard]] std::string missing_table_message(const TextQuery& query, const std::string& table);

}  // namespace outbox_relay::pg
