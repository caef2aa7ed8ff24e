#pragma once
// What /healthz and /readyz answer, from the metrics alone. Pure: unit-tested with made-up times.
//
// /healthz is liveness: the dispatcher loop stamps metrics.last_loop_unix_ms after every pass. A pass
// may legitimately block for the poll interval, a whole delivery wait, a backoff and a reconnect, so
// the loop counts as stalled only when no stamp came for longer than all of those together.
// /readyz is readiness: connected to PostgreSQL and to a Kafka broker; the body says leader/standby.

#include <chrono>
#include <cstdint>
#include <string>

#include "core/dispatcher.h"
#include "core/metrics.h"

namespace outbox_relay::http {

struct ProbeResult {
  int status = 200;
  std::string body;
};

// The longest a healthy dispatcher pass can take with this configuration.
std::chrono::milliseconds stall_limit(const core::DispatcherConfig& config);

// `started_unix_ms` stands in for the heartbeat until the first pass completes.
ProbeResult health(const core::Metrics& m, int64_t now_unix_ms, int64_t started_unix_ms,
                   std::chrono::milliseconds limit);

ProbeResult readiness(const core::Metrics& m);

}  // namespace outbox_relay::http
