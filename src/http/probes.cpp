#include "http/probes.h"

#include <fmt/format.h>

#include <algorithm>

namespace outbox_relay::http {

namespace {
// Connecting to PostgreSQL (connect_timeout) and scheduling slack on a loaded machine.
constexpr std::chrono::milliseconds kConnectAndSlack{30000};
}  // namespace

std::chrono::milliseconds stall_limit(const core::DispatcherConfig& c) {
  return c.poll_interval + c.delivery_timeout + c.backoff_max + kConnectAndSlack;
}

ProbeResult health(const core::Metrics& m, int64_t now_unix_ms, int64_t started_unix_ms,
                   std::chrono::milliseconds limit) {
  const auto beat = std::max(m.last_loop_unix_ms.load(), started_unix_ms);
  const auto age_ms = std::max<int64_t>(0, now_unix_ms - beat);
  if (age_ms <= limit.count()) {
    return {200,
            fmt::format("ok: dispatcher loop heartbeat {:.1f}s ago\n", static_cast<double>(age_ms) / 1000.0)};
  }
  return {503,
          fmt::format("stalled: no dispatcher loop heartbeat for {:.1f}s (limit {:.0f}s)\n",
                      static_cast<double>(age_ms) / 1000.0, static_cast<double>(limit.count()) / 1000.0)};
}

ProbeResult readiness(const core::Metrics& m) {
  const bool pg = m.source_connected.load();
  const bool kafka = m.publisher_connected.load();
  const char* role = m.leader.load() ? "leader" : "standby";
  if (pg && kafka) return {200, fmt::format("ready: {}\n", role)};
  std::string why;
  if (!pg) why += "postgresql not connected";
  if (!kafka) why += std::string(why.empty() ? "" : ", ") + "kafka not reachable";
  return {503, fmt::format("not ready ({}): {}\n", role, why)};
}

}  // namespace outbox_relay::http
