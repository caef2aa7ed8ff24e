#include "core/metrics.h"

#include <algorithm>

namespace outbox_relay::core {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1) {}

void Histogram::observe(double v) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micro_.fetch_add(static_cast<uint64_t>(std::max(0.0, v) * 1e6), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t acc = 0;
  for (const auto& b : buckets_) {
    acc += b.load(std::memory_order_relaxed);
    s.cumulative.push_back(acc);
  }
  s.count = acc;
  s.sum = static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

namespace {

std::vector<double> stage_bounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
}

}  // namespace

Metrics::Metrics()
    : batch_size({1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000}),
      latency_seconds({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      transaction_seconds({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      fetch_seconds(stage_bounds()),
      publish_seconds(stage_bounds()),
      settle_seconds(stage_bounds()) {}

void Metrics::add_published(const std::map<std::string, uint64_t>& by_topic) {
  std::lock_guard lock(mu_);
  for (const auto& [topic, n] : by_topic) published_[topic] += n;
}

void Metrics::add_failure(const std::string& reason, uint64_t n) {
  std::lock_guard lock(mu_);
  failures_[reason] += n;
}

std::map<std::string, uint64_t> Metrics::published_by_topic() const {
  std::lock_guard lock(mu_);
  return published_;
}

std::map<std::string, uint64_t> Metrics::failures_by_reason() const {
  std::lock_guard lock(mu_);
  return failures_;
}

}  // namespace outbox_relay::core
