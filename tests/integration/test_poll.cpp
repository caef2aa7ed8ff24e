// Poll mode end to end against the real PostgreSQL and the real Kafka broker.
#include <doctest/doctest.h>
#include <signal.h>

#include <functional>
#include <thread>

#include "helpers.h"
#include "relay_checks.h"
#include "writers.h"

using namespace outbox_relay::testing;

namespace {

long long pending(const std::string& url) {
  return sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL");
}

std::string committed_ids_sql(const std::string& topic, int n) {
  return "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) SELECT 'order', 'k' "
         "|| (i % 50), "
         "'order-created', jsonb_build_object('seq', i), '" +
         topic + "' FROM generate_series(1, " + std::to_string(n) + ") i";
}

std::vector<std::pair<std::string, std::string>> table_events(const std::string& url) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : sql(url, "SELECT id::text, aggregate_id FROM outbox ORDER BY outbox.id")) {
    out.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  return out;
}

}  // namespace

TEST_CASE("migrate is idempotent") {
  const auto url = fresh_database("it_migrate");
  CHECK(sql_count(url, "SELECT count(*) FROM outbox_relay_migrations") >= 3);
  std::string out;
  CHECK(run_command(relay_binary() + " migrate --db-url '" + url + "'", &out) == 0);
  CHECK(out.find("0 migrations applied now") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'outbox'") == 1);
}

TEST_CASE("bad flags and config exit 78 with one line naming the problem") {
  const auto url = fresh_database("it_flags");
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{"--batch-size", "0"}, "--batch-size"},
      {{"--poll-interval", "10"}, "--poll-interval"},
      {{"-X", "acks=1"}, "acks"},
      {{"-X", "enable.idempotence=false"}, "idempotence"},
      {{"-X", "no.such.property=1"}, "no.such.property"},
      {{"--mode", "kafka"}, "--mode"},
      {{"--table", "no_such_table"}, "no_such_table"},
  };
  for (const auto& c : cases) {
    Process p(relay_args(url, c.args));
    const auto rc = p.wait(30s);
    const auto out = p.output();
    INFO(c.needle, ": ", out);
    REQUIRE(rc.has_value());
    CHECK(*rc == 78);
    CHECK(out.find(c.needle) != std::string::npos);
    CHECK(out.find("postgres:postgres") == std::string::npos);
  }
  Process no_url({relay_binary(), "--kafka-brokers", kafka_brokers()});
  CHECK(no_url.wait(10s) == std::optional<int>(78));
  CHECK(no_url.output().find("--db-url") != std::string::npos);
}

TEST_CASE("concurrent writers with rollbacks: every committed event once, none rolled back, per-key order") {
  const auto url = fresh_database("it_concurrent");
  const auto topic = "it.concurrent." + unique_suffix();
  Process relay(relay_args(url, {"--batch-size", "100", "--poll-interval", "200ms"}));
  WriteLoad load;
  load.topic = topic;
  load.writers = 4;
  load.events_per_writer = 500;
  const auto committed = write_events(url, load);
  REQUIRE(committed.size() == 4 * (500 - 500 / 7));
  REQUIRE(wait_until([&] { return pending(url) == 0; }, 60s));
  stop_relay(relay);
  const auto records = consume_at_least(topic, committed.size(), 30s);
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
  CHECK(v.duplicates == 0);
  CHECK(records.size() == committed.size());
  // the record carries the event's metadata
  REQUIRE(!records.empty());
  CHECK(records[0].header("event_type") == std::optional<std::string>("order-created"));
  CHECK(records[0].timestamp_ms > 1'600'000'000'000LL);
  CHECK(records[0].value->find("\"writer\"") != std::string::npos);
}

TEST_CASE("relay killed with SIGKILL mid-batch and restarted: nothing lost, order kept") {
  const auto url = fresh_database("it_sigkill");
  const auto topic = "it.sigkill." + unique_suffix();
  const int total = 30000;
  sql(url, committed_ids_sql(topic, total));
  const auto committed = table_events(url);
  int kills_mid_batch = 0;
  for (int round = 0; round < 3; ++round) {
    const auto before = pending(url);
    if (before == 0) break;
    Process relay(relay_args(url, {"--batch-size", "100"}));
    REQUIRE(wait_until([&] { return pending(url) < before; }, 30s));
    relay.signal(SIGKILL);
    REQUIRE(relay.wait(10s) == std::optional<int>(128 + SIGKILL));
    if (pending(url) > 0) ++kills_mid_batch;
  }
  CHECK(kills_mid_batch > 0);
  Process finish(relay_args(url, {"--exit-when-idle"}));
  REQUIRE(finish.wait(60s) == std::optional<int>(0));
  CHECK(pending(url) == 0);
  const auto records = consume_at_least(topic, committed.size(), 30s);
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
}

