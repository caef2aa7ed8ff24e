#include "app/operations.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "app/modes.h"
#include "app/sdnotify.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/errors.h"
#include "http/probes.h"
#include "http/prometheus.h"
#include "http/server.h"
#include "pg/common/maintenance.h"

namespace outbox_relay::app {

namespace {
constexpr std::chrono::milliseconds kMetadataTimeout{2000};
constexpr std::chrono::milliseconds kStatementTimeout{5000};
}  // namespace

Operations::Operations(const Options& options, core::Metrics& metrics, PublisherProbe& publisher)
    : options_(options), metrics_(metrics), publisher_(publisher), started_unix_ms_(core::unix_ms_now()) {
  if (const auto addr = http::parse_listen_address(options_.http_addr)) {
    const auto limit = http::stall_limit(options_.dispatcher_config());
    http::Server::Handlers h;
    h.metrics = [this] {
      metrics_.producer_queue_depth.store(publisher_.queue_depth());
      return http::render_prometheus(
          metrics_, {OUTBOX_RELAY_VERSION, std::string(mode_for(options_.mode).name()), started_unix_ms_});
    };
    h.healthz = [this, limit] {
      return http::health(metrics_, core::unix_ms_now(), started_unix_ms_, limit);
    };
    h.readyz = [this] { return http::readiness(metrics_); };
    try {
      http_ = std::make_unique<http::Server>(*addr, std::move(h));
      spdlog::info("serving /metrics, /healthz and /readyz on {}:{}", addr->host, http_->port());
    } catch (const core::ConfigError& e) {
      if (options_.http_addr_explicit) throw;
      spdlog::warn("{}; running without the HTTP endpoint (set --http-addr to choose another address)",
                   e.what());
    }
  }
  stats_ = std::thread([this] { stats_loop(); });
  supervise_ = std::thread([this] { supervise_loop(); });
  if (options_.retention.count() > 0) retention_ = std::thread([this] { retention_loop(); });
}

Operations::~Operations() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    stopping_flag_.store(true);
  }
  cv_.notify_all();
  for (auto* t : {&stats_, &supervise_, &retention_}) {
    if (t->joinable()) t->join();
  }
  http_.reset();
}

int Operations::http_port() const { return http_ ? http_->port() : 0; }

bool Operations::wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void Operations::stats_loop() {
  const auto& mode = mode_for(options_.mode);
  std::unique_ptr<pqxx::connection> conn;
  bool pg_failing = false;
  bool kafka_failing = false;
  do {
    try {
      publisher_.check_connection(std::min(options_.stats_interval, kMetadataTimeout));
      if (kafka_failing) spdlog::info("kafka answers again");
      kafka_failing = false;
    } catch (const core::TransientError& e) {
      if (!kafka_failing) spdlog::warn("{}", e.what());
      kafka_failing = true;
    }
    metrics_.publisher_connected.store(publisher_.connected());
    metrics_.producer_queue_depth.store(publisher_.queue_depth());
    try {
      if (!conn) conn = pg::connect_side(options_.db_url, "outbox-relay stats", kStatementTimeout);
      mode.collect_stats(*conn, options_, metrics_);
      pg_failing = false;
    } catch (const std::exception& e) {
      // The dispatcher reports PostgreSQL trouble; here it only makes the gauges unknown.
      if (!pg_failing) spdlog::debug("statistics query failed: {}", e.what());
      pg_failing = true;
      conn.reset();
      mode.forget_stats(metrics_);
    }
  } while (wait(options_.stats_interval));
}

void Operations::supervise_loop() {
  const auto watchdog = watchdog_interval();
  const auto tick =
      watchdog ? std::clamp(*watchdog / 3, std::chrono::milliseconds(100), std::chrono::milliseconds(1000))
               : std::chrono::milliseconds(1000);
  const auto limit = http::stall_limit(options_.dispatcher_config());
  bool ready = false;
  bool stalled = false;
  int64_t last_status = 0;
  auto status = [this] {
    uint64_t published = 0;
    for (const auto& [t, n] : metrics_.published_by_topic()) published += n;
    const auto backlog = metrics_.backlog_rows.load();
    return fmt::format("{}; {} events published{}", metrics_.leader.load() ? "relaying" : "standby",
                       published, backlog >= 0 ? fmt::format(", backlog {}", backlog) : std::string());
  };
  do {
    const auto now = core::unix_ms_now();
    if (!ready && metrics_.source_connected.load() && metrics_.publisher_connected.load()) {
      ready = true;
      last_status = now;
      notify_ready(status());
      spdlog::info("ready: connected to PostgreSQL and Kafka");
    }
    const bool healthy = http::health(metrics_, now, started_unix_ms_, limit).status == 200;
    if (healthy && watchdog) notify_watchdog();
    if (!healthy && !stalled) {
      spdlog::error("the dispatcher loop has not completed a pass for over {}; not answering the watchdog",
                    core::format_duration(limit));
    }
    stalled = !healthy;
    if (ready && now - last_status >= 10000) {
      last_status = now;
      notify_status(status());
    }
  } while (wait(tick));
}

void Operations::retention_loop() {
  const auto interval =
      std::clamp(options_.retention / 10, std::chrono::milliseconds(1000), std::chrono::milliseconds(300000));
  const auto by = mode_for(options_.mode).retention_by();
  const auto layout = options_.layout();
  std::unique_ptr<pqxx::connection> conn;
  bool failing = false;
  do {
    try {
      if (!conn) conn = pg::connect_side(options_.db_url, "outbox-relay retention", kStatementTimeout);
      const auto n = pg::delete_older_than(*conn, options_.table, layout, by, options_.retention,
                                           kRetentionBatch, [this] { return !stopping_flag_.load(); });
      if (n > 0) {
        spdlog::info("retention: deleted {} rows of \"{}\" older than {}", n, options_.table,
                     core::format_duration(options_.retention));
      }
      failing = false;
    } catch (const core::ConfigError& e) {
      spdlog::error("retention disabled: {}", e.what());
      return;
    } catch (const std::exception& e) {
      if (!failing) spdlog::warn("retention pass failed (will retry): {}", e.what());
      failing = true;
      conn.reset();
    }
  } while (wait(interval));
}

}  // namespace outbox_relay::app
