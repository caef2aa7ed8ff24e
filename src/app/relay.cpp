#include "app/relay.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <random>

#include "app/operations.h"
#include "app/sdnotify.h"
#include "app/signals.h"
#include "core/dispatcher.h"
#include "core/duration.h"
#include "core/errors.h"
#include "kafka/producer.h"
#include "pg/common/conninfo.h"
#include "pg/common/migrate.h"
#include "pg/poll/poll_source.h"
#include "pg/wal/wal_source.h"

namespace outbox_relay::app {

namespace {

// The real clock; sleep_for wakes early when a stop is requested.
class RealWaiter final : public core::Waiter {
 public:
  explicit RealWaiter(const std::atomic<bool>& stop) : stop_(stop), rng_(std::random_device{}()) {}
  [[nodiscard]] core::Clock::time_point now() const override { return core::Clock::now(); }
  bool sleep_for(core::Millis d) override {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [this] { return stop_.load(); });
  }
  double random() override { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }
  void wake() {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  }

 private:
  const std::atomic<bool>& stop_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::mt19937_64 rng_;
};

std::unique_ptr<core::OutboxSource> make_source(const Options& o) {
  core::Router router(o.layout());
  if (o.mode == Mode::kWal) {
    pg::WalSourceConfig c;
    c.conninfo = o.db_url;
    c.table = o.table;
    c.slot = o.slot;
    c.publication = o.publication;
    c.create_slot = !o.require_slot;
    c.create_publication = !o.require_slot;
    c.status_interval = o.status_interval;
    c.heartbeat_interval = o.heartbeat_interval;
    c.message_prefix = o.message_prefix;
    c.session_timeout = o.session_timeout;
    return std::make_unique<pg::WalSource>(std::move(c), std::move(router));
  }
  pg::PollSourceConfig c;
  c.conninfo = o.db_url;
  c.table = o.table;
  c.on_sent = o.on_sent;
  c.shard_index = o.shard_index;
  c.shard_count = o.shard_count;
  c.skip_blocked_keys = o.on_poison == core::PoisonPolicy::kBlock;
  c.order_column = o.order_by;
  c.session_timeout = o.session_timeout;
  // block policy sends in waves, one batch at a time: a second session would only hold a connection
  c.pipeline = o.pipeline && o.on_poison != core::PoisonPolicy::kBlock;
  return std::make_unique<pg::PollSource>(std::move(c), std::move(router));
}

void log_settings(const Options& o) {
  spdlog::info("outbox-relay {} starting: mode={} table=\"{}\" layout={} db={} kafka={} batch-size={}",
               OUTBOX_RELAY_VERSION, o.mode == Mode::kWal ? "wal" : "poll", o.table, o.layout_name,
               pg::redact_conninfo(o.db_url), o.kafka_brokers, o.batch_size);
  for (const auto& [k, v] : o.kafka_overrides) {
    spdlog::info("kafka property {}={}", k, kafka::is_secret_property(k) ? "[redacted]" : v);
  }
  std::string effective;  // every setting, secrets redacted (app/secrets.h)
  for (const auto& [k, v] : o.effective) {
    const bool quote = v.empty() || v.find(' ') != std::string::npos;
    effective += " " + k + "=" + (quote ? "\"" + v + "\"" : v);
  }
  spdlog::info("effective config:{}", effective);
}

}  // namespace

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("outbox-relay");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

int run_relay(const Options& o) {
  log_settings(o);
  std::atomic<bool> stop{false};
  RealWaiter waiter(stop);
  // The source, for the signal thread to cut its waits short; guarded so it is never reached once gone.
  std::mutex wake_mu;
  core::OutboxSource* wake_source = nullptr;
  SignalThread signals(stop, [&waiter, &wake_mu, &wake_source] {
    notify_stopping();
    waiter.wake();
    std::lock_guard lock(wake_mu);
    if (wake_source != nullptr) wake_source->wake();
  });
  core::Metrics metrics;
  try {
    kafka::Producer producer(o.producer_properties());
    Operations operations(o, metrics, producer);  // HTTP, statistics, sd_notify, --retention
    auto source = make_source(o);
    {
      std::lock_guard lock(wake_mu);
      wake_source = source.get();
    }
    struct Unpublish {
      std::mutex& mu;
      core::OutboxSource*& p;
      ~Unpublish() {
        std::lock_guard lock(mu);
        p = nullptr;
      }
    } unpublish{wake_mu, wake_source};
    core::Dispatcher dispatcher(*source, producer, waiter, metrics, o.dispatcher_config(), stop);
    const auto outcome = dispatcher.run();
    source->close();
    spdlog::info(
        "stopped ({}): {} batches, {} events published, {} parked",
        outcome == core::Outcome::kIdle ? "idle" : "signal", metrics.batches.load(),
        [&] {
          uint64_t n = 0;
          for (const auto& [t, c] : metrics.published_by_topic()) n += c;
          return n;
        }(),
        metrics.parked.load());
    return kExitOk;
  } catch (const core::ConfigError& e) {
    spdlog::error("{}", e.what());
    return kExitConfig;
  } catch (const core::FatalError& e) {
    spdlog::error("fatal: {}", e.what());
    return kExitFailure;
  } catch (const std::exception& e) {
    // A failure no layer classified: end with its message rather than std::terminate's bare abort.
    spdlog::error("fatal: unexpected error: {}", e.what());
    return kExitFailure;
  }
}

int run_migrate(const Options& o) {
  try {
    const auto applied = pg::migrate(o.db_url);
    spdlog::info("schema is current ({} migrations applied now)", applied.size());
    return kExitOk;
  } catch (const std::exception& e) {
    spdlog::error("migrate failed: {}", e.what());
    return kExitFailure;
  }
}

}  // namespace outbox_relay::app
