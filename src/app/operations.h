#pragma once
// Everything the daemon runs beside the dispatcher, each on its own thread and (for PostgreSQL) its
// own connection, so none of it touches the hot path:
//   - the HTTP endpoint (/metrics, /healthz, /readyz), when --http-addr is not off;
//   - statistics every --stats-interval: the mode's gauges (app/modes.h: backlog and oldest unsent age
//     for poll, slot lag and confirmed LSN for WAL), a Kafka metadata round trip for
//     publisher_connected, the producer's queue depth;
//   - systemd: READY=1 once PostgreSQL and Kafka are connected, WATCHDOG=1 while the dispatcher loop's
//     heartbeat is fresh (same rule as /healthz), STATUS= lines;
//   - --retention: deletes old sent rows in small batches.
// Construct after the publisher and destroy before it; the destructor stops and joins every thread
// (the longest wait is one statistics round: a 2 s metadata timeout or a 5 s connect timeout).

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "app/options.h"
#include "app/publisher_probe.h"
#include "core/metrics.h"

namespace outbox_relay::http {
class Server;
}

namespace outbox_relay::app {

class Operations {
 public:
  // Throws core::ConfigError when an explicitly configured --http-addr cannot be bound (the
  // default address being busy only logs a warning).
  Operations(const Options& options, core::Metrics& metrics, PublisherProbe& publisher);
  ~Operations();
  Operations(const Operations&) = delete;
  Operations& operator=(const Operations&) = delete;

  // The bound HTTP port (0 when the endpoint is off).
  [[nodiscard]] int http_port() const;

 private:
  void stats_loop();
  void supervise_loop();
  void retention_loop();
  // Waits up to `d`; false once the destructor asked every thread to end.
  bool wait(std::chrono::milliseconds d);

  const Options& options_;
  core::Metrics& metrics_;
  PublisherProbe& publisher_;
  int64_t started_unix_ms_;
  std::unique_ptr<http::Server> http_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> stopping_flag_{false};
  std::thread stats_, supervise_, retention_;
};

}  // namespace outbox_relay::app
