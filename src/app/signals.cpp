#include "app/signals.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

namespace outbox_relay::app {

namespace {

constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGHUP};
constexpr int kIgnoredSignals[] = {SIGUSR1, SIGUSR2};
// Sent to the signal thread by its owner, with ending_ set, to end it.
constexpr int kWakeSignal = SIGUSR2;

sigset_t relay_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (const int s : kStopSignals) sigaddset(&set, s);
  for (const int s : kIgnoredSignals) sigaddset(&set, s);
  return set;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    default:
      return "a signal";
  }
}

bool stops(int sig) {
  for (const int s : kStopSignals) {
    if (s == sig) return true;
  }
  return false;
}

}  // namespace

void block_signals() {
  const auto set = relay_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

void default_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (const int s : kStopSignals) sigaddset(&set, s);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

SignalThread::SignalThread(std::atomic<bool>& stop, std::function<void()> on_stop)
    : thread_([this, &stop, on_stop = std::move(on_stop)] {
        const auto set = relay_signals();
        int count = 0;
        for (;;) {
          int sig = 0;
          if (sigwait(&set, &sig) != 0) continue;
          if (sig == kWakeSignal && ending_.load()) return;
          if (!stops(sig)) {
            spdlog::info("received {}, ignored (it has no meaning to outbox-relay)", signal_name(sig));
            continue;
          }
          if (++count == 1) {
            spdlog::info("received {}, stopping: draining in-flight events", signal_name(sig));
            stop.store(true);
            if (on_stop) on_stop();
          } else {
            spdlog::warn("received {} while stopping, exiting at once (unacknowledged events stay unsent)",
                         signal_name(sig));
            spdlog::default_logger()->flush();
            std::_Exit(1);
          }
        }
      }) {}

SignalThread::~SignalThread() {
  ending_.store(true);
  pthread_kill(thread_.native_handle(), kWakeSignal);
  thread_.join();
}

}  // namespace outbox_relay::app
