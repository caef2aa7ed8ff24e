#pragma once
// Where events go: Kafka. Up to two batches in flight (the dispatcher's pipeline); each send() is one
// batch, so a batch can become one Kafka transaction.

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
  // batch): every pending delivery becomes kRetriable or stays kPending, never acknowledged later.
  virtual void abort() noexcept = 0;

  // True while the publisher believes it can reach the cluster (for /readyz).
  [[nodiscard]] virtual bool connected() const = 0;
};

}  // namespace outbox_relay::core
