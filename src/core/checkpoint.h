#pragma once
// The progress record an exactly-once publisher commits in the same Kafka transaction as a batch:
// what the source may treat as published once that transaction is committed, even if the relay dies
// before marking rows or confirming its slot. Sources fill it (OutboxSource::checkpoint); the
// publisher encodes and writes it.

#include <cstdint>
#include <string>
#include <vector>

namespace outbox_relay::core {

struct Checkpoint {
  // WAL mode: the position up to which every event is in Kafka (the batch's durable end LSN).
  uint64_t position = 0;
  // Poll mode: the ids of the rows published in this transaction and not yet known to be marked.
  std::vector<std::string> ids;

  [[nodiscard]] bool empty() const { return position == 0 && ids.empty(); }
};

}  // namespace outbox_relay::core
