#pragma once
// The checkpoint topic of exactly-once mode: a compacted topic whose records (key = relay identity,
// value = core::encode_checkpoint) are written inside each batch's Kafka transaction. Created if
// missing; read back at start, after the transactional producer fenced its predecessors, with a
// read_committed consumer of its own.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "kafka/config.h"

struct rd_kafka_s;

namespace outbox_relay::kafka {

// Creates `topic` with one partition, cleanup.policy=compact and the cluster's default replication
// factor (and min.insync.replicas) unless it exists. `rk` is any client handle. Throws
// core::TransientError when the cluster does not answer within `timeout`, core::ConfigError when it
// refuses the topic (authorization, an invalid name) or the topic exists without cleanup.policy=compact.
// Call it before any client asks for the topic's metadata: a producer's metadata request makes a broker
// that auto-creates topics create it with its defaults (not compacted).
void ensure_checkpoint_topic(rd_kafka_s* rk, const std::string& topic, std::chrono::milliseconds timeout);

// The last checkpoint committed under `identity`, read to the end of every partition of `topic` with
// isolation.level=read_committed; nullopt when there is none. `properties` are the producer's (the
// connection and security settings are reused). Throws core::TransientError when the end is not
// reached within `timeout`, core::FatalError when the latest record cannot be decoded.
std::optional<core::Checkpoint> read_checkpoint(const std::vector<Property>& properties,
                                                const std::string& topic, const std::string& identity,
                                                std::chrono::milliseconds timeout);

}  // namespace outbox_relay::kafka
