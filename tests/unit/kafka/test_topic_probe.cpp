// wait_for_leaders against librdkafka's mock cluster: ready, refused and not-yet-created topics.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "kafka/config.h"
#include "kafka/topic_probe.h"
#include "mock_cluster.h"

using namespace outbox_relay;
using namespace std::chrono_literals;

namespace {

// A client of `cluster` (the relay's producer properties) that waits for topics.
class Client {
 public:
  explicit Client(const testing::MockCluster& cluster) {
    char err[512];
    rd_kafka_conf_t* conf = kafka::new_conf(kafka::producer_properties(cluster.bootstraps(), {}));
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    REQUIRE(rk_ != nullptr);
  }
  ~Client() { rd_kafka_destroy(rk_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  kafka::TopicReadiness wait_for_leaders(const std::string& topic, std::chrono::milliseconds timeout) {
    return kafka::wait_for_leaders(rk_, topic, timeout);
  }

 private:
  rd_kafka_t* rk_ = nullptr;
};

}  // namespace

TEST_CASE("wait for leaders: a topic with leaders is ready; one the cluster auto-creates on request is too") {
  testing::MockCluster cluster;
  cluster.create_topic("orders", 3);
  Client probe(cluster);
  CHECK(probe.wait_for_leaders("orders", 5s) == kafka::TopicReadiness::kReady);
  // The mock cluster, like a broker with auto.create.topics.enable, creates a topic a metadata request
  // asks for: the probe's request is what creates it.
  CHECK(probe.wait_for_leaders("created.on.request", 5s) == kafka::TopicReadiness::kReady);
}

TEST_CASE("wait for leaders: a topic still unknown at the timeout times out; once created it is ready") {
  testing::MockCluster cluster;
  cluster.create_topic("being.created", 1);
  // As a broker answers while it creates a topic (or before the topic reached it).
  rd_kafka_mock_topic_set_error(cluster.get(), "being.created", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  Client probe(cluster);
  CHECK(probe.wait_for_leaders("being.created", 200ms) == kafka::TopicReadiness::kTimedOut);
  rd_kafka_mock_topic_set_error(cluster.get(), "being.created", RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
  CHECK(probe.wait_for_leaders("being.created", 100ms) == kafka::TopicReadiness::kTimedOut);
  rd_kafka_mock_topic_set_error(cluster.get(), "being.created", RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(probe.wait_for_leaders("being.created", 5s) == kafka::TopicReadiness::kReady);
}

TEST_CASE("wait for leaders: a topic the cluster refuses is refused at once, not waited for") {
  testing::MockCluster cluster;
  cluster.create_topic("secret", 1);
  rd_kafka_mock_topic_set_error(cluster.get(), "secret", RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  Client probe(cluster);
  CHECK(probe.wait_for_leaders("secret", 30s) == kafka::TopicReadiness::kRefused);
}
