// WAL mode (logical replication, pgoutput) end to end against the real PostgreSQL and Kafka broker.
#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <thread>
#include <tuple>

#include "helpers.h"
#include "relay_checks.h"
#include "writers.h"

using namespace outbox_relay::testing;

namespace {

// Creates the slot and publication (a first run that exits when idle), so that everything written
// afterwards is relayed.
void prepare_slot(const std::string& url, const std::string& slot) {
  Process p(relay_args(url, {"--mode", "wal", "--slot", slot, "--exit-when-idle", "--http-addr", "off"}));
  const auto rc = p.wait(60s);
  INFO(p.output());
  REQUIRE(rc == std::optional<int>(0));
}

std::vector<std::string> wal_args(const std::string& slot, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"--mode", "wal", "--slot", slot, "--http-addr", "off"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

long long slot_lag(const std::string& url, const std::string& slot) {
  return sql_count(url,
                   "SELECT coalesce(pg_current_wal_lsn() - confirmed_flush_lsn, -1)::bigint FROM "
                   "pg_replication_slots WHERE slot_name = '" +
                       slot + "'");
}

void finish_with_exit_when_idle(const std::string& url, const std::string& slot) {
  Process finish(relay_args(url, wal_args(slot, {"--exit-when-idle"})));
  const auto rc = finish.wait(120s);
  INFO(finish.output());
  REQUIRE(rc == std::optional<int>(0));
}

}  // namespace

TEST_CASE(
    "wal: concurrent writers with rollbacks: every committed event once, none rolled back, per-key order") {
  const auto url = fresh_database("itw_concurrent");
  const std::string slot = "itw_concurrent";
  prepare_slot(url, slot);
  const auto topic = "itw.concurrent." + unique_suffix();
  Process relay(relay_args(url, wal_args(slot, {"--batch-size", "200"})));
  WriteLoad load;
  load.topic = topic;
  const auto committed = write_events(url, load);
  const auto records = consume_at_least(topic, committed.size(), 60s);
  relay.signal(SIGTERM);
  REQUIRE(relay.wait(30s) == std::optional<int>(0));
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
  CHECK(v.duplicates == 0);
  CHECK(records.size() == committed.size());
  // WAL mode leaves the table alone; the slot is confirmed up to what was published
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == static_cast<long long>(committed.size()));
}

TEST_CASE("wal: SIGKILL the relay repeatedly under load: nothing lost, order kept, resumes from the slot") {
  const auto url = fresh_database("itw_sigkill");
  const std::string slot = "itw_sigkill";
  prepare_slot(url, slot);
  const auto topic = "itw.sigkill." + unique_suffix();
  std::atomic<bool> stop_writers{false};
  std::atomic<bool> writers_done{false};
  std::vector<std::pair<std::string, std::string>> committed;
  std::thread writer([&] {
    WriteLoad load;
    load.topic = topic;
    load.writers = 3;
    load.events_per_writer = 100000;  // ended by stop_writers after the kills
    load.stop = &stop_writers;
    committed = write_events(url, load);
    writers_done = true;
  });
  struct Joiner {  // a failed REQUIRE must not leave a joinable thread behind
    std::thread& t;
    std::atomic<bool>& stop;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{writer, stop_writers};
  int kills_under_load = 0;
  for (int round = 0; round < 5 && !writers_done; ++round) {
    Process relay(relay_args(url, wal_args(slot, {"--batch-size", "50"})));
    // kill once this relay has confirmed something new (it published and moved the slot)
    const auto confirmed = [&] {
      return sql(url, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '" +
                          slot + "'")[0][0]
          .as<std::string>();
    };
    const auto before = confirmed();
    REQUIRE(wait_until([&] { return writers_done || confirmed() != before; }, 60s));
    relay.signal(SIGKILL);
    REQUIRE(relay.wait(10s) == std::optional<int>(128 + SIGKILL));
    if (!writers_done) ++kills_under_load;
  }
  CHECK(kills_under_load >= 2);
  stop_writers = true;
  writer.join();
  REQUIRE(committed.size() > 0);
  finish_with_exit_when_idle(url, slot);
  const auto records = consume_at_least(topic, committed.size(), 60s);
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
  CHECK(slot_lag(url, slot) >= 0);
}

TEST_CASE(
    "wal: a transaction larger than the memory budget is published in chunks; killed mid-way, it is sent "
    "again from its start: nothing lost, order kept") {
  const auto url = fresh_database("itw_chunks");
  const std::string slot = "itw_chunks";
  prepare_slot(url, slot);
  const auto topic = "itw.chunks." + unique_suffix();
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) SELECT 'order', 'k' || "
      "(i % 20), 'order-created', jsonb_build_object('seq', i, 'pad', repeat('x', 2000)), '" +
          topic + "' FROM generate_series(1, 3000) i");  // one transaction of ~8 MB in memory
  std::vector<std::pair<std::string, std::string>> committed;
  for (const auto& r : sql(url, "SELECT id::text, aggregate_id FROM outbox ORDER BY outbox.id"))
    committed.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  const auto args = relay_args(url, wal_args(slot, {"--memory-budget", "4MiB", "--exit-when-idle"}));
  {
    Process killed(args, {{"OUTBOX_RELAY_TEST_KILL_AT", "committed:4"}});
    const auto rc = killed.wait(90s);
    INFO(killed.output());
    REQUIRE(rc == std::optional<int>(128 + SIGKILL));
  }
  const auto partial = consume_all(topic);
  CHECK(partial.size() >= 3 * 300);  // four chunks of 1 MiB (~370 events each) were out
  CHECK(partial.size() < committed.size());
  // The slot did not move into the transaction: it is sent again whole.
  finish_with_exit_when_idle(url, slot);
  const auto records = consume_all(topic);
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
  CHECK(records.size() == committed.size() + partial.size());
  CHECK(slot_lag(url, slot) >= 0);
}

