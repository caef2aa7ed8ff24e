#pragma once
// What the operations threads ask of the publisher beside the dispatcher's traffic: is a broker
// reachable, and how much is queued. Kept apart from the concrete producer so app/operations.h does
// not depend on librdkafka's wrapper (run.cpp adapts kafka::Producer).

#include <chrono>

namespace outbox_relay::app {

class PublisherProbe {
 public:
  virtual ~PublisherProbe() = default;
  // Blocks up to `timeout` for a round trip to the cluster; throws core::TransientError when no
  // broker answers. Thread: the statistics thread.
  virtual void check_connection(std::chrono::milliseconds timeout) = 0;
  // Messages queued and not yet reported (for /metrics). Thread-safe.
  [[nodiscard]] virtual int queue_depth() const = 0;
  // True while a broker answers (for /readyz and READY=1). Thread-safe.
  [[nodiscard]] virtual bool connected() const = 0;
};

}  // namespace outbox_relay::app
