#pragma once
// The relay loop: fetch a batch from the source, publish it, wait for every delivery report, then
// commit the outcome to the source. The one invariant: a durable position never moves past a message
// the broker has not acknowledged (or that was parked as poison).

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

#include "core/backoff.h"
#include "core/batch.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/publisher.h"
#include "core/source.h"

namespace outbox_relay::core {

enum class PoisonPolicy {
  kPark,   // mark the row failed with the error; the rest flows
  kDlq,    // publish it to the dead-letter topic with the error in headers, then park it as sent there
  kBlock,  // park it and hold back that key's later events (the source skips keys with a parked
           // event) until an operator resolves it; other keys flow
};

struct DispatcherConfig {
  std::size_t batch_size = 1000;
  Millis poll_interval{1000};      // longest wait in fetch when nothing arrives
  Millis drain_timeout{10000};     // after a stop request, how long in-flight deliveries may take
  Millis delivery_timeout{60000};  // await bound for one batch before its stragglers count as retriable
  bool exit_when_idle = false;
  PoisonPolicy on_poison = PoisonPolicy::kPark;
  std::string dlq_topic;
  Millis backoff_initial{200};
  Millis backoff_max{10000};
};

enum class StepResult {
  kPublished,  // a batch went out and was committed (maybe partly: poison parked)
  kIdle,       // nothing to do within the poll interval
  kRetrying,   // a transient failure: backed off, will try again
};

enum class Outcome {
  kStopped,  // stop requested, in-flight work drained and committed
  kIdle,     // --exit-when-idle and the source is caught up
};

class Dispatcher {
 public:
  Dispatcher(OutboxSource& source, Publisher& publisher, Waiter& waiter, Metrics& metrics,
             DispatcherConfig config, const std::atomic<bool>& stop);

  // Runs until stopped or (with exit_when_idle) caught up. Throws FatalError on an unrecoverable error
  // and ConfigError on a setup the operator must fix. Thread: the dispatcher thread.
  Outcome run();

  // One iteration; unit tests drive this directly. Transient errors are handled inside (backoff).
  StepResult step();

  [[nodiscard]] bool healthy() const { return healthy_; }

 private:
  void publish(const Batch& batch);
  void publish_in_waves(const Batch& batch);
  void wait_for_deliveries(std::size_t count);
  void dead_letter(const Batch& batch);
  void record(const Batch& batch);
  void on_transient(const std::string& what);
  void on_success();

  OutboxSource& source_;
  Publisher& publisher_;
  Waiter& waiter_;
  Metrics& metrics_;
  DispatcherConfig config_;
  const std::atomic<bool>& stop_;
  Backoff backoff_;
  bool open_ = false;
  bool healthy_ = true;
  bool last_fetch_empty_ = false;
  std::vector<Delivery> deliveries_;
};

}  // namespace outbox_relay::core
