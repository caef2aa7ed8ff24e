// Bad input and misconfiguration on the PostgreSQL side, against the real PostgreSQL and broker: what
// the operator must fix stops the relay at start (exit 78, one line naming the GRANT or `outbox-relay
// migrate`), before anything is published; nothing committed is lost, no event is published again and
// again, and per-key order holds.
#include <doctest/doctest.h>
#include <signal.h>

#include <set>

#include "helpers.h"
#include "relay_checks.h"
#include "writers.h"

using namespace outbox_relay::testing;

namespace {

constexpr const char* kPassword = "relay-pw";

// A login role that carries only what migration 006 grants to outbox_relay (plus `attributes`), and
// the URL of `db_url`'s database as that role.
std::string least_privilege_url(const std::string& db_url, const std::string& role,
                                const std::string& attributes = "") {
  const auto admin = pg_url("postgres");
  sql(admin, "DO $$ BEGIN CREATE ROLE " + role + " LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
  sql(admin, "ALTER ROLE " + role + " LOGIN PASSWORD '" + kPassword + "' NOSUPERUSER " + attributes);
  sql(admin, "GRANT outbox_relay TO " + role);
  sql(db_url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
  const auto at = db_url.find('@');
  const auto scheme = db_url.find("://") + 3;
  return db_url.substr(0, scheme) + role + ":" + kPassword + db_url.substr(at);
}

struct Database {
  std::string url;    // as postgres
  std::string lp;     // as the least-privilege role
  std::string topic;  // unique
};

// A migrated database named `slot`, its publication created by the superuser (it needs table ownership),
// and the URL of a REPLICATION role with only migration 006's grants.
Database wal_least_privilege_database(const std::string& slot) {
  Database d;
  d.url = fresh_database(slot);
  d.topic = "itw.lp." + slot + "." + unique_suffix();
  d.lp = least_privilege_url(d.url, "it_wal_lp", "REPLICATION");
  sql(d.url, "CREATE PUBLICATION outbox_relay_pub FOR TABLE outbox WITH (publish = 'insert')");
  return d;
}

void insert_events(const std::string& url, const std::string& topic, int n, const std::string& key = "k") {
  sql(url, "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) SELECT 'order', '" +
               key + "', 'created', jsonb_build_object('n', g), '" + topic + "' FROM generate_series(1, " +
               std::to_string(n) + ") g");
}

std::set<std::string> ids_of(const std::vector<Record>& records) {
  std::set<std::string> ids;
  for (const auto& r : records) ids.insert(r.header("id").value_or(""));
  return ids;
}

}  // namespace

TEST_CASE(
    "pg misconfig 1: poll mode parks a malformed Debezium row with every column, and publishes the rest") {
  const auto url = fresh_database("it_bad_debezium");
  const auto type = "Dbz" + std::to_string(std::hash<std::string>{}(unique_suffix()) % 100000);
  sql(url, "DROP TABLE outbox CASCADE");
  sql(url,
      "CREATE TABLE outbox (id uuid PRIMARY KEY, seq bigint GENERATED ALWAYS AS IDENTITY, aggregatetype "
      "varchar(255), aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb)");
  sql(url,
      "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES "
      "('00000000-0000-0000-0000-000000000001', '" +
          type +
          "', 'o-1', 'Created', '{\"n\":1}'), "
          "('00000000-0000-0000-0000-000000000002', 'bad type!', 'o-1', 'Shipped', '{\"n\":2}'), "
          "('00000000-0000-0000-0000-000000000003', NULL, 'o-2', 'Created', '{\"n\":3}'), "
          "('00000000-0000-0000-0000-000000000004', '" +
          type + "', 'o-1', 'Paid', '{\"n\":4}')");
  const auto r = run_to_exit(url, {"--layout", "debezium", "--order-by", "seq", "--exit-when-idle"}, 60s);
  INFO(r.output);
  REQUIRE(r.rc == std::optional<int>(0));
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 0);
  const auto parked =
      sql(url,
          "SELECT id, coalesce(key, '-'), payload::jsonb->>'n', headers->>'aggregatetype', "
          "headers->>'type', headers->>'seq', headers->>'payload', error FROM outbox_relay_parked "
          "ORDER BY id");
  REQUIRE(parked.size() == 2);
  CHECK(std::string(parked[0][0].c_str()) == "00000000-0000-0000-0000-000000000002");
  CHECK(std::string(parked[0][1].c_str()) == "o-1");
  CHECK(std::string(parked[0][2].c_str()) == "2");
  CHECK(std::string(parked[0][3].c_str()) == "bad type!");
  CHECK(std::string(parked[0][4].c_str()) == "Shipped");
  CHECK(std::string(parked[0][5].c_str()) == "2");
  CHECK(std::string(parked[0][7].c_str()).find("invalid topic") != std::string::npos);
  CHECK(std::string(parked[1][0].c_str()) == "00000000-0000-0000-0000-000000000003");
  CHECK(std::string(parked[1][1].c_str()) == "o-2");
  CHECK(parked[1][3].is_null());  // the NULL column is kept as a JSON null, the others as text
  CHECK(std::string(parked[1][4].c_str()) == "Created");
  CHECK(std::string(parked[1][6].c_str()) == "{\"n\": 3}");
  const auto records = consume_at_least("outbox.event." + type, 2, 30s);
  REQUIRE(records.size() == 2);
  CHECK(records[0].header("type") == std::optional<std::string>("Created"));
  CHECK(records[1].header("type") == std::optional<std::string>("Paid"));
}

TEST_CASE("pg misconfig 2: WAL mode as the least-privilege role without outbox_relay_parked stops at start") {
  const std::string slot = "itw_lp_noparked";
  const auto [url, lp, topic] = wal_least_privilege_database(slot);
  sql(url, "DROP TABLE outbox_relay_parked");
  insert_events(url, topic, 3);
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) VALUES "
      "('order', 'k', 'created', '{}', 'bad topic!')");
  require_config_exit(run_to_exit(lp, {"--mode", "wal", "--slot", slot, "--exit-when-idle"}),
                      {"table \"outbox_relay_parked\" does not exist", "run `outbox-relay migrate`"});
  // refused before streaming: nothing published, no slot created at "now"
  CHECK(consume_all(topic).empty());
  CHECK(sql_count(url, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == 0);
}

