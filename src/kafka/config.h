#pragma once
// librdkafka settings: the relay's fixed safety settings, its tuned defaults, and the -X passthrough.

#include <string>
#include <utility>
#include <vector>

struct rd_kafka_conf_s;

namespace outbox_relay::kafka {

using Property = std::pair<std::string, std::string>;

// Parses "-X key=value" arguments. Throws core::ConfigError naming the argument when it has no '='
// or would weaken delivery (acks other than all/-1, enable.idempotence=false, a partitioner that
// ignores the key, a transactional.id the relay would never commit, ...).
std::vector<Property> parse_overrides(const std::vector<std::string>& args);

// The full property list for the producer, in the order it is applied: tuned defaults, then the
// overrides, then the fixed safety settings (acks=all, enable.idempotence=true) last so nothing
// can undo them. Throws core::ConfigError when an override names the bootstrap servers beside a
// non-empty `brokers` (two sources for one setting: which one wins would be a guess).
std::vector<Property> producer_properties(const std::string& brokers, const std::vector<Property>& overrides);

// A librdkafka configuration holding `properties` (the caller owns it). Throws core::ConfigError
// naming the property librdkafka rejects.
rd_kafka_conf_s* new_conf(const std::vector<Property>& properties);

// True for property names whose value must never be printed (passwords, keys, secrets).
bool is_secret_property(const std::string& name);

}  // namespace outbox_relay::kafka
