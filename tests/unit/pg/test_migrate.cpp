// `outbox-relay migrate` (pg/common/migrate.h): the objects each migration creates, read from its text, so
// that a dropped table, trigger or index is created again even though the migration is recorded.
#include <doctest/doctest.h>

#include <algorithm>

#include "pg/common/migrate.h"
#include "pg/common/migrations_data.h"

namespace pg = outbox_relay::pg;
using Obj = pg::MigrationObject;

TEST_CASE("migrate: the objects of a migration are read from its CREATE statements, comments skipped") {
  CHECK(pg::migration_objects(
            "-- CREATE TABLE IF NOT EXISTS old (x int);\n"
            "CREATE TABLE IF NOT EXISTS outbox (\n id bigint -- create index if not exists no\n);\n"
            "CREATE INDEX IF NOT EXISTS outbox_pending_idx ON outbox (id) WHERE sent_at IS NULL;\n"
            "CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger AS $$ $$;\n"
            "DROP TRIGGER IF EXISTS outbox_notify ON outbox;\n"
            "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox\n FOR EACH STATEMENT "
            "EXECUTE FUNCTION outbox_notify();") == std::vector<Obj>{{"relation", "outbox", ""},
                                                                     {"relation", "outbox_pending_idx", ""},
                                                                     {"function", "outbox_notify", ""},
                                                                     {"trigger", "outbox_notify", "outbox"}});
  CHECK(pg::migration_objects("GRANT SELECT ON outbox TO outbox_relay;").empty());
}

TEST_CASE(
    "migrate: every embedded migration that creates objects names them, the relay's own tables included") {
  std::vector<std::string> names;
  for (const auto& m : pg::embedded_migrations()) {
    for (const auto& o : pg::migration_objects(m.sql)) names.push_back(o.kind + " " + o.name);
  }
  for (const char* want : {"relation outbox", "relation outbox_pending_idx", "function outbox_notify",
                           "trigger outbox_notify", "relation outbox_relay_parked", "relation inbox",
                           "relation outbox_failed_key_idx", "relation outbox_relay_slots"}) {
    INFO(want);
    CHECK(std::find(names.begin(), names.end(), want) != names.end());
  }
}