TEST_CASE("broker stopped and restarted under load: nothing lost") {
  const auto url = fresh_database("it_broker");
  const auto topic = "it.broker." + unique_suffix();
  Process relay(relay_args(url, {"--batch-size", "200", "--poll-interval", "200ms"}));
  WriteLoad load;
  load.topic = topic;
  load.writers = 2;
  load.events_per_writer = 300;
  auto committed = write_events(url, load);
  REQUIRE(wait_until([&] { return pending(url) == 0; }, 60s));

  kafka_stop();
  const auto during = write_events(url, load);  // the application keeps writing while Kafka is down
  committed.insert(committed.end(), during.begin(), during.end());
  CHECK(pending(url) > 0);
  kafka_start();
  auto more = write_events(url, load);
  committed.insert(committed.end(), more.begin(), more.end());
  REQUIRE(wait_until([&] { return pending(url) == 0; }, 120s));
  stop_relay(relay);
  const auto records = consume_at_least(topic, committed.size(), 30s);
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
}

TEST_CASE("PostgreSQL restarted under load: the relay reconnects and loses nothing") {
  const auto url = fresh_database("it_pgrestart");
  const auto topic = "it.pgrestart." + unique_suffix();
  sql(url, committed_ids_sql(topic, 20000));
  const auto committed = table_events(url);
  Process relay(relay_args(url, {"--batch-size", "100", "--poll-interval", "200ms"}));
  REQUIRE(wait_until([&] { return pending(url) < 20000; }, 30s));
  pg_restart();
  REQUIRE(wait_until([&] { return pending(url) == 0; }, 90s));
  stop_relay(relay);
  const auto records = consume_at_least(topic, committed.size(), 30s);
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
}

namespace {

// Runs the relay through a proxy that cuts its connection at the `nth` statement containing `cut_on`,
// with `before` events already in the table; the relay must log `expected`, recover and publish every
// event (with `after` more) once, in per-key order.
void cut_and_recover(const std::string& name, int before, int after, const std::string& expected,
                     const std::string& cut_on = "COMMIT", int nth = 1) {
  const auto url = fresh_database(name);
  const auto topic = "it." + name + "." + unique_suffix();
  if (before > 0) sql(url, committed_ids_sql(topic, before));
  CuttingProxy proxy(port_of(url), cut_on, nth);
  Process relay(relay_args(with_port(url, proxy.port()),
                           {"--poll-interval", "200ms", "--batch-size", "100", "--on-sent", "mark"}));
  require_recovery(relay, proxy);
  INFO(relay.output());
  CHECK(relay.output().find(expected) != std::string::npos);
  sql(url, committed_ids_sql(topic, after));
  const auto committed = table_events(url);
  REQUIRE(wait_until([&] { return pending(url) == 0; }, 30s));
  read_stop_verify(relay, topic, committed, 30s);
}

}  // namespace

TEST_CASE("a connection cut while committing a claim is retried, not fatal (in-doubt commit)") {
  // On an empty table the relay's first COMMIT ends an empty claim.
  SUBCASE("empty claim") {
    cut_and_recover("it_indoubt_empty", 0, 10, "while committing transaction 'claim'");
  }
  // With events waiting it is the commit that marks a published batch sent: it is sent again, not lost.
  SUBCASE("published batch") {
    cut_and_recover("it_indoubt_sent", 500, 10, "is in doubt (they may be sent again)");
  }
}

TEST_CASE("a connection cut at each statement of the poll loop is retried: nothing lost, order kept") {
  // Counted over both sessions of the pipelined source; a statement's first use prepares it (Parse),
  // later ones bind it: the cuts land in open(), the lead locks, a claim's prepare and a later claim,
  // the first mark and a later one, and a later commit.
  const std::vector<std::pair<std::string, int>> cuts = {
      {"LISTEN", 1}, {"pg_try_advisory_lock", 2}, {"claim", 1}, {"claim", 3}, {"done", 1}, {"done", 3},
      {"COMMIT", 4}};
  for (const auto& [statement, nth] : cuts) {
    CAPTURE(statement);
    CAPTURE(nth);
    cut_and_recover("it_cut", 3000, 10, "retrying with backoff", statement, nth);
  }
}