TEST_CASE("wal: PostgreSQL restarted under load: the relay reconnects and loses nothing") {
  const auto url = fresh_database("itw_pgrestart");
  const std::string slot = "itw_pgrestart";
  prepare_slot(url, slot);
  const auto topic = "itw.pgrestart." + unique_suffix();
  Process relay(relay_args(url, wal_args(slot, {"--batch-size", "100"})));
  WriteLoad load;
  load.topic = topic;
  load.writers = 2;
  load.events_per_writer = 400;
  auto committed = write_events(url, load);
  pg_restart();
  auto more = write_events(url, load);
  committed.insert(committed.end(), more.begin(), more.end());
  read_stop_verify(relay, topic, committed, 90s);
}

TEST_CASE("wal: a Debezium outbox table with insert-then-delete publishes the inserts") {
  const auto url = fresh_database("itw_debezium", false);
  const std::string slot = "itw_debezium";
  const auto type = "Order" + std::to_string(std::hash<std::string>{}(unique_suffix()) % 100000);
  sql(url,
      "CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid "
      "varchar(255) NOT "
      "NULL, type varchar(255) NOT NULL, payload jsonb)");
  Process setup(relay_args(url, wal_args(slot, {"--layout", "debezium", "--exit-when-idle"})));
  REQUIRE(setup.wait(60s) == std::optional<int>(0));
  // Debezium's pattern: insert and delete in the same transaction; the table stays empty.
  for (int i = 0; i < 20; ++i) {
    sql(url, "BEGIN; INSERT INTO outbox VALUES (gen_random_uuid(), '" + type + "', 'o-" +
                 std::to_string(i % 3) + "', 'OrderCreated', jsonb_build_object('n', " + std::to_string(i) +
                 ")); DELETE FROM outbox; COMMIT;");
  }
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 0);
  Process relay(relay_args(url, wal_args(slot, {"--layout", "debezium", "--exit-when-idle"})));
  REQUIRE(relay.wait(60s) == std::optional<int>(0));
  const auto records = consume_at_least("outbox.event." + type, 20, 30s);
  REQUIRE(records.size() == 20);
  for (int i = 0; i < 20; ++i) {
    CHECK(records[static_cast<std::size_t>(i)].header("type") == std::optional<std::string>("OrderCreated"));
    CHECK(records[static_cast<std::size_t>(i)].header("id")->size() == 36);
  }
  CHECK(records[0].value == std::optional<std::string>("{\"n\": 0}"));
}

TEST_CASE("wal: pg_logical_emit_message is a table-less outbox") {
  const auto url = fresh_database("itw_message", false);
  const std::string slot = "itw_message";
  sql(url,
      "CREATE TABLE outbox (id bigint, aggregate_type text, aggregate_id text, event_type text, payload "
      "jsonb)");
  prepare_slot(url, slot);
  const auto topic = "itw.message." + unique_suffix();
  sql(url, "BEGIN; SELECT pg_logical_emit_message(true, 'outbox:" + topic +
               ":customer-7', '{\"mail\":\"a@b.c\"}'); COMMIT;");
  sql(url, "BEGIN; SELECT pg_logical_emit_message(true, 'outbox:" + topic +
               ":customer-8', 'rolled back'); ROLLBACK;");
  sql(url, "SELECT pg_logical_emit_message(true, 'other:" + topic + "', 'not ours')");
  sql(url, "SELECT pg_logical_emit_message(true, 'outbox:" + topic + "', 'no key')");
  Process relay(relay_args(url, wal_args(slot, {"--exit-when-idle"})));
  REQUIRE(relay.wait(60s) == std::optional<int>(0));
  const auto records = consume_at_least(topic, 2, 30s);
  REQUIRE(records.size() == 2);  // two partitions may come back in either order
  const auto& keyed = records[0].key ? records[0] : records[1];
  const auto& unkeyed = records[0].key ? records[1] : records[0];
  CHECK(keyed.key == std::optional<std::string>("customer-7"));
  CHECK(keyed.value == std::optional<std::string>("{\"mail\":\"a@b.c\"}"));
  CHECK(keyed.header("id").has_value());
  CHECK_FALSE(unkeyed.key.has_value());
  CHECK(unkeyed.value == std::optional<std::string>("no key"));
}

