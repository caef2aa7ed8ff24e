#pragma once
// Where events go: Kafka. Up to two batches in flight (the dispatcher's pipeline); each send() is one
// batch. The transaction boundary (begin/commit/abort) lets a batch become one Kafka transaction that
// also carries the source's checkpoint (exactly-once), without the dispatcher knowing which: for the
// at-least-once producer begin() and commit() do nothing.

#include <chrono>
#include <optional>
#include <span>

#include "core/checkpoint.h"
#include "core/message.h"

namespace outbox_relay::core {

class Publisher {
 public:
  virtual ~Publisher() = default;

  // Called once this relay leads, before its first batch (and again after it lost and regained the
  // lead): a transactional publisher fences every earlier producer of the relay's identity (aborting
  // a transaction it left open, so that read_committed consumers never see it) and returns the last
  // checkpoint committed under that identity, for the source to apply before it fetches. nullopt: none
  // (or not transactional). Throws TransientError (retry later) or FatalError.
  virtual std::optional<Checkpoint> recover() { return std::nullopt; }

  // Opens a batch's transaction; called before the batch's first send(). A transactional publisher
  // allows one open transaction at a time, so the dispatcher does not pipeline with it. Throws
  // TransientError (retry the batch) or FatalError (fenced by another relay with the same identity).
  virtual void begin() {}

  // Closes the batch's transaction once every delivery is final and before the source makes anything
  // durable: a transactional publisher writes `checkpoint` and commits, so the batch's records and its
  // checkpoint become visible to read_committed consumers together. Throws TransientError when the
  // commit failed and was aborted (nothing of the batch is visible: retry it), FatalError when fenced.
  virtual void commit(const Checkpoint& checkpoint) { (void)checkpoint; }

  // Writes, in the newest open transaction and beside the batch's records, the checkpoint that
  // commit() is expected to get (the batch's, were every record acknowledged), so that the commit need
  // not add the checkpoint's partition and write it then: two round trips fewer. Nothing when that
  // value was written last already. The dispatcher calls it again with the settled checkpoint before
  // a transaction begins behind this one (begin() waits for it to be acknowledged), so that the
  // transaction's last checkpoint record, the one a restart reads, precedes the next one's; commit()
  // still writes the one it gets if that differs.
  virtual void expect(const Checkpoint& checkpoint) { (void)checkpoint; }

  // True when records are only visible once commit() succeeds (exactly-once).
  [[nodiscard]] virtual bool transactional() const { return false; }

  // A transactional publisher that can open the next transaction (begin(), send()) while the previous
  // one is still to be committed: commit() then closes the oldest open transaction, send() and await()
  // serve the newest, abort() aborts every open one. The dispatcher begins the next batch's transaction
  // only once the previous batch's records are all acknowledged, and commits in order.
  [[nodiscard]] virtual bool overlapping() const { return false; }

  // Queues every message for asynchronous delivery; `out` (parallel to `messages`, all kPending)
  // receives each delivery report and must stay alive until complete() or abort() returns. A
  // message the client refuses at once (too large) is marked kPoison here. Backpressure (a full
  // local queue) is waited out, never dropped. Throws FatalError on a fatal producer error.
  virtual void send(std::span<const OutboxMessage> messages, std::span<Delivery> out) = 0;

  // Serves delivery reports for up to `timeout`; true once every message of every send() has a
  // final status.
  virtual bool await(std::chrono::milliseconds timeout) = 0;

  // Serves delivery reports for up to `timeout`; true once every delivery in `out` (one send()'s
  // array) has a final status, whatever later sends still have in flight, or once nothing is in flight
  // any more (after abort(): what is still kPending then will never be reported).
  virtual bool await(std::span<const Delivery> out, std::chrono::milliseconds timeout) {
    (void)out;
    return await(timeout);
  }

  // Gives up on everything still in flight, of every send() (shutdown past the drain timeout, a failed
  // batch): every pending delivery becomes kRetriable or stays kPending, never acknowledged later. A
  // transactional publisher aborts its open transaction.
  virtual void abort() noexcept = 0;

  // True while the publisher believes it can reach the cluster (for /readyz).
  [[nodiscard]] virtual bool connected() const = 0;
};

}  // namespace outbox_relay::core