TEST_CASE("poison rows are marked failed with the reason and do not block the table") {
  const auto url = fresh_database("it_poison");
  const auto topic = "it.poison." + unique_suffix();
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, headers, topic) VALUES "
      "('order', 'a', 'e', '{\"n\":1}', NULL, '" +
          topic +
          "'),"
          "('order', 'a', 'e', '{\"n\":2}', '[1,2]', '" +
          topic +
          "'),"
          "('order', 'a', 'e', jsonb_build_object('big', repeat('x', 2000000)), NULL, '" +
          topic +
          "'),"
          "('order', 'a', 'e', '{\"n\":4}', "
          "'{\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"}', '" +
          topic +
          "'),"
          "('order', 'b', 'e', '{\"n\":5}', NULL, 'bad topic name!')");
  Process relay(relay_args(url, {"--exit-when-idle"}));
  REQUIRE(relay.wait(60s) == std::optional<int>(0));
  const auto failed = sql(url, "SELECT id, error FROM outbox WHERE failed_at IS NOT NULL ORDER BY id");
  INFO(relay.output());
  REQUIRE(failed.size() == 3);
  CHECK(std::string(failed[0][1].c_str()).find("JSON object") != std::string::npos);
  CHECK(std::string(failed[1][1].c_str()).find("too large") != std::string::npos);
  CHECK(std::string(failed[2][1].c_str()).find("invalid topic") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox WHERE failed_at IS NULL") == 0);
  const auto records = consume_at_least(topic, 2, 30s);
  REQUIRE(records.size() == 2);
  CHECK(records[0].value == std::optional<std::string>("{\"n\": 1}"));
  CHECK(records[1].header("traceparent") ==
        std::optional<std::string>("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
}

TEST_CASE("NOTIFY wakes an idle relay long before the poll interval; --on-sent=mark stamps sent_at") {
  const auto url = fresh_database("it_notify");
  const auto topic = "it.notify." + unique_suffix();
  Process relay(relay_args(url, {"--poll-interval", "10m", "--on-sent", "mark"}));
  REQUIRE(wait_until([&] { return relay.output().find("connected") != std::string::npos; }, 30s));
  // The first event also waits for the producer's first connection; the second measures the idle path.
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) VALUES ('o', 'k', 'e', "
      "'{}', '" +
          topic + "')");
  REQUIRE(consume_at_least(topic, 1, 30s).size() == 1);
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) VALUES ('o', 'k', 'e', "
      "'{}', '" +
          topic + "')");
  CHECK(consume_at_least(topic, 2, 20s).size() == 2);  // 20 s << 10 min poll interval
  REQUIRE(wait_until(
      [&] { return sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") == 2; }, 10s));
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 2);
  stop_relay(relay);
}

TEST_CASE("a Debezium-style table is read as-is in poll mode and emptied") {
  const auto url = fresh_database("it_debezium_poll", false);
  const auto type = "Order" + std::to_string(std::hash<std::string>{}(unique_suffix()) % 100000);
  sql(url,
      "CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid "
      "varchar(255) NOT NULL, "
      "type varchar(255) NOT NULL, payload jsonb)");
  // Written in this order, but their uuids sort the other way: the claim order must be the write order.
  sql(url, "INSERT INTO outbox VALUES ('6d3c0b64-1f3e-4c1a-9a53-7b1d3f0e2c12', '" + type +
               "', 'o-1', 'OrderCreated', '{\"a\":1}'), ('5d3c0b64-1f3e-4c1a-9a53-7b1d3f0e2c11', '" + type +
               "', 'o-1', 'OrderShipped', '{\"a\":2}')");
  {
    // A uuid claim order would break the aggregate's order: refused at start with the statement to run.
    Process refused(relay_args(url, {"--layout", "debezium", "--exit-when-idle", "--http-addr", "off"}));
    REQUIRE(refused.wait(60s) == std::optional<int>(78));
    INFO(refused.output());
    CHECK(refused.output().find("ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY") != std::string::npos);
    CHECK(refused.output().find("--unordered") != std::string::npos);
    CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 2);
  }
  sql(url, "ALTER TABLE outbox ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY");
  Process relay(relay_args(url, {"--layout", "debezium", "--order-by", "seq", "--exit-when-idle"}));
  REQUIRE(relay.wait(60s) == std::optional<int>(0));
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 0);
  const auto records = consume_at_least("outbox.event." + type, 2, 30s);
  REQUIRE(records.size() == 2);
  CHECK(records[0].key == std::optional<std::string>("o-1"));
  CHECK(records[0].header("id") == std::optional<std::string>("6d3c0b64-1f3e-4c1a-9a53-7b1d3f0e2c12"));
  CHECK(records[0].header("type") == std::optional<std::string>("OrderCreated"));
  CHECK(records[1].header("type") == std::optional<std::string>("OrderShipped"));
}