TEST_CASE("wal: a second relay on the same slot stands by and takes over when the first dies") {
  const auto url = fresh_database("itw_standby");
  const std::string slot = "itw_standby";
  prepare_slot(url, slot);
  const auto topic = "itw.standby." + unique_suffix();
  Process first(relay_args(url, wal_args(slot)));
  REQUIRE(wait_until([&] { return first.output().find("streaming slot") != std::string::npos; }, 30s));
  Process second(relay_args(url, wal_args(slot)));
  REQUIRE(wait_until([&] { return second.output().find("in use") != std::string::npos; }, 30s));
  WriteLoad load;
  load.topic = topic;
  load.writers = 2;
  load.events_per_writer = 100;
  auto committed = write_events(url, load);
  REQUIRE(consume_at_least(topic, committed.size(), 30s).size() >= committed.size());
  first.signal(SIGKILL);
  REQUIRE(first.wait(10s).has_value());
  auto more = write_events(url, load);
  committed.insert(committed.end(), more.begin(), more.end());
  const auto records = consume_at_least(topic, committed.size(), 60s);
  INFO(second.output());
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
  second.signal(SIGTERM);
  CHECK(second.wait(30s) == std::optional<int>(0));
}

TEST_CASE("wal: a slot dropped under the relay is fatal, never a silent restart from now") {
  const auto url = fresh_database("itw_dropped");
  const std::string slot = "itw_dropped";
  prepare_slot(url, slot);
  sql(url, "SELECT pg_drop_replication_slot('" + slot + "')");
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) VALUES ('o', 'k', 'e', '{}')");
  Process relay(relay_args(url, wal_args(slot, {"--exit-when-idle"})));
  const auto rc = relay.wait(60s);
  INFO(relay.output());
  REQUIRE(rc.has_value());
  CHECK(*rc != 0);
  CHECK(relay.output().find("dropped") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == 0);
}

TEST_CASE("wal: wal_level other than logical exits 78 with the fix in the message") {
  // A second, throwaway cluster with wal_level=replica.
  const std::string env = "OUTBOX_RELAY_RUN=/tmp/outbox-relay-it-replica PG_PORT=54349 PG_WAL_LEVEL=replica ";
  const std::string script = source_dir() + "/scripts/pg.sh";
  std::string out;
  REQUIRE_MESSAGE(run_command(env + script + " start", &out) == 0, out);
  const std::string url = "postgresql://postgres:postgres@127.0.0.1:54349/postgres";
  sql(url,
      "CREATE TABLE IF NOT EXISTS outbox (id bigint, aggregate_type text, aggregate_id text, event_type "
      "text, "
      "payload jsonb)");
  Process relay(relay_args(url, wal_args("itw_replica")));
  const auto rc = relay.wait(60s);
  run_command(env + script + " destroy");
  INFO(relay.output());
  REQUIRE(rc.has_value());
  CHECK(*rc == 78);
  CHECK(relay.output().find("wal_level") != std::string::npos);
  CHECK(relay.output().find("logical") != std::string::npos);
}

TEST_CASE("wal: a connection cut at each step of the stream is retried: nothing lost, order kept") {
  // (statement, nth, client messages after it): the setup queries, the START_REPLICATION command and the
  // third standby status update after it (mid-stream, with batches in flight).
  const std::vector<std::tuple<std::string, int, int>> cuts = {{"wal_level", 1, 0},
                                                               {"pg_publication", 1, 0},
                                                               {"IDENTIFY_SYSTEM", 1, 0},
                                                               {"START_REPLICATION", 1, 0},
                                                               {"START_REPLICATION", 1, 3}};
  for (const auto& [statement, nth, after] : cuts) {
    CAPTURE(statement);
    CAPTURE(after);
    const auto url = fresh_database("itw_cut");
    const std::string slot = "itw_cut";
    prepare_slot(url, slot);
    const auto topic = "itw.cut." + unique_suffix();
    WriteLoad load;
    load.topic = topic;
    load.writers = 2;
    load.events_per_writer = 1500;
    auto committed = write_events(url, load);
    CuttingProxy proxy(port_of(url), statement, nth, after);
    Process relay(relay_args(with_port(url, proxy.port()), wal_args(slot, {"--batch-size", "100"})));
    require_recovery(relay, proxy);
    load.events_per_writer = 10;
    auto more = write_events(url, load);
    committed.insert(committed.end(), more.begin(), more.end());
    read_stop_verify(relay, topic, committed, 60s);
  }
}
