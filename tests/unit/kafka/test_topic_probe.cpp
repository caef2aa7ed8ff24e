// TopicProbe against librdkafka's mock cluster: ready, refused and not-yet-created topics.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "kafka/config.h"
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
  CHECK(probe.wait_for_leaders("being.created", 200ms) == kafka::TopicProbe::Result::kTimedOut);
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
