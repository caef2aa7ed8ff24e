#pragma once
// systemd service notifications (Type=notify): READY=1, STOPPING=1, WATCHDOG=1 and STATUS= lines,
// sent with libsystemd's sd_notify to $NOTIFY_SOCKET. Every call is a no-op when the process was not
// started by systemd (no $NOTIFY_SOCKET) or the build has no libsystemd. Thread-safe.

#include <chrono>
#include <optional>
#include <string>

namespace outbox_relay::app {

void notify_ready(const std::string& status);
void notify_stopping();
void notify_status(const std::string& status);
void notify_watchdog();

// The unit's WatchdogSec= when the watchdog is enabled for this process.
std::optional<std::chrono::milliseconds> watchdog_interval();

}  // namespace outbox_relay::app
