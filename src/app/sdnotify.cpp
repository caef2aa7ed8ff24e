#include "app/sdnotify.h"

#ifdef OUTBOX_RELAY_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace outbox_relay::app {

namespace {

void send(const std::string& state) {
#ifdef OUTBOX_RELAY_HAVE_SYSTEMD
  sd_notify(0, state.c_str());
#else
  (void)state;
#endif
}

}  // namespace

void notify_ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }
void notify_stopping() { send("STOPPING=1\nSTATUS=draining in-flight events"); }
void notify_status(const std::string& status) { send("STATUS=" + status); }
void notify_watchdog() { send("WATCHDOG=1"); }

std::optional<std::chrono::milliseconds> watchdog_interval() {
#ifdef OUTBOX_RELAY_HAVE_SYSTEMD
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    return std::chrono::milliseconds(static_cast<int64_t>(usec / 1000));
  }
#endif
  return std::nullopt;
}

}  // namespace outbox_relay::app