TEST_CASE("pg misconfig 2: WAL mode as the least-privilege role records its slot and refuses a dropped one") {
  const std::string slot = "itw_lp_slot";
  const auto [url, lp, topic] = wal_least_privilege_database(slot);
  const std::vector<std::string> args = {"--mode", "wal", "--slot", slot, "--exit-when-idle"};
  // outbox_relay_slots without the grant of migration 007: a start-up error naming the GRANT
  sql(url, "REVOKE INSERT ON outbox_relay_slots FROM outbox_relay");
  require_config_exit(run_to_exit(lp, args), {"lacks INSERT on table \"outbox_relay_slots\"",
                                              "GRANT INSERT ON \"outbox_relay_slots\""});
  sql(url, "GRANT INSERT ON outbox_relay_slots TO outbox_relay");
  // with it: the slot is created and recorded, events are published
  insert_events(url, topic, 2);  // before the slot: not relayed
  auto first = run_to_exit(lp, args, 60s);
  INFO(first.output);
  REQUIRE(first.rc == std::optional<int>(0));
  CHECK(sql_count(url, "SELECT count(*) FROM outbox_relay_slots WHERE slot_name = '" + slot + "'") == 1);
  // dropped between runs: 5 events committed meanwhile must not be skipped by a slot re-created at "now"
  sql(url, "SELECT pg_drop_replication_slot('" + slot + "')");
  insert_events(url, topic, 5);
  const auto second = run_to_exit(lp, args, 60s);
  INFO(second.output);
  REQUIRE(second.rc.has_value());
  CHECK(*second.rc != 0);
  CHECK(second.output.find("was dropped") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == 0);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 7);  // the 5 are still there to reconcile
}

