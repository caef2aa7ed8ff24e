#pragma once
// The WAL source's bookkeeping between the replication stream and Kafka, without I/O: complete
// transactions (or chunks of one) waiting to be fetched (ready), the ones in the batches being
// published (in flight, at most two batches: the dispatcher's pipeline), and the confirmed position
// (the flush LSN the slot may move to). The invariant lives here: confirmed never passes a transaction
// that still holds a message whose delivery is not final (kAcked or kPoison).
//
// Memory: a batch takes its records out of the queue (moved, not copied); the queue keeps only what
// the transactions were (positions, counts) and copies the records back from the batch when they must
// be fetched again (finish() with a retry, abandon()), so each record is held once, twice only for the
// moment of a retry.

#include <cstddef>
#include <cstdint>
#include <list>
#include <utility>
#include <vector>

#include "core/batch.h"
#include "core/message.h"
#include "core/settlement.h"
#include "pg/decode/assembler.h"

namespace outbox_relay::pg {

// A transaction published in chunks: how many of its records (from its start, in stream order) are
// settled, while it is not confirmed.
struct PartialTransaction {
  uint64_t commit_lsn = 0;
  uint64_t records = 0;
  bool operator==(const PartialTransaction&) const = default;
};

class TxnQueue {
 public:
  using Partial = PartialTransaction;

  explicit TxnQueue(uint64_t confirmed = 0) : confirmed_(confirmed) {}

  // Drops every transaction and starts over at `confirmed` (a new stream).
  void reset(uint64_t confirmed) noexcept;

  // Adds a transaction (or chunk) in stream (commit) order. One that ends at or before the confirmed
  // position was handled already (the server re-sends from its own slot position after a restart) and
  // is dropped: returns false.
  bool push(Transaction txn);

  // Moves whole transactions (or chunks of one) from ready to in flight and returns their records: the
  // first always (however large), then more while the batch stays within `max` records and `max_bytes`.
  // Transactions without records ride along. When only such transactions were taken the batch is empty
  // and, nothing being in flight, confirmed moves past them at once. batch.end_position = end of the
  // last transaction taken; batch.source_tag names the batch for commit and abandon. Behind a batch in
  // flight, only a batch with records is taken (transactions without records wait for the next fetch):
  // empty otherwise. Throws std::logic_error when kMaxBatches are in flight.
  core::Batch take(std::size_t max, std::size_t max_bytes = SIZE_MAX);
  static constexpr std::size_t kMaxBatches = 2;

  // What commit() of the oldest in-flight batch should do.
  struct CommitPlan {
    uint64_t confirm = 0;                    // the new confirmed position (>= the old one)
    std::size_t settled = 0;                 // leading transactions (or chunks) of the batch done with
    Partial partial;                         // after it: the chunked transaction's settled records
    std::vector<std::size_t> park_messages;  // indexes into batch.messages: poison, in confirmed txns
    std::vector<std::size_t> park_rejected;  // indexes into batch.rejected, in confirmed txns
    bool retry = false;                      // some transactions go back to ready, to be fetched again
  };
  // `settlement` is settle(batch, deliveries, core::Ordering::kPrefix): confirmed moves past every
  // in-flight transaction of the batch that ends before settlement.first_open (a chunk settles without
  // moving it, and counts in `partial`). Poison records and rejected rows are parked only with their
  // transaction's confirmation (the settlement parks only durable ones), so a transaction fetched again
  // is never parked twice. Throws std::logic_error when `batch` is not the oldest batch in flight.
  [[nodiscard]] CommitPlan plan(const core::Batch& batch, const core::Settlement& settlement) const;
  // Where confirmed and partial would be once `batch` (any batch in flight) and every batch before it
  // settled in full: what plan() of it gives then, computed before they settle. Throws
  // std::logic_error when `batch` is not in flight.
  [[nodiscard]] std::pair<uint64_t, Partial> settled_through(const core::Batch& batch) const;
  // Applies a plan for `batch` (after the parking succeeded): confirmed moves; on retry the batch's
  // transactions after it go back to ready, in stream order. A batch in flight behind it must then be
  // abandoned too (its events must follow the retried ones): nothing is taken until it is.
  void finish(const CommitPlan& plan, const core::Batch& batch);

  // Exactly-once recovery: everything up to `position` is in Kafka already, and `partial` records of
  // the transaction after it. Confirmed moves there and ready transactions ending at or before it are
  // dropped (later pushes of them are dropped by push()); the partial records are the assembler's to
  // drop (TransactionAssembler::skip_records). Only with nothing in flight (before the first fetch).
  // Returns the malformed rows of the ready transactions it drops: Kafka holds the rest of those
  // transactions, but they were to be parked when the slot was confirmed past them.
  std::vector<core::RejectedRow> skip_through(uint64_t position, Partial partial = {});

  // The batch's transactions go back to ready, in stream order; nothing is confirmed. A batch no longer
  // in flight (committed, or abandoned already) is left alone.
  void abandon(const core::Batch& batch);

  // Moves confirmed to `position` when nothing is ready or in flight and it is ahead (the server has
  // read that far with nothing for us). Returns whether it moved.
  bool advance_idle(uint64_t position) noexcept;

  [[nodiscard]] uint64_t confirmed() const { return confirmed_; }
  [[nodiscard]] const Partial& partial() const { return partial_; }
  [[nodiscard]] bool in_flight() const { return !in_flight_.empty(); }
  [[nodiscard]] std::size_t batches_in_flight() const { return batches_.size(); }
  [[nodiscard]] bool has_ready() const { return !ready_.empty(); }
  [[nodiscard]] bool idle() const { return ready_.empty() && in_flight_.empty(); }
  [[nodiscard]] std::size_t ready_records() const { return ready_records_; }
  [[nodiscard]] std::size_t ready_bytes() const { return ready_bytes_; }

 private:
  // An in-flight transaction: its records are in the batch.
  struct Shell {
    uint64_t seq = 0;  // stream order
    uint32_t xid = 0;
    uint64_t end_lsn = 0;
    uint64_t commit_lsn = 0;
    bool complete = true;
    std::size_t messages = 0;
    std::size_t rejected = 0;
    std::size_t bytes = 0;
    [[nodiscard]] std::size_t size() const { return messages + rejected; }
  };
  struct InFlightBatch {
    std::size_t tag = 0;      // batch.source_tag
    uint64_t end = 0;         // batch.end_position
    std::size_t entries = 0;  // its shells, consecutive in in_flight_
  };
  struct Ready {
    uint64_t seq = 0;
    Transaction txn;
  };

  static void settle_one(const Shell& shell, uint64_t& confirm, Partial& partial);
  // Rebuilds the shells [first, first + count) of in_flight_, whose records start at the given indexes
  // of `batch`, and merges them into ready in stream order; the shells leave in_flight_.
  void requeue(std::list<Shell>::iterator first, std::size_t count, const core::Batch& batch,
               std::size_t message_index, std::size_t rejected_index);

  uint64_t confirmed_;
  Partial partial_;
  uint64_t next_seq_ = 0;
  std::size_t next_tag_ = 0;
  std::list<Ready> ready_;  // in stream order
  std::list<Shell> in_flight_;
  std::vector<InFlightBatch> batches_;  // oldest first
  std::size_t ready_records_ = 0;
  std::size_t ready_bytes_ = 0;
  bool recall_pending_ = false;  // a batch retried; the one behind it must be abandoned before a take
};

}  // namespace outbox_relay::pg
