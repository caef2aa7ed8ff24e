#pragma once
// Signal handling without async-signal-unsafe handlers: SIGINT/SIGTERM are blocked in every thread
// (call block_signals() before any thread starts, librdkafka's included) and a dedicated thread
// sigwait()s for them. First signal: request a stop (drain). Second: exit at once, which is safe
// because nothing unacknowledged is ever committed.

#include <atomic>
#include <functional>
#include <thread>

namespace outbox_relay::app {

void block_signals();

// Undoes block_signals for SIGINT/SIGTERM in the calling thread: short one-shot commands die on them
// as any CLI tool does, since nothing they do is left half-done (each write is one transaction).
void default_signals();

class SignalThread {
 public:
  // `on_stop` runs on the signal thread after `stop` is set (e.g. to wake sleepers).
  SignalThread(std::atomic<bool>& stop, std::function<void()> on_stop);
  ~SignalThread();
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  std::thread thread_;
};

}  // namespace outbox_relay::app
