#include "core/dispatcher.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <set>

#include "core/errors.h"

namespace outbox_relay::core {

namespace {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Dispatcher::Dispatcher(OutboxSource& source, Publisher& publisher, Waiter& waiter, Metrics& metrics,
                       DispatcherConfig config, const std::atomic<bool>& stop)
    : source_(source),
      publisher_(publisher),
      waiter_(waiter),
      metrics_(metrics),
      config_(std::move(config)),
      stop_(stop),
      backoff_(config_.backoff_initial, config_.backoff_max) {}

Outcome Dispatcher::run() {
  while (!stop_.load()) {
    const auto r = step();
    metrics_.last_loop_unix_ms.store(unix_ms_now());
    if (r == StepResult::kIdle && config_.exit_when_idle && last_fetch_empty_ && source_.caught_up()) {
      return Outcome::kIdle;
    }
  }
  return Outcome::kStopped;
}

StepResult Dispatcher::step() {
  Batch batch;
  bool fetched = false;
  const auto step_started = waiter_.now();
  try {
    if (!open_) {
      source_.open();
      open_ = true;
      metrics_.source_connected.store(true);
    }
    batch = source_.fetch(config_.batch_size, config_.exit_when_idle ? Millis(0) : config_.poll_interval);
    fetched = true;
    metrics_.leader.store(source_.leader());
    last_fetch_empty_ = batch.empty();
    if (batch.empty()) {
      on_success();
      return StepResult::kIdle;
    }
    const auto fetched_at = waiter_.now();
    publish(batch);
    if (config_.on_poison == PoisonPolicy::kDlq) dead_letter(batch);
    const auto published_at = waiter_.now();
    source_.commit(batch, deliveries_);
    record(batch);
    if (spdlog::should_log(spdlog::level::debug)) {
      auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
      spdlog::debug("batch of {}: fetched in {:.1f} ms, published in {:.1f} ms, committed in {:.1f} ms",
                    batch.size(), ms(fetched_at - step_started), ms(published_at - fetched_at),
                    ms(waiter_.now() - published_at));
    }
  } catch (const TransientError& e) {
    // Reports still due must not land in deliveries_ once it is reused for the next batch.
    publisher_.abort();
    if (fetched) source_.abandon(batch);
    source_.close();
    open_ = false;
    metrics_.source_connected.store(false);
    on_transient(e.what());
    return StepResult::kRetrying;
  } catch (...) {
    publisher_.abort();  // fatal or config error: nothing in flight may outlive this batch's bookkeeping
    throw;
  }
  bool retriable = false;
  for (const auto& d : deliveries_) retriable = retriable || d.status == DeliveryStatus::kRetriable;
  if (retriable) {
    std::string cause;
    for (const auto& d : deliveries_) {
      if (d.status == DeliveryStatus::kRetriable) {
        cause = d.error;
        break;
      }
    }
    on_transient("could not deliver every event of the batch: " + cause);
    return StepResult::kRetrying;
  }
  on_success();
  return StepResult::kPublished;
}

void Dispatcher::publish(const Batch& batch) {
  deliveries_.assign(batch.messages.size(), Delivery{});
  if (config_.on_poison != PoisonPolicy::kBlock) {
    publisher_.send(batch.messages, deliveries_);
    wait_for_deliveries(deliveries_.size());
    return;
  }
  publish_in_waves(batch);
}

// Block policy: an aggregate's later events must not leave while an earlier one is poison, also when
// the broker rejects it asynchronously. So the batch goes out in waves, wave j holding the j-th
// pending event of every key (keyless events all go in the first): each wave is acknowledged before
// the next is sent, and a key whose event was poison (or failed for now, or was a malformed row) has
// its later events held (kDeferred): they stay unsent and the source skips the key while its poison
// event stays parked. Costs one round trip per event of the busiest key in the batch.
void Dispatcher::publish_in_waves(const Batch& batch) {
  const auto n = batch.messages.size();
  std::map<std::string, std::pair<std::size_t, std::string>> held;  // key -> (first held index, why)
  for (const auto& r : batch.rejected) {
    if (r.key)
      held.emplace(*r.key, std::make_pair(r.position, "held behind poison event \"" + r.row.id + "\""));
  }
  std::vector<bool> settled(n, false);
  for (;;) {
    std::vector<OutboxMessage> wave;
    std::vector<std::size_t> index;
    std::set<std::string> keys;
    for (std::size_t i = 0; i < n; ++i) {
      if (settled[i]) continue;
      const auto& m = batch.messages[i];
      if (m.key) {
        auto h = held.find(*m.key);
        if (h != held.end() && i >= h->second.first) {
          deliveries_[i] = {DeliveryStatus::kDeferred, h->second.second, -1, -1};
          settled[i] = true;
          continue;
        }
        if (!keys.insert(*m.key).second) continue;  // this key already has an event in the wave
      }
      wave.push_back(m);
      index.push_back(i);
    }
    if (wave.empty()) return;
    std::vector<Delivery> out(wave.size());
    std::swap(deliveries_, out);
    publisher_.send(wave, deliveries_);
    wait_for_deliveries(deliveries_.size());
    std::swap(deliveries_, out);
    for (std::size_t j = 0; j < index.size(); ++j) {
      const auto i = index[j];
      deliveries_[i] = out[j];
      settled[i] = true;
      const auto& m = batch.messages[i];
      if (m.key && out[j].status != DeliveryStatus::kAcked) {
        held.emplace(*m.key, std::make_pair(i + 1, "held behind event \"" + m.id + "\": " + out[j].error));
      }
    }
    if (stop_.load()) {  // draining: what was not sent yet stays unsent
      for (std::size_t i = 0; i < n; ++i) {
        if (!settled[i]) deliveries_[i] = {DeliveryStatus::kDeferred, "not sent: stopping", -1, -1};
      }
      return;
    }
  }
}

void Dispatcher::wait_for_deliveries(std::size_t count) {
  if (count == 0) return;
  const auto started = waiter_.now();
  std::optional<Clock::time_point> drain_deadline;
  while (!publisher_.await(Millis(100))) {
    source_.service();
    const auto now = waiter_.now();
    if (stop_.load() && !drain_deadline) {
      drain_deadline = now + config_.drain_timeout;
      spdlog::info("draining {} in-flight events (up to {} ms)", count, config_.drain_timeout.count());
    }
    if ((drain_deadline && now >= *drain_deadline) || now - started >= config_.delivery_timeout) {
      spdlog::warn("giving up on in-flight events after {} ms; they stay unsent and will be published again",
                   std::chrono::duration_cast<Millis>(now - started).count());
      publisher_.abort();
      return;
    }
  }
}

// Sends every poison message (and every row that could not be mapped) to the dead-letter topic, with
// the reason and origin in headers. One that the DLQ does not acknowledge becomes retriable instead of
// parked, so it is not marked done before it is somewhere durable.
void Dispatcher::dead_letter(const Batch& batch) {
  std::vector<OutboxMessage> dlq;
  std::vector<std::size_t> origin;  // index into deliveries_ (SIZE_MAX for rejected rows)
  auto add = [&](OutboxMessage m, const std::string& error, std::size_t idx) {
    m.headers.emplace_back("dlq.error", error);
    m.headers.emplace_back("dlq.original.topic", m.topic);
    m.topic = config_.dlq_topic;
    dlq.push_back(std::move(m));
    origin.push_back(idx);
  };
  for (std::size_t i = 0; i < batch.messages.size(); ++i) {
    if (deliveries_[i].status == DeliveryStatus::kPoison) add(batch.messages[i], deliveries_[i].error, i);
  }
  for (const auto& r : batch.rejected) {
    OutboxMessage m;
    m.id = r.row.id;
    m.headers.emplace_back("id", r.row.id);
    for (const auto& c : r.row.columns) {
      if (c.value) m.headers.emplace_back("dlq.column." + c.name, *c.value);
    }
    add(std::move(m), r.error, SIZE_MAX);
  }
  if (dlq.empty()) return;
  std::vector<Delivery> dlq_deliveries(dlq.size());
  std::swap(deliveries_, dlq_deliveries);  // wait_for_deliveries works on deliveries_
  publisher_.send(dlq, deliveries_);
  wait_for_deliveries(deliveries_.size());
  std::swap(deliveries_, dlq_deliveries);
  for (std::size_t j = 0; j < dlq.size(); ++j) {
    const auto& d = dlq_deliveries[j];
    if (d.status == DeliveryStatus::kAcked) {
      metrics_.dead_lettered.fetch_add(1);
      if (origin[j] != SIZE_MAX) {
        deliveries_[origin[j]].error =
            "dead-lettered to \"" + config_.dlq_topic + "\": " + deliveries_[origin[j]].error;
      }
    } else if (d.status == DeliveryStatus::kPoison) {
      // The dead-letter topic refuses it for good too (e.g. too large for both): park it with both
      // reasons rather than retry it, and back off, on every batch forever.
      if (origin[j] != SIZE_MAX) {
        deliveries_[origin[j]].error = "dead-letter topic \"" + config_.dlq_topic + "\" refused it too (" +
                                       d.error + "): " + deliveries_[origin[j]].error;
      }
    } else if (origin[j] != SIZE_MAX) {
      deliveries_[origin[j]].status = DeliveryStatus::kRetriable;
      deliveries_[origin[j]].error =
          "dead-letter topic \"" + config_.dlq_topic + "\" did not accept it: " + d.error;
    } else {
      throw TransientError("dead-letter topic \"" + config_.dlq_topic +
                           "\" did not accept a rejected row: " + d.error);
    }
  }
}

void Dispatcher::record(const Batch& batch) {
  std::map<std::string, uint64_t> by_topic;
  const auto now_ms = unix_ms_now();
  uint64_t poison = batch.rejected.size();
  for (std::size_t i = 0; i < batch.messages.size(); ++i) {
    const auto& d = deliveries_[i];
    if (d.status == DeliveryStatus::kAcked) {
      ++by_topic[batch.messages[i].topic];
      if (batch.messages[i].timestamp_ms > 0) {
        metrics_.latency_seconds.observe(static_cast<double>(now_ms - batch.messages[i].timestamp_ms) /
                                         1000.0);
      }
    } else if (d.status == DeliveryStatus::kPoison) {
      ++poison;
      spdlog::warn("parked event \"{}\" for topic \"{}\": {}", batch.messages[i].id, batch.messages[i].topic,
                   d.error);
    }
  }
  for (const auto& r : batch.rejected) spdlog::warn("parked malformed event \"{}\": {}", r.row.id, r.error);
  if (poison > 0) {
    metrics_.parked.fetch_add(poison);
    metrics_.add_failure("poison", poison);
  }
  metrics_.add_published(by_topic);
  metrics_.batches.fetch_add(1);
  metrics_.batch_size.observe(static_cast<double>(batch.size()));
}

void Dispatcher::on_transient(const std::string& what) {
  metrics_.retries.fetch_add(1);
  metrics_.add_failure("transient");
  if (healthy_) {
    spdlog::warn("{}; retrying with backoff", what);
    healthy_ = false;
  } else {
    spdlog::debug("still failing: {}", what);
  }
  const auto delay = backoff_.next(waiter_.random());
  waiter_.sleep_for(delay);
}

void Dispatcher::on_success() {
  if (!healthy_) {
    spdlog::info("recovered after {} retries", backoff_.failures());
    metrics_.reconnects.fetch_add(1);
    healthy_ = true;
  }
  backoff_.reset();
}

}  // namespace outbox_relay::core
