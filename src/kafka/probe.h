#pragma once
// A one-off look at the Kafka cluster for `outbox-relay check`: a short-lived client of its own (same
// properties as the producer, so TLS/SASL settings are exercised) that fetches cluster metadata.

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "kafka/config.h"

namespace outbox_relay::kafka {

struct ClusterInfo {
  int brokers = 0;
  std::set<std::string> topics;  // every topic the cluster reports (internal ones included)
};

// Throws core::ConfigError when librdkafka rejects a property, core::TransientError with librdkafka's
// reason when no broker answers within `timeout`.
ClusterInfo probe_cluster(const std::vector<Property>& properties, std::chrono::milliseconds timeout);

}  // namespace outbox_relay::kafka
