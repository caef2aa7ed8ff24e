// The daemon: wires the options into a source (the mode's), a Kafka producer, the dispatcher, the
// operations threads and the signal thread, and runs until a stop or, with --exit-when-idle, idle.

#include <spdlog/spdlog.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>

#include "app/commands/commands.h"
#include "app/exit_codes.h"
#include "app/modes.h"
#include "app/operations.h"
#include "app/publisher_probe.h"
#include "app/sdnotify.h"
#include "app/signals.h"
#include "core/dispatcher.h"
#include "kafka/producer.h"
#include "kafka/transactional_publisher.h"
#include "pg/common/conninfo.h"

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

// The operations threads' view of the Kafka producer.
class ProducerProbe final : public PublisherProbe {
 public:
  explicit ProducerProbe(kafka::Producer& producer) : producer_(producer) {}
  void check_connection(std::chrono::milliseconds timeout) override { producer_.check_connection(timeout); }
  [[nodiscard]] int queue_depth() const override { return producer_.queue_depth(); }
  [[nodiscard]] bool connected() const override { return producer_.connected(); }

 private:
  kafka::Producer& producer_;
};

void log_settings(const Options& o) {
  spdlog::info("outbox-relay {} starting: mode={} table=\"{}\" layout={} db={} kafka={} batch-size={}",
               OUTBOX_RELAY_VERSION, mode_for(o.mode).name(), o.table, o.layout_name,
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

// OUTBOX_RELAY_TEST_KILL_AT=POINT:N (integration tests): SIGKILL this process the Nth time a batch
// reaches POINT (core::DispatcherConfig::on_point), to test recovery at an exact step.
std::function<void(const char*)> kill_hook_from_env() {
  const char* spec = std::getenv("OUTBOX_RELAY_TEST_KILL_AT");
  if (spec == nullptr || *spec == '\0') return {};
  const std::string text(spec);
  const auto colon = text.find(':');
  const std::string point = text.substr(0, colon);
  const int nth = colon == std::string::npos ? 1 : std::atoi(text.c_str() + colon + 1);
  spdlog::warn("test hook: the relay kills itself the {} time a batch is {}", nth, point);
  return [point, nth, seen = 0](const char* at) mutable {
    if (point != at || ++seen < nth) return;
    spdlog::warn("test hook: killing the relay at \"{}\"", at);
    spdlog::default_logger()->flush();
    ::kill(::getpid(), SIGKILL);
  };
}

// The dead-letter topic is known at start and written rarely: it is made ready (created, where the
// brokers create topics) before the first poison event, not while a batch waits for its dead letters.
// Not ready in time: the relay starts anyway; dead letters wait for it, their events unparked.
void prepare_dead_letter_topic(kafka::Producer& producer, const std::string& topic) {
  constexpr std::chrono::seconds kWait(10);
  if (producer.prepare_topic(topic, kWait)) {
    spdlog::info("dead-letter topic \"{}\" is ready", topic);
  } else {
    spdlog::warn(
        "dead-letter topic \"{}\" is not ready after {} s (missing, refused, or Kafka unreachable): "
        "poison events stay unparked until it takes their dead letters",
        topic, kWait.count());
  }
}

}  // namespace

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
  return run_guarded("", [&] {
    // At-least-once: one idempotent producer. Exactly-once: two transactional ones taking turns.
    std::unique_ptr<kafka::Producer> producer;
    std::unique_ptr<kafka::TransactionalPublisher> transactional;
    core::Publisher* publisher = nullptr;
    if (o.transactions) {
      transactional =
          std::make_unique<kafka::TransactionalPublisher>(o.producer_properties(), *o.transactions);
      publisher = transactional.get();
      spdlog::info("exactly-once: transactional ids \"{}\" and \"{}{}\", checkpoint topic \"{}\"",
                   o.transactions->identity, o.transactions->identity,
                   kafka::TransactionalPublisher::kSecondSuffix, o.transactions->checkpoint_topic);
    } else {
      producer = std::make_unique<kafka::Producer>(o.producer_properties());
      publisher = producer.get();
      if (o.on_poison == core::PoisonPolicy::kDlq) prepare_dead_letter_topic(*producer, o.dlq_topic);
    }
    metrics.exactly_once.store(o.transactions.has_value());
    ProducerProbe probe(transactional ? transactional->first() : *producer);
    Operations operations(o, metrics, probe);  // HTTP, statistics, sd_notify, --retention
    auto source = mode_for(o.mode).make_source(o);
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
    auto dispatcher_config = o.dispatcher_config();
    dispatcher_config.on_point = kill_hook_from_env();
    core::Dispatcher dispatcher(*source, *publisher, waiter, metrics, dispatcher_config, stop);
    const auto outcome = dispatcher.run();
    source->close();
    uint64_t published = 0;
    for (const auto& [t, c] : metrics.published_by_topic()) published += c;
    spdlog::info("stopped ({}): {} batches, {} events published, {} parked",
                 outcome == core::Outcome::kIdle ? "idle" : "signal", metrics.batches.load(), published,
                 metrics.parked.load());
    return kExitOk;
  });
}

}  // namespace outbox_relay::app
