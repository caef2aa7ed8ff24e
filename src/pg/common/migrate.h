#pragma once
// `outbox-relay migrate`: applies the embedded sql/ migrations that the database has not seen yet,
// each in its own transaction, under an advisory lock so concurrent runs wait instead of racing. The
// objects a migration creates are checked too, not only its row in outbox_relay_migrations: when one is
// missing (the outbox table dropped, a trigger or index removed), that migration and every later one are
// applied again (they are idempotent; a later one may grant on what an earlier one re-created).

#include <string>
#include <vector>

namespace outbox_relay::pg {

// An object a migration creates, found in its text: CREATE TABLE/INDEX IF NOT EXISTS name (kind
// "relation"), CREATE [OR REPLACE] FUNCTION name ("function"), CREATE TRIGGER name ... ON table
// ("trigger", `table` set). Comments are skipped.
struct MigrationObject {
  std::string kind;
  std::string name;
  std::string table;
  bool operator==(const MigrationObject&) const = default;
};
[[nodiscard]] std::vector<MigrationObject> migration_objects(const std::string& sql);

// Returns the names of the migrations applied now (empty when the schema was current). Throws
// core::TransientError when the server cannot be reached and std::runtime_error when a migration fails.
std::vector<std::string> migrate(const std::string& conninfo);

// For a Debezium-style table (`table`, uuid id): adds an ordering column `seq` (bigint identity) and its
// index unless present, so that poll mode can claim in write order (--order-by seq). Idempotent; returns
// whether it added the column. Throws like migrate().
bool add_order_column(const std::string& conninfo, const std::string& table);

// The text of the embedded migration `name` ("003_parked.sql"); std::logic_error if it is not compiled in.
[[nodiscard]] const std::string& migration_sql(const std::string& name);

}  // namespace outbox_relay::pg
