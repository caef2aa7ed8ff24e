#pragma once
// Settlement: the one rule every durable position obeys. From a batch and its delivery reports it
// decides what may become durable (rows marked sent, a slot confirmed, a checkpoint written), what is
// parked, and what must be published again. Sources apply a Settlement; none of them decides on its
// own whether a delivery is final. The invariant it enforces: a durable position never moves past a
// message the broker has not acknowledged (or that was judged poison and is parked with it).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/message.h"

namespace outbox_relay::core {

// How a source's positions relate, which decides how far a failure reaches.
enum class Ordering {
  // Every message is its own durable position (poll mode: each row is marked on its own). A message
  // that is not final holds back only itself.
  kPerMessage,
  // Positions are ordered and one durable position covers everything before it (WAL mode: the slot's
  // confirmed LSN; message.position and row.position are the end LSN of their transaction). A message
  // that is not final holds back every message at or after its position, final or not.
  kPrefix,
};

// A delivery the broker will not revisit: acknowledged, or poison (to be parked or dead-lettered).
// kPending, kRetriable, kDeferred and kUnparked are not final: their message must be fetched again.
[[nodiscard]] bool is_final(DeliveryStatus status);

struct Settlement {
  // A poison message (rejected == false: index into batch.messages) or a malformed row (rejected ==
  // true: index into batch.rejected) to park, with the reason.
  struct Park {
    std::size_t index = 0;
    bool rejected = false;
    std::string reason;
  };
  std::vector<std::size_t> done;      // acknowledged messages that may be marked done, in batch order
  std::vector<Park> park;             // poison messages and malformed rows that may be parked now
  std::vector<std::size_t> retry;     // messages to publish again (not final, or held back behind one)
  std::vector<std::size_t> deferred;  // of retry, those deliberately not sent (kDeferred: block policy)
  // kPrefix: the position of the first message that is not final; everything before it is durable.
  // nullopt when every message is final (or with kPerMessage).
  std::optional<uint64_t> first_open;
  // Some delivery failed for now or was given up on (kRetriable, kPending, kUnparked; not kDeferred,
  // which was held back on purpose): the dispatcher backs off.
  bool failed = false;
  std::string failure;  // the first such delivery's error ("" when it had none)
  // The batch sent behind this one must be recalled (what of it reached Kafka goes out again): its
  // events must follow the ones retried. With kPrefix whenever something is retried for a failure;
  // with kPerMessage for a failed delivery to the event's own topic only (a kUnparked event never
  // reaches it, so nothing behind it has to wait).
  bool recall = false;

  // Whether something at `position` may become durable (kPrefix positions; always true otherwise).
  [[nodiscard]] bool durable(uint64_t position) const { return !first_open || position < *first_open; }
  // Every message and row of the batch is settled: nothing goes back.
  [[nodiscard]] bool complete() const { return retry.empty(); }
  // kTransaction: the batch's transaction must be aborted (some record was not acknowledged).
  bool abort = false;
};

// Whether the batch was published in one Kafka transaction (Publisher::transactional()).
enum class Atomicity {
  kPerRecord,    // each acknowledged record is in Kafka for good
  kTransaction,  // all or nothing: any record that is not acknowledged aborts the transaction, and
                 // with it every acknowledgement of the batch (poison is still parked: it is poison)
};

// The rule. `deliveries` is parallel to batch.messages; throws std::invalid_argument otherwise.
// Malformed rows (batch.rejected) are poison by nature and follow the same position rule. `rejected`,
// parallel to batch.rejected or empty, is what became of each such row's dead-letter copy (kPoison:
// park it, with that reason; kUnparked: not parked, fetched again); empty: every row is parked with
// its own error.
[[nodiscard]] Settlement settle(const Batch& batch, std::span<const Delivery> deliveries, Ordering ordering,
                                Atomicity atomicity = Atomicity::kPerRecord,
                                std::span<const Delivery> rejected = {});

// The dead-letter rule (--on-poison=dlq). `original` is a poison delivery (or a malformed row's reason
// as kPoison) and `dlq` the report of its copy sent to `dlq_topic`. Acknowledged there: still poison,
// parked as dead-lettered. Refused there for good too: still poison, parked with both reasons (rather
// than retried on every batch forever). Not acknowledged for now: kUnparked, so it is never marked done
// before it is somewhere durable.
[[nodiscard]] Delivery after_dead_letter(const Delivery& original, const Delivery& dlq,
                                         const std::string& dlq_topic);

}  // namespace outbox_relay::core
