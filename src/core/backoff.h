#pragma once
// Capped exponential backoff with jitter for retrying transient failures: never a hot loop, never
// more than `max` between attempts.

#include "core/clock.h"

namespace outbox_relay::core {

class Backoff {
 public:
  Backoff(Millis initial, Millis max) : initial_(initial), max_(max) {}

  // The delay before the next attempt: initial * 2^failures, capped at max, then scaled by a
  // jitter factor in [0.5, 1) drawn from `random01`.
  [[nodiscard]] Millis next(double random01);
  void reset() { failures_ = 0; }
  [[nodiscard]] int failures() const { return failures_; }

 private:
  Millis initial_;
  Millis max_;
  int failures_ = 0;
};

}  // namespace outbox_relay::core
