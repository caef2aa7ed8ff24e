#pragma once
// Where events go: Kafka. One batch in flight at a time; the batch boundary is explicit so that a
// batch can become one Kafka transaction.

#include <chrono>
#include <span>

#include "core/message.h"

namespace outbox_relay::core {

class Publisher {
 public:
  virtual ~Publisher() = default;

  // Queues every message for asynchronous delivery; `out` (parallel to `messages`, all kPending)
  // receives each delivery report and must stay alive until complete() or abort() returns. A
  // message the client refuses at once (too large) is marked kPoison here. Backpressure (a full
  // local queue) is waited out, never dropped. Throws FatalError on a fatal producer error.
  virtual void send(std::span<const OutboxMessage> messages, std::span<Delivery> out) = 0;

  // Serves delivery reports for up to `timeout`; true once every message of the last send() has a
  // final status.
  virtual bool await(std::chrono::milliseconds timeout) = 0;

  // Gives up on what is still in flight (shutdown past the drain timeout): every pending delivery
  // becomes kRetriable before it returns.
  virtual void abort() noexcept = 0;

  // True while the publisher believes it can reach the cluster (for /readyz).
  [[nodiscard]] virtual bool connected() const = 0;
};

}  // namespace outbox_relay::core