TEST_CASE("the database password never appears in logs or errors") {
  const auto url = fresh_database("it_secret");
  sql(url,
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'relay_it') THEN "
      "CREATE ROLE relay_it LOGIN PASSWORD 'Sup3r-Secret-pw'; END IF; END $$");
  sql(url, "GRANT SELECT, UPDATE, DELETE ON outbox TO relay_it");
  const std::string secret_url = "postgresql://relay_it:Sup3r-Secret-pw@" + pg_host_port() + "/it_secret";
  Process ok(relay_args(secret_url, {"--exit-when-idle", "--log-level", "debug"}));
  REQUIRE(ok.wait(60s) == std::optional<int>(0));
  // wrong port: connection errors are logged and retried
  Process down(
      relay_args("postgresql://relay_it:Sup3r-Secret-pw@127.0.0.1:1/it_secret", {"--log-level", "debug"}));
  REQUIRE(wait_until([&] { return down.output().find("retrying") != std::string::npos; }, 30s));
  down.signal(SIGTERM);
  REQUIRE(down.wait(30s).has_value());
  // wrong password: authentication fails
  Process bad(relay_args("postgresql://relay_it:Wrong-Secret-pw@" + pg_host_port() + "/it_secret", {}));
  REQUIRE(wait_until([&] { return bad.output().find("retrying") != std::string::npos; }, 30s));
  bad.signal(SIGTERM);
  REQUIRE(bad.wait(30s).has_value());
  for (const auto* p : {&ok, &down, &bad}) {
    const auto out = p->output();
    INFO(out);
    CHECK(out.find("Sup3r-Secret-pw") == std::string::npos);
    CHECK(out.find("Wrong-Secret-pw") == std::string::npos);
  }
}

TEST_CASE("watermark: a row committed late, or made pending again below it, is still published") {
  const auto url = fresh_database("it_watermark");
  const auto topic = "it.watermark." + unique_suffix();
  Process relay(relay_args(url, {"--on-sent", "mark", "--poll-interval", "100ms", "--log-level", "debug",
                                 "--topic-template", topic}));
  REQUIRE(wait_until([&] { return relay.output().find("leading") != std::string::npos; }, 30s));
  auto insert = [&](const std::string& key) {
    sql(url, "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) VALUES ('o', '" + key +
                 "', 'e', '{}')");
  };
  auto sent = [&] { return sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"); };
  // Writes keep coming until the watermark has moved at least twice (a candidate matures in ~1 s).
  auto moves = [&] { return occurrences(relay.output(), "watermark at "); };
  auto keep_writing_until = [&](const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    int i = 0;
    return wait_until(
        [&] {
          insert("w" + std::to_string(i++ % 10));
          return done();
        },
        timeout);
  };
  REQUIRE(keep_writing_until([&] { return moves() >= 2; }, 60s));

  // A writer takes its id now and commits seconds later: the watermark must stay below that id.
  pqxx::connection late(url);
  pqxx::work tx(late);
  const auto late_id = tx.exec(
                             "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) VALUES "
                             "('o', 'late', 'e', '{}') RETURNING id")[0][0]
                           .as<long long>();
  // The watermark is checked (and held) at least twice while that transaction is open.
  auto held = [&] { return occurrences(relay.output(), "watermark held"); };
  const auto held_before = held();
  REQUIRE(keep_writing_until([&] { return held() >= held_before + 2; }, 60s));
  const auto moves_before = moves();
  auto floors = [&] {
    std::vector<long long> out;
    const auto text = relay.output();
    for (auto p = text.find("watermark at "); p != std::string::npos; p = text.find("watermark at ", p + 1)) {
      out.push_back(std::stoll(text.substr(p + 13)));
    }
    return out;
  };
  for (const auto f : floors()) CHECK(f < late_id);
  tx.commit();
  const auto committed_at = std::chrono::steady_clock::now();
  REQUIRE(wait_until(
      [&] {
        return sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL AND id = " +
                                  std::to_string(late_id)) == 1;
      },
      30s));
  // Found by the claim right after the commit (not by the periodic scan from the head, 10 s).
  CHECK(std::chrono::steady_clock::now() - committed_at < 5s);
  // Now the watermark passes it.
  REQUIRE(keep_writing_until([&] { return moves() >= moves_before + 2; }, 60s));
  CHECK(floors().back() >= late_id);

  // A row below the watermark made pending again (replay) is published again too.
  const auto before = consume_all(topic).size();
  REQUIRE(wait_until([&] { return sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0; },
                     30s));
  sql(url, "UPDATE outbox SET sent_at = NULL WHERE id = 1");
  REQUIRE(wait_until([&] { return sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0; },
                     30s));
  const auto all = consume_at_least(topic, before + 1, 30s);
  std::size_t ones = 0;
  for (const auto& r : all) ones += r.header("id") == std::optional<std::string>("1") ? 1 : 0;
  CHECK(ones == 2);
  CHECK(sent() == sql_count(url, "SELECT count(*) FROM outbox"));
  stop_relay(relay);
}

