// -X passthrough rules (kafka/config.h): what would weaken delivery or order is refused at start.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/errors.h"
#include "kafka/config.h"

using namespace outbox_relay;

namespace {

std::string refusal(const std::string& arg) {
  try {
    (void)kafka::parse_overrides({arg});
  } catch (const core::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("-X: a partitioner that ignores the key is refused, key-hashing ones pass") {
  CHECK(refusal("partitioner=random").find("partitioned by key") != std::string::npos);
  CHECK(refusal("partitioner=RANDOM").find("-X partitioner=RANDOM") == 0);
  CHECK(refusal("topic.partitioner=random") != "");
  CHECK(refusal("partitioner_cb=x") != "");
  for (const auto* ok :
       {"consistent", "consistent_random", "murmur2", "murmur2_random", "fnv1a", "fnv1a_random"}) {
    CHECK(refusal(std::string("partitioner=") + ok) == "");
  }
}

TEST_CASE("-X: a transactional.id is refused (the relay would never commit its transactions)") {
  CHECK(refusal("transactional.id=relay-1").find("-X transactional.id=relay-1: ") == 0);
}

TEST_CASE("-X bootstrap.servers beside --kafka-brokers is a conflict; alone it stands in for the flag") {
  CHECK_THROWS_WITH_AS((void)kafka::producer_properties("127.0.0.1:9092", {{"bootstrap.servers", "b:9092"}}),
                       "-X bootstrap.servers conflicts with --kafka-brokers: give the bootstrap servers once",
                       core::ConfigError);
  CHECK_THROWS_AS((void)kafka::producer_properties("127.0.0.1:9092", {{"metadata.broker.list", "b:9092"}}),
                  core::ConfigError);
  const auto props = kafka::producer_properties("", {{"bootstrap.servers", "b:9092"}});
  int brokers = 0;
  for (const auto& [k, v] : props) brokers += k == "bootstrap.servers" ? 1 : 0;
  CHECK(brokers == 1);
}
