#pragma once
// Signal handling without async-signal-unsafe handlers: the signals below are blocked in every thread
// (call block_signals() before any thread starts, librdkafka's included) and a dedicated thread
// sigwait()s for them. Each catchable signal has a deliberate effect on the daemon:
//   SIGTERM, SIGINT, SIGHUP  stop: the first drains in-flight events and exits 0 (we log to stderr,
//                            so a hangup has no logs to reopen; it means the session is gone); a
//                            second one of them exits at once, which is safe because nothing
//                            unacknowledged is ever committed.
//   SIGUSR1, SIGUSR2         logged and ignored (no meaning to the relay); never stop the signal thread.
//   SIGPIPE                  ignored (a closed socket is an error return, not a death).
//   SIGQUIT                  left to its default: an immediate exit with a core dump, for debugging.
// The signal thread ends by a flag set only by its owner (then woken with a thread-directed signal),
// so no signal sent from outside can end it.

#include <atomic>
#include <functional>
#include <thread>

namespace outbox_relay::app {

void block_signals();

// Undoes block_signals for SIGINT/SIGTERM/SIGHUP in the calling thread: short one-shot commands die
// on them as any CLI tool does, since nothing they do is left half-done (each write is one
// transaction).
void default_signals();

class SignalThread {
 public:
  // `on_stop` runs on the signal thread after `stop` is set (e.g. to wake sleepers).
  SignalThread(std::atomic<bool>& stop, std::function<void()> on_stop);
  ~SignalThread();
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  std::atomic<bool> ending_{false};  // set by the destructor only
  std::thread thread_;
};

}  // namespace outbox_relay::app