TEST_CASE(
    "pg misconfig 4: a role or table the mark/park transaction cannot work with stops poll mode at start") {
  const auto url = fresh_database("it_bad_grants");
  const auto topic = "it.bad.grants." + unique_suffix();
  const auto lp = least_privilege_url(url, "it_poll_lp");
  insert_events(url, topic, 10);
  const std::vector<std::string> args = {"--exit-when-idle"};
  // no DELETE (--on-sent=delete)
  sql(url, "REVOKE DELETE ON outbox FROM outbox_relay");
  require_config_exit(run_to_exit(lp, args),
                      {"lacks DELETE on table \"public.outbox\" (for --on-sent=delete)",
                       "GRANT DELETE ON \"public\".\"outbox\" TO \"it_poll_lp\""});
  // --on-sent=mark needs no DELETE: the same role works
  auto marked = run_to_exit(lp, {"--exit-when-idle", "--on-sent", "mark"}, 60s);
  INFO(marked.output);
  REQUIRE(marked.rc == std::optional<int>(0));
  CHECK(sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0);
  CHECK(consume_at_least(topic, 10, 30s).size() == 10);
  // no INSERT on outbox_relay_parked, for a table without failed_at/error
  sql(url, "ALTER TABLE outbox DROP COLUMN failed_at CASCADE");
  sql(url, "GRANT DELETE ON outbox TO outbox_relay");
  sql(url, "REVOKE INSERT ON outbox_relay_parked FROM outbox_relay");
  require_config_exit(run_to_exit(lp, args),
                      {"lacks INSERT on table \"outbox_relay_parked\" (to park poison events)",
                       "GRANT INSERT ON \"outbox_relay_parked\""});
  // an error column of the wrong type
  sql(url, "ALTER TABLE outbox ADD COLUMN failed_at timestamptz");
  sql(url, "ALTER TABLE outbox ALTER COLUMN error TYPE integer USING NULL");
  require_config_exit(run_to_exit(url, args), {"column \"error\" of table \"public.outbox\" is integer"});
  CHECK(consume_all(topic).size() == 10);  // nothing published by the refused runs
}

TEST_CASE(
    "pg misconfig 4: DELETE revoked while poll mode runs: backs off instead of re-publishing in a loop") {
  const auto url = fresh_database("it_revoke_delete");
  const auto topic = "it.revoke.delete." + unique_suffix();
  const auto lp = least_privilege_url(url, "it_poll_lp");
  Process relay(relay_args(lp, {"--http-addr", "off"}));
  insert_events(url, topic, 10, "a");
  REQUIRE(consume_at_least(topic, 10, 30s).size() == 10);
  REQUIRE(wait_until([&] { return sql_count(url, "SELECT count(*) FROM outbox") == 0; }, 10s));
  sql(url, "REVOKE DELETE ON outbox FROM outbox_relay");
  insert_events(url, topic, 10, "a");
  // the batch goes out once, its commit fails, and reconnects fail on the check until the GRANT
  INFO(relay.output());
  REQUIRE(wait_until([&] { return relay.output().find("permission denied") != std::string::npos; }, 20s));
  const auto stalled_from = consume_all(topic).size();
  wait_until([] { return false; }, 8s);
  const auto stalled = consume_all(topic);
  INFO(relay.output());
  CHECK(stalled.size() <= 20);
  CHECK(stalled.size() == stalled_from);
  CHECK(relay.output().find("permission denied") != std::string::npos);
  REQUIRE(relay.running());
  sql(url, "GRANT DELETE ON outbox TO outbox_relay");
  REQUIRE(wait_until([&] { return sql_count(url, "SELECT count(*) FROM outbox") == 0; }, 60s));
  const auto records = consume_all(topic);
  stop_relay(relay);
  CHECK(ids_of(records).size() == 20);
  CHECK(records.size() <= 30);  // each event of the failed batch published at most once more
  std::vector<std::pair<std::string, std::string>> committed;
  for (int id = 1; id <= 20; ++id) committed.emplace_back(std::to_string(id), "a");
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
}

TEST_CASE("pg misconfig 5: --table outbox and --table public.outbox contend for one lead") {
  const auto url = fresh_database("it_lead_identity");
  const auto topic = "it.lead.identity." + unique_suffix();
  Process a(relay_args(url, {"--http-addr", "off", "--table", "outbox"}));
  REQUIRE(wait_until([&] { return a.output().find("leading") != std::string::npos; }, 30s));
  Process b(relay_args(url, {"--http-addr", "off", "--table", "\"public\".\"outbox\""}));
  REQUIRE(wait_until([&] { return b.output().find("another relay leads") != std::string::npos; }, 30s));
  WriteLoad load;
  load.topic = topic;
  load.writers = 2;
  load.events_per_writer = 100;
  const auto committed = write_events(url, load);
  const auto records = consume_at_least(topic, committed.size(), 60s);
  INFO(b.output());
  CHECK(b.output().find("leading poll source") == std::string::npos);
  stop_relay(b);
  stop_relay(a);
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
  CHECK(v.duplicates == 0);
}

