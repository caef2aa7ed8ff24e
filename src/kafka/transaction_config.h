#pragma once
// Exactly-once settings of the producer (--exactly-once), apart from the producer so that options can
// hold them without pulling in librdkafka.

#include <chrono>
#include <string>

namespace outbox_relay::kafka {

// Every batch is one Kafka transaction that also carries the source's checkpoint.
struct TransactionConfig {
  std::string identity;  // the relay's identity: the checkpoint record's key, and the transactional.id
  // What this producer appends to `identity` for its transactional.id (a TransactionalPair's second
  // producer has one of its own).
  std::string id_suffix;
  [[nodiscard]] std::string transactional_id() const { return identity + id_suffix; }
  std::string checkpoint_topic;  // compacted; created if missing
  // transaction.timeout.ms: the broker aborts a transaction open longer than this (a hung relay's).
  // Also bounds each init/commit/abort call and the read of the checkpoint topic.
  std::chrono::milliseconds timeout{60000};
};

}  // namespace outbox_relay::kafka
