#pragma once
// Exactly-once settings of the producer (--exactly-once), apart from the producer so that options can
// hold them without pulling in librdkafka.

#include <chrono>
#include <string>

namespace outbox_relay::kafka {

// Every batch is one Kafka transaction that also carries the source's checkpoint.
struct TransactionConfig {
  std::string identity;          // the transactional.id, and the checkpoint record's key
  std::string checkpoint_topic;  // compacted; created if missing
  // transaction.timeout.ms: the broker aborts a transaction open longer than this (a hung relay's).
  // Also bounds each init/commit/abort call and the read of the checkpoint topic.
  std::chrono::milliseconds timeout{60000};
};

}  // namespace outbox_relay::kafka
