// Bad input at the routing and Kafka layers against the real PostgreSQL and broker: a topic template
// typo, a first batch that fails for one reason, a partitioner that ignores the key, header spoofing,
// and a topic deleted while the relay runs.
#include <doctest/doctest.h>
#include <librdkafka/rdkafka.h>

#include <memory>
#include <set>

#include "helpers.h"
#include "relay_checks.h"

using namespace outbox_relay::testing;

namespace {

void insert(const std::string& url, const std::string& topic, int from, int to,
            const std::string& extra_cols = "", const std::string& extra_vals = "") {
  sql(url, "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic" + extra_cols +
               ") SELECT 'order', 'k' || (i % 5), 'e', jsonb_build_object('i', i), '" + topic + "'" +
               extra_vals + " FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) +
               ") i");
}

// Deletes `topic` with librdkafka's admin API (kcat cannot).
void delete_topic(const std::string& topic) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", kafka_brokers().c_str(), err, sizeof err);
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> rk(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err), &rd_kafka_destroy);
  REQUIRE(rk);
  rd_kafka_DeleteTopic_t* dt = rd_kafka_DeleteTopic_new(topic.c_str());
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
  rd_kafka_DeleteTopics(rk.get(), &dt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  REQUIRE(ev != nullptr);
  CHECK(rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_DeleteTopic_destroy(dt);
}

}  // namespace

TEST_CASE(
    "bad input 3: a topic template typo exits 78 at start; a first batch all failing for one reason stops") {
  const auto url = fresh_database("itb_template");
  insert(url, "", 1, 30);  // no per-row topic: the template routes them
  require_config_exit(run_to_exit(url, {"--topic-template", "outbox.{aggregate_type", "--exit-when-idle"}),
                      {"--topic-template: \"outbox.{aggregate_type\" has a '{' that is never closed"});
  require_config_exit(run_to_exit(url, {"--topic-template", "outbox. {aggregate_type}", "--exit-when-idle"}),
                      {"character no Kafka topic name may hold"});
  // A template naming a column that is NULL in every row: the configuration, not 30 poison rows.
  const auto r = run_to_exit(url, {"--topic-template", "outbox.{headers}", "--exit-when-idle"});
  INFO(r.output);
  REQUIRE(r.rc == std::optional<int>(1));
  CHECK(r.output.find("events all fail for the same reason") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox WHERE failed_at IS NULL") == 30);  // nothing parked
}

TEST_CASE("bad input 7: a partitioner that ignores the key, or a transactional id, is refused at start") {
  const auto url = fresh_database("itb_partitioner");
  require_config_exit(run_to_exit(url, {"-X", "partitioner=random", "--exit-when-idle"}),
                      {"-X partitioner=random"});
  require_config_exit(run_to_exit(url, {"-X", "transactional.id=x", "--exit-when-idle"}),
                      {"-X transactional.id=x"});
  require_config_exit(run_to_exit(url, {"-X", "bootstrap.servers=127.0.0.1:1", "--exit-when-idle"}),
                      {"conflicts with --kafka-brokers"});
}

TEST_CASE("bad input 8: a row's headers cannot pass a second id or event_type to consumers") {
  const auto url = fresh_database("itb_spoof");
  const auto topic = "itb.spoof." + unique_suffix();
  insert(url, topic, 1, 3);
  insert(url, topic, 4, 4, ", headers", ", '{\"id\": \"1\", \"trace\": \"t\"}'::jsonb");
  insert(url, topic, 5, 5, ", headers", ", '{\"event_type\": \"order-cancelled\"}'::jsonb");
  insert(url, topic, 6, 6, ", headers", ", '{\"trace\": \"t\"}'::jsonb");
  const auto r = run_to_exit(url, {"--exit-when-idle"});
  INFO(r.output);
  REQUIRE(r.rc == std::optional<int>(0));
  CHECK(sql_count(url,
                  "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL AND error LIKE '%is reserved%'") ==
        2);
  const auto records = consume_at_least(topic, 4, 30s);
  CHECK(records.size() == 4);
  for (const auto& rec : records) {
    int ids = 0;
    for (const auto& [k, v] : rec.headers) ids += k == "id" ? 1 : 0;
    CHECK(ids == 1);
  }
}

TEST_CASE("bad input 6: a topic deleted while the relay runs parks nothing; the key's order holds") {
  const auto url = fresh_database("itb_deleted");
  const auto topic = "itb.deleted." + unique_suffix();
  insert(url, topic, 1, 20);
  Process relay(relay_args(url, {"--http-addr", "off", "--batch-size", "10", "--on-sent", "mark"}));
  REQUIRE(consume_at_least(topic, 20, 60s).size() >= 20);
  delete_topic(topic);
  // Written at once after the deletion: the broker re-creates the topic (auto.create.topics.enable),
  // meanwhile sends answer "unknown topic".
  insert(url, topic, 21, 60);
  std::vector<Record> records;
  const bool all = wait_until(
      [&] {
        records = consume_all(topic);
        std::set<std::string> ids;
        for (const auto& rec : records) ids.insert(rec.header("id").value_or(""));
        return ids.size() >= 40;
      },
      90s);
  if (!all) {
    MESSAGE("unsent rows: ", sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"),
            ", records: ", records.size(), "\n", relay.output());
  }
  REQUIRE(all);
  stop_relay(relay);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL") == 0);
  // What the re-created topic holds: events 21..60 in per-key order (1..20 went with the old topic).
  std::vector<std::pair<std::string, std::string>> committed;
  for (const auto& r :
       sql(url, "SELECT id::text, aggregate_id FROM outbox WHERE id > 20 ORDER BY outbox.id")) {
    committed.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  std::vector<Record> later;
  for (const auto& rec : records) {
    if (std::stoll(rec.header("id").value_or("0")) > 20) later.push_back(rec);
  }
  const auto v = verify(committed, later);
  INFO(v.summary(), relay.output());
  CHECK(v.missing == 0);
  CHECK(v.reordered == 0);
}
