#include "app/signals.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

namespace outbox_relay::app {

namespace {

sigset_t relay_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);  // used internally to end the signal thread
  return set;
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
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

SignalThread::SignalThread(std::atomic<bool>& stop, std::function<void()> on_stop)
    : thread_([&stop, on_stop = std::move(on_stop)] {
        const auto set = relay_signals();
        int count = 0;
        for (;;) {
          int sig = 0;
          if (sigwait(&set, &sig) != 0) continue;
          if (sig == SIGUSR2) return;
          if (++count == 1) {
            spdlog::info("received {}, stopping: draining in-flight events",
                         sig == SIGINT ? "SIGINT" : "SIGTERM");
            stop.store(true);
            if (on_stop) on_stop();
          } else {
            spdlog::warn("received a second signal, exiting at once (unacknowledged events stay unsent)");
            spdlog::default_logger()->flush();
            std::_Exit(1);
          }
        }
      }) {}

SignalThread::~SignalThread() {
  pthread_kill(thread_.native_handle(), SIGUSR2);
  thread_.join();
}

}  // namespace outbox_relay::app
