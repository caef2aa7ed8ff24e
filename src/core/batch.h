#pragma once
// A batch: what one fetch returns, published together and committed together.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/message.h"

namespace outbox_relay::core {

// A row that could not be turned into a record (bad headers JSON, missing column, invalid topic).
struct RejectedRow {
  OutboxRow row;
  std::string error;
  std::optional<std::string> key;  // the row's record key, if it could be read (for --on-poison=block)
  std::size_t position = 0;        // how many of batch.messages stood before it in source order
};

struct Batch {
  std::vector<OutboxMessage> messages;  // in source (commit) order
  std::vector<RejectedRow> rejected;    // poison before sending; parked by the source on commit
  // WAL mode: the end LSN of the last complete transaction in the batch (0 in poll mode).
  uint64_t end_position = 0;
  // The source's own bookkeeping (poll mode: which of its sessions holds the claim); the dispatcher
  // leaves it alone.
  std::size_t source_tag = 0;

  [[nodiscard]] bool empty() const { return messages.empty() && rejected.empty(); }
  [[nodiscard]] std::size_t size() const { return messages.size() + rejected.size(); }
};

}  // namespace outbox_relay::core
