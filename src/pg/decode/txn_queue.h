#pragma once
// The WAL source's bookkeeping between the replication stream and Kafka, without I/O: complete
// transactions waiting to be fetched (ready), the ones in the batches being published (in flight, at
// most two batches: the dispatcher's pipeline), and
// the confirmed position (the flush LSN the slot may move to). The invariant lives here: confirmed
// never passes a transaction that still holds a message whose delivery is not final (kAcked or kPoison).

#include <cstdint>
#include <list>
#include <span>
#include <vector>

#include "core/batch.h"
#include "core/message.h"
#include "core/settlement.h"
#include "pg/decode/assembler.h"

namespace outbox_relay::pg {

class TxnQueue {
 public:
  explicit TxnQueue(uint64_t confirmed = 0) : confirmed_(confirmed) {}

  // Drops every transaction and starts over at `confirmed` (a new stream).
  void reset(uint64_t confirmed) noexcept;

  // Adds a complete transaction in stream (commit) order. One that ends at or before the confirmed
  // position was handled already (the server re-sends from its own slot position after a restart) and
  // is dropped: returns false.
  bool push(Transaction txn);

  // Moves whole transactions from ready to in flight and returns their records: the first transaction
  // always (however large: transactions are never split), then more while the batch stays within `max`
  // records. Transactions without records ride along. When only such transactions were taken the batch
  // is empty and, nothing being in flight, confirmed moves past them at once. batch.end_position = end
  // of the last transaction taken. Behind a batch in flight, only a batch with records is taken
  // (transactions without records wait for the next fetch): empty otherwise. Throws std::logic_error
  // when kMaxBatches are in flight.
  core::Batch take(std::size_t max);
  static constexpr std::size_t kMaxBatches = 2;

  // What commit() of the oldest in-flight batch should do.
  struct CommitPlan {
    uint64_t confirm = 0;                    // the new confirmed position (>= the old one)
    std::vector<std::size_t> park_messages;  // indexes into batch.messages: poison, in confirmed txns
    std::vector<std::size_t> park_rejected;  // indexes into batch.rejected, in confirmed txns
    bool retry = false;                      // some transactions go back to ready, to be fetched again
  };
  // `settlement` is settle(batch, deliveries, core::Ordering::kPrefix): confirmed moves past every
  // in-flight transaction of the batch that ends before settlement.first_open. Poison records and
  // rejected rows are parked only with their transaction's confirmation (the settlement parks only
  // durable ones), so a transaction fetched again is never parked twice. Throws std::logic_error when
  // `batch` is not the oldest batch in flight.
  [[nodiscard]] CommitPlan plan(const core::Batch& batch, const core::Settlement& settlement) const;
  // Applies a plan (after the parking succeeded): confirmed moves; on retry the transactions after it,
  // with every later batch, go back to the front of ready in their order.
  void finish(const CommitPlan& plan) noexcept;

  // Exactly-once recovery: everything up to `position` is in Kafka already. Confirmed moves there and
  // ready transactions ending at or before it are dropped (later pushes of them are dropped by push()).
  // Only with nothing in flight (before the first fetch).
  void skip_through(uint64_t position) noexcept;

  // Every in-flight transaction goes back to the front of ready; nothing is confirmed.
  void abandon() noexcept;

  // Moves confirmed to `position` when nothing is ready or in flight and it is ahead (the server has
  // read that far with nothing for us). Returns whether it moved.
  bool advance_idle(uint64_t position) noexcept;

  [[nodiscard]] uint64_t confirmed() const { return confirmed_; }
  [[nodiscard]] bool in_flight() const { return !in_flight_.empty(); }
  [[nodiscard]] std::size_t batches_in_flight() const { return batch_ends_.size(); }
  [[nodiscard]] bool has_ready() const { return !ready_.empty(); }
  [[nodiscard]] bool idle() const { return ready_.empty() && in_flight_.empty(); }
  [[nodiscard]] std::size_t ready_records() const { return ready_records_; }
  [[nodiscard]] std::size_t ready_bytes() const { return ready_bytes_; }

 private:
  void requeue_from(std::list<Transaction>::iterator first) noexcept;

  uint64_t confirmed_;
  std::list<Transaction> ready_;  // list: splicing back is noexcept
  std::list<Transaction> in_flight_;
  std::vector<uint64_t> batch_ends_;  // end position of each in-flight batch, oldest first
  std::size_t ready_records_ = 0;
  std::size_t ready_bytes_ = 0;
};

}  // namespace outbox_relay::pg