TEST_CASE("an idle leader and its standby keep their sessions and locks past --session-timeout") {
  const auto url = fresh_database("it_idle_sessions");
  const auto topic = "it.idle." + unique_suffix();
  const std::vector<std::string> flags = {"--session-timeout", "5s", "--poll-interval", "10m",
                                          "--topic-template",  topic};
  Process a(relay_args(url, flags));
  REQUIRE(wait_until([&] { return a.output().find("leading") != std::string::npos; }, 30s));
  Process b(relay_args(url, flags));
  REQUIRE(wait_until([&] { return b.output().find("standing by") != std::string::npos; }, 30s));
  const auto count = occurrences;
  // Three session timeouts with nothing to do: the server would end an idle session (and with it a
  // lock) after 5 s; neither relay may lose a session or the lead changes hands.
  const auto until = std::chrono::steady_clock::now() + 15s;
  CHECK_FALSE(wait_until(
      [&] {
        return count(a.output(), "retrying") > 0 || count(b.output(), "retrying") > 0 ||
               count(b.output(), "leading") > 0 || std::chrono::steady_clock::now() >= until + 5s;
      },
      15s));
  CHECK(count(a.output(), "leading") == 1);
  CHECK(count(a.output(), "connected: poll source") == 1);
  CHECK(count(b.output(), "connected: poll source") == 1);
  CHECK(count(b.output(), "leading") == 0);
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) VALUES ('o', 'k', 'e', '{}')");
  CHECK(consume_at_least(topic, 1, 30s).size() == 1);
  stop_relay(b);
  stop_relay(a);
}

TEST_CASE("migrate --layout debezium adds an ordering column to a Debezium table; --unordered accepts none") {
  const auto url = fresh_database("it_debezium_migrate");
  const auto type = "MOrder" + std::to_string(std::hash<std::string>{}(unique_suffix()) % 100000);
  sql(url,
      "CREATE TABLE dbz (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) "
      "NOT "
      "NULL, type varchar(255) NOT NULL, payload jsonb)");
  sql(url, "INSERT INTO dbz VALUES (gen_random_uuid(), '" + type + "', 'u', 'T', '{}')");
  std::vector<std::pair<std::string, std::string>> committed;
  for (const auto& r : sql(url, "SELECT id::text, aggregateid FROM dbz")) {
    committed.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  {
    Process unordered(relay_args(url, {"--layout", "debezium", "--table", "dbz", "--unordered",
                                       "--exit-when-idle", "--http-addr", "off"}));
    REQUIRE(unordered.wait(60s) == std::optional<int>(0));
    CHECK(unordered.output().find("with --unordered") != std::string::npos);
  }
  std::string out;
  REQUIRE(run_command(relay_binary() + " migrate --layout debezium --table dbz --db-url '" + url + "' 2>&1",
                      &out) == 0);
  CHECK(out.find("has a new ordering column \"seq\"") != std::string::npos);
  REQUIRE(run_command(relay_binary() + " migrate --layout debezium --table dbz --db-url '" + url + "' 2>&1",
                      &out) == 0);
  CHECK(out.find("already has its ordering column") != std::string::npos);
  for (int i = 0; i < 20; ++i)
    sql(url, "INSERT INTO dbz VALUES (gen_random_uuid(), '" + type + "', 'o-1', 'T', '{}')");
  for (const auto& r : sql(url, "SELECT id::text, aggregateid FROM dbz ORDER BY seq")) {
    committed.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  Process relay(
      relay_args(url, {"--layout", "debezium", "--table", "dbz", "--order-by", "seq", "--exit-when-idle"}));
  REQUIRE(relay.wait(60s) == std::optional<int>(0));
  const auto records = consume_at_least("outbox.event." + type, committed.size(), 30s);
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
}
