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
  // WAL mode, a transaction published in chunks (larger than the memory budget allows at once): the
  // first `partial_records` records (events and rejected rows, in stream order) of the transaction
  // after `position`, whose commit record starts at `partial_lsn`, are in Kafka too. 0/0: none.
  uint64_t partial_lsn = 0;
  uint64_t partial_records = 0;

  [[nodiscard]] bool empty() const { return position == 0 && ids.empty() && partial_records == 0; }
  bool operator==(const Checkpoint&) const = default;
};

// The checkpoint record's value: a JSON object {"v":2,"identity":…,"position":"<decimal>","ids":[…]},
// with "partial":{"lsn":"<decimal>","records":N} when partial_records > 0 (position as a string: LSNs
// use all 64 bits). `ids` holds single ids ("17") and runs of consecutive
// numeric ids (["100", 2000] = 100..2099), in order: a transaction of many rows stays a small record.
// Version 1 (ids all single) is read too. `identity` names the relay (the record key too), so a record
// read back can be checked against the relay reading it.
[[nodiscard]] std::string encode_checkpoint(const Checkpoint& checkpoint, const std::string& identity);

struct DecodedCheckpoint {
  std::string identity;
  Checkpoint checkpoint;
};
// Throws std::invalid_argument naming what is wrong (not JSON, unknown version, a field of the wrong
// type): a checkpoint the relay cannot read must stop it, never be taken as "nothing published".
[[nodiscard]] DecodedCheckpoint decode_checkpoint(const std::string& value);

}  // namespace outbox_relay::core
