// TopicProbe against librdkafka's mock cluster: ready, refused and not-yet-created topics.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "kafka/config.h"
#include "kafka/producer.h"
#include "kafka/topic_probe.h"
#include "mock_cluster.h"

using namespace outbox_relay;
using namespace std::chrono_literals;

TEST_CASE("topic probe: a topic with leaders is ready; one the cluster auto-creates on request is too") {
  testing::MockCluster cluster;
  cluster.create_topic("orders", 3);
  kafka::TopicProbe probe(kafka::producer_properties(cluster.bootstraps(), {}));
  CHECK(probe.wait_for_leaders("orders", 5s) == kafka::TopicProbe::Result::kReady);
  // The mock cluster, like a broker with auto.create.topics.enable, creates a topic a metadata request
  // asks for: the probe's request is what creates it.
  CHECK(probe.wait_for_leaders("created.on.request", 5s) == kafka::TopicProbe::Result::kReady);
}

TEST_CASE("topic probe: a topic still unknown at the timeout times out; once created it is ready") {
  testing::MockCluster cluster;
  cluster.create_topic("being.created", 1);
  // As a broker answers while it creates a topic (or before the topic reached it).
  rd_kafka_mock_topic_set_error(cluster.get(), "being.created", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  kafka::TopicProbe probe(kafka::producer_properties(cluster.bootstraps(), {}));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(probe.wait_for_leaders("being.created", 200ms) == kafka::TopicProbe::Result::kTimedOut);
  CHECK(std::chrono::steady_clock::now() - t0 >= 200ms);  // it asked until the timeout, not once
  rd_kafka_mock_topic_set_error(cluster.get(), "being.created", RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
  CHECK(probe.wait_for_leaders("being.created", 100ms) == kafka::TopicProbe::Result::kTimedOut);
  rd_kafka_mock_topic_set_error(cluster.get(), "being.created", RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(probe.wait_for_leaders("being.created", 5s) == kafka::TopicProbe::Result::kReady);
}

TEST_CASE("topic probe: a topic the cluster refuses is refused at once, not waited for") {
  testing::MockCluster cluster;
  cluster.create_topic("secret", 1);
  rd_kafka_mock_topic_set_error(cluster.get(), "secret", RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  kafka::TopicProbe probe(kafka::producer_properties(cluster.bootstraps(), {}));
  CHECK(probe.wait_for_leaders("secret", 30s) == kafka::TopicProbe::Result::kRefused);
}

TEST_CASE("producer: records into a topic the cluster creates on request are all delivered") {
  testing::MockCluster cluster;
  kafka::Producer producer(kafka::producer_properties(cluster.bootstraps(), {{"linger.ms", "0"}}));
  std::vector<core::OutboxMessage> messages(100);
  for (std::size_t i = 0; i < messages.size(); ++i) {
    messages[i].id = std::to_string(i);
    messages[i].topic = i < 50 ? "new.a" : "new.b";  // a second new topic in the same batch
    messages[i].key = "k" + std::to_string(i % 7);
    messages[i].value = "v";
  }
  std::vector<core::Delivery> out(messages.size());
  producer.send(messages, out);
  REQUIRE(producer.await(30s));
  for (const auto& d : out) {
    INFO(d.error);
    CHECK(d.status == core::DeliveryStatus::kAcked);
  }
}
