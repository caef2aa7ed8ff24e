// The producer against librdkafka's in-process mock cluster (test.mock.num.brokers): no servers.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/message.h"
#include "kafka/config.h"
#include "kafka/producer.h"

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
