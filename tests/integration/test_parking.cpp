// Parking (pg/common/parking.h) against the real PostgreSQL and broker: a poison event or a row the
// router rejects is moved to outbox_relay_parked with everything it held, in either mode, whether or
// not the database ran `outbox-relay migrate`.
#include <doctest/doctest.h>

#include "helpers.h"

using namespace outbox_relay::testing;

namespace {

std::string text(const pqxx::field& f) { return f.is_null() ? std::string("<null>") : f.c_str(); }

std::vector<std::string> texts(const pqxx::row& r) {
  std::vector<std::string> out;
  for (const auto& f : r) out.push_back(text(f));
  return out;
}

// Runs the relay with `args` until it is idle; it must exit 0.
void relay_until_idle(const std::string& url, std::vector<std::string> args) {
  args.insert(args.end(), {"--exit-when-idle", "--http-addr", "off"});
  Process relay(relay_args(url, args));
  const auto rc = relay.wait(60s);
  INFO(relay.output());
  REQUIRE(rc == std::optional<int>(0));
}

}  // namespace

TEST_CASE("park: poll mode parks a binary (bytea) poison payload and keeps every column of a rejected row") {
  // A bytea outbox without failed_at/error: poison goes to outbox_relay_parked (migrated here, so only
  // the payload decides). The payload is 2.2 MB of 0xff 0x00: too large for the broker, not UTF-8, and
  // NUL from its second byte: it must park whole (as bytea hex text), not fail or be cut.
  const auto url = fresh_database("it_park_bytea");
  const auto topic = "it.park.bytea." + unique_suffix();
  sql(url,
      "CREATE TABLE bin_outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, aggregate_type text NOT "
      "NULL, aggregate_id text NOT NULL, event_type text NOT NULL, payload bytea, headers jsonb, topic text, "
      "created_at timestamptz NOT NULL DEFAULT clock_timestamp())");
  sql(url,
      "INSERT INTO bin_outbox (aggregate_type, aggregate_id, event_type, payload, headers, topic) VALUES "
      "('order', 'a', 'e', convert_to('{\"n\":1}', 'UTF8'), NULL, '" +
          topic +
          "'),"
          "('order', 'a', 'e', decode(repeat('ff00', 1100000), 'hex'), NULL, '" +
          topic +
          "'),"
          "('order', 'b', 'e', '\\x0001'::bytea, '[1,2]', '" +
          topic +
          "'),"
          "('order', 'a', 'e', convert_to('{\"n\":4}', 'UTF8'), NULL, '" +
          topic + "')");
  relay_until_idle(url, {"--table", "bin_outbox"});
  CHECK(sql_count(url, "SELECT count(*) FROM bin_outbox") == 0);
  // The poison record whole ("\x" and two hex digits a byte); the rejected row with every column in
  // headers and its binary payload as hex.
  const auto parked = sql(url,
                          "SELECT id, topic, key, left(payload, 12), length(payload)::text, source, "
                          "coalesce(substring(error from 'too large|JSON object'), error), "
                          "coalesce(headers->>'aggregate_type', '-'), coalesce(headers->>'headers', '-'), "
                          "(headers ? 'created_at')::text FROM outbox_relay_parked ORDER BY id::bigint");
  REQUIRE(parked.size() == 2);
  CHECK(texts(parked[0]) == std::vector<std::string>{"2", topic, "a", "\\xff00ff00ff", "4400002",
                                                     "table bin_outbox", "too large", "-", "-", "false"});
  CHECK(texts(parked[1]) == std::vector<std::string>{"3", topic, "b", "\\x0001", "6", "table bin_outbox",
                                                     "JSON object", "order", "[1, 2]", "true"});
  const auto records = consume_at_least(topic, 2, 30s);
  REQUIRE(records.size() == 2);
  CHECK(records[0].value == std::optional<std::string>("{\"n\":1}"));
  CHECK(records[1].value == std::optional<std::string>("{\"n\":4}"));
}

TEST_CASE(
    "park: poll mode on a database that never ran migrate creates outbox_relay_parked from migration 003") {
  const auto url = fresh_database("it_park_nomigrate", false);
  const auto type = "ParkOrder" + std::to_string(std::hash<std::string>{}(unique_suffix()) % 100000);
  sql(url,
      "CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid "
      "varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb)");
  sql(url, "INSERT INTO outbox VALUES ('5d3c0b64-1f3e-4c1a-9a53-7b1d3f0e2c11', '" + type +
               "', 'o-1', 'OrderCreated', jsonb_build_object('big', repeat('x', 2000000))), "
               "('6d3c0b64-1f3e-4c1a-9a53-7b1d3f0e2c12', '" +
               type + "', 'o-2', 'OrderShipped', '{\"a\":2}')");
  relay_until_idle(url, {"--layout", "debezium", "--unordered"});
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 0);
  const auto parked = sql(url, "SELECT id, key, error FROM outbox_relay_parked");
  REQUIRE(parked.size() == 1);
  CHECK(text(parked[0][0]) == "5d3c0b64-1f3e-4c1a-9a53-7b1d3f0e2c11");
  CHECK(text(parked[0][1]) == "o-1");
  CHECK(text(parked[0][2]).find("too large") != std::string::npos);
  // the migration's table, index included
  CHECK(sql_count(url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'outbox_relay_parked_at_idx'") ==
        1);
  CHECK(consume_at_least("outbox.event." + type, 1, 30s).size() == 1);
}

TEST_CASE("park: WAL mode parks a rejected logical message into the migration's table") {
  const std::string slot = "itw_park_message";
  const auto topic = "itw.park.message." + unique_suffix();
  const auto url = fresh_database(slot, false);
  sql(url,
      "CREATE TABLE outbox (id bigint, aggregate_type text, aggregate_id text, event_type text, payload "
      "bytea)");
  relay_until_idle(url, {"--mode", "wal", "--slot", slot});  // creates the slot and publication
  sql(url, "SELECT pg_logical_emit_message(true, 'outbox', '\\x00ff'::bytea)");  // names no topic
  sql(url, "SELECT pg_logical_emit_message(true, 'outbox:" + topic + ":k', 'fine')");
  relay_until_idle(url, {"--mode", "wal", "--slot", slot});
  const auto parked = sql(
      url, "SELECT payload, error, source, headers->>'prefix', headers->>'content' FROM outbox_relay_parked");
  REQUIRE(parked.size() == 1);
  CHECK(parked[0][0].is_null());  // a message has no payload column: its content is kept with its prefix
  CHECK(text(parked[0][3]) == "outbox");
  CHECK(text(parked[0][4]) == "\\x00ff");
  CHECK(text(parked[0][1]).find("names no topic") != std::string::npos);
  CHECK(text(parked[0][2]) == "wal slot " + slot);
  CHECK(sql_count(url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'outbox_relay_parked_at_idx'") ==
        1);
  CHECK(consume_at_least(topic, 1, 30s).size() == 1);
}
