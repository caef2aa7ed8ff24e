// The producer against librdkafka's in-process mock cluster (test.mock.num.brokers): no servers.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/message.h"
#include "kafka/config.h"
#include "kafka/producer.h"
#include "mock_cluster.h"

using namespace outbox_relay;

namespace {

kafka::Producer mock_producer() {
  auto props = kafka::producer_properties("", {{"test.mock.num.brokers", "1"}, {"linger.ms", "0"}});
  return kafka::Producer(props);
}

}  // namespace

TEST_CASE("producer: topic handles stay bounded however many topics the rows name, and every record lands") {
  auto producer = mock_producer();
  const std::size_t topics = kafka::Producer::kMaxCachedTopics * 2 + 10;
  std::vector<core::OutboxMessage> messages(topics);
  for (std::size_t i = 0; i < topics; ++i) {
    messages[i].id = std::to_string(i);
    messages[i].topic = "t" + std::to_string(i);
    messages[i].key = "k";
    messages[i].value = "v";
  }
  std::vector<core::Delivery> out(topics);
  producer.send(messages, out);
  CHECK(producer.cached_topics() <= kafka::Producer::kMaxCachedTopics);
  CHECK(producer.cached_topics() > 0);
  // Handles dropped while their records were queued: the records are still delivered.
  REQUIRE(producer.await(std::chrono::seconds(30)));
  std::size_t acked = 0;
  for (const auto& d : out) acked += d.status == core::DeliveryStatus::kAcked ? 1 : 0;
  CHECK(acked == topics);
}

TEST_CASE(
    "producer: a topic the cluster calls unknown is retriable for the grace, whether the report or the "
    "send says so") {
  // A mock cluster of our own, so that its metadata can answer "unknown topic" for one topic (as a
  // broker does between a topic's deletion and its re-creation).
  testing::MockCluster cluster;
  cluster.create_topic("deleted", 1);
  rd_kafka_mock_topic_set_error(cluster.get(), "deleted", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  kafka::Producer producer(kafka::producer_properties(
      cluster.bootstraps(), {{"linger.ms", "0"}, {"topic.metadata.propagation.max.ms", "10"}}));
  std::vector<core::OutboxMessage> one(1);
  one[0].id = "1";
  one[0].topic = "deleted";
  one[0].key = "k";
  one[0].value = "v";
  auto send = [&] {
    std::vector<core::Delivery> out(1);
    producer.send(one, out);
    REQUIRE(producer.await(std::chrono::seconds(30)));
    INFO(out[0].error);
    CHECK(out[0].status == core::DeliveryStatus::kRetriable);
    CHECK(out[0].error.find("in case the topic is being created") != std::string::npos);
  };
  // First send: queued while metadata is asked for; the report says the topic is unknown.
  send();
  // Second send: librdkafka now holds the topic as absent and refuses the record at once. Within the
  // grace that is no reason to park it either.
  send();
}