TEST_CASE("pg misconfig 10: a malformed --db-url is refused without its password") {
  auto url = pg_url("postgres");
  url.replace(url.find("postgres:postgres@"), 18, "postgres:S3cr%ZZet@");
  const auto r = run_to_exit(url, {"--exit-when-idle"});
  require_config_exit(r, {"invalid connection string", "invalid percent-encoded token"});
  CHECK(r.output.find("S3cr") == std::string::npos);
  CHECK(r.output.find("ZZet") == std::string::npos);
}

TEST_CASE("pg misconfig 13: permanent misconfiguration is refused at start, not retried forever") {
  const auto url = fresh_database("it_bad_config");
  const auto topic = "it.bad.config." + unique_suffix();
  insert_events(url, topic, 3);
  // An unquoted name folds to lower case as in SQL, in the start-up check and the queries alike: the
  // relay publishes from "outbox" instead of failing every batch.
  {
    Process relay(relay_args(url, {"--table", "OUTBOX", "--exit-when-idle", "--http-addr", "off"}));
    const auto rc = relay.wait(60s);
    INFO(relay.output());
    REQUIRE(rc == std::optional<int>(0));
    CHECK(relay.output().find("3 events published") != std::string::npos);
  }
  // A quoted name keeps its case: "OUTBOX" is another table, which does not exist.
  require_config_exit(
      run_to_exit(url, {"--table", "\"OUTBOX\"", "--exit-when-idle"}),
      {"table \"OUTBOX\" does not exist", "names are case-sensitive", "\"public.outbox\" exists"});
  require_config_exit(run_to_exit(url + "?sslmode=bogus", {"--exit-when-idle"}), {"invalid sslmode value"});
  require_config_exit(run_to_exit(url + "?sslmode=bogus", {"--mode", "wal", "--exit-when-idle"}),
                      {"invalid sslmode value"});
  sql(url,
      "CREATE TABLE ts_outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, aggregate_type text NOT "
      "NULL, aggregate_id text NOT NULL, event_type text NOT NULL, payload jsonb, created_at bigint)");
  sql(url,
      "INSERT INTO ts_outbox (aggregate_type, aggregate_id, event_type, created_at) VALUES ('o', 'k', 'e', "
      "1)");
  for (const auto& mode : {"poll", "wal"}) {
    require_config_exit(run_to_exit(url, {"--table", "ts_outbox", "--mode", mode, "--slot", "itw_bad_ts",
                                          "--publication", "itw_bad_ts", "--exit-when-idle"}),
                        {"column \"created_at\" of table \"public.ts_outbox\" is bigint", "timestamp"});
  }
  // a quoted schema-qualified name is the table it names
  auto quoted = run_to_exit(url, {"--table", "\"public\".\"outbox\"", "--exit-when-idle"}, 60s);
  INFO(quoted.output);
  CHECK(quoted.rc == std::optional<int>(0));
  CHECK(consume_at_least(topic, 3, 30s).size() == 3);
}

TEST_CASE(
    "pg misconfig 14: migrate re-creates the outbox table it finds dropped, with trigger, indexes, grants") {
  const auto url = fresh_database("it_migrate_dropped");
  sql(url, "DROP TABLE outbox");
  std::string out;
  REQUIRE(run_command(relay_binary() + " migrate --db-url '" + url + "'", &out) == 0);
  INFO(out);
  CHECK(out.find("applied migration \"001_outbox.sql\" again") != std::string::npos);
  CHECK(sql_count(url,
                  "SELECT count(*) FROM pg_trigger WHERE tgname = 'outbox_notify' AND tgrelid = "
                  "'outbox'::regclass") == 1);
  CHECK(sql_count(url, "SELECT count(*) FROM pg_indexes WHERE tablename = 'outbox'") == 5);
  CHECK(sql_count(url,
                  "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = "
                  "'outbox_relay' AND table_name = 'outbox'") == 3);
  // and a second run has nothing to do
  REQUIRE(run_command(relay_binary() + " migrate --db-url '" + url + "'", &out) == 0);
  CHECK(out.find("(0 migrations applied now)") != std::string::npos);
}
