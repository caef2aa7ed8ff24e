#pragma once
// Injected time and randomness: production uses the steady clock and a seeded PRNG; unit tests pass
// fakes so that nothing sleeps.

#include <chrono>
#include <cstdint>
#include <functional>

namespace outbox_relay::core {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// What the dispatcher needs from the outside world to pass time.
class Waiter {
 public:
  virtual ~Waiter() = default;
  [[nodiscard]] virtual Clock::time_point now() const = 0;
  // Sleeps up to `d`; returns early (false) once a stop has been requested. Thread: dispatcher.
  virtual bool sleep_for(Millis d) = 0;
  // A number in [0, 1), for jitter.
  virtual double random() = 0;
};

}  // namespace outbox_relay::core

namespace outbox_relay::core {

// Milliseconds since the Unix epoch (wall clock): heartbeats, ages and event latency, never timeouts.
inline int64_t unix_ms_now() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace outbox_relay::core
