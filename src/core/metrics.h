#pragma once
// Process-wide counters and histograms, updated by the dispatcher thread once per batch and read by
// the HTTP thread for /metrics. Lock-free where it is hot; per-topic maps take a mutex once per batch.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace outbox_relay::core {

// A cumulative histogram with fixed upper bounds (Prometheus style).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  [[nodiscard]] Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // per bucket, not cumulative; last is +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micro_{0};  // sum * 1e6, so it fits an atomic integer
};

struct Metrics {
  Metrics();

  // events published, by topic
  void add_published(const std::map<std::string, uint64_t>& by_topic);
  void add_failure(const std::string& reason, uint64_t n = 1);
  [[nodiscard]] std::map<std::string, uint64_t> published_by_topic() const;
  [[nodiscard]] std::map<std::string, uint64_t> failures_by_reason() const;

  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> parked{0};
  std::atomic<uint64_t> dead_lettered{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> reconnects{0};
  std::atomic<bool> exactly_once{false};            // the transaction metrics apply
  std::atomic<uint64_t> transactions_committed{0};  // exactly-once: Kafka transactions
  std::atomic<uint64_t> transactions_aborted{0};
  // The source's gauges: each mode's statistics (app/modes/, collect_stats) set only its own, on the
  // statistics thread; -1 (0 for the LSN) means unknown or not this mode's, and /metrics leaves it out.
  std::atomic<int64_t> backlog_rows{-1};          // poll: unsent rows
  std::atomic<int64_t> oldest_unsent_age_ms{-1};  // poll: age of the oldest unsent row
  std::atomic<int64_t> failed_rows{-1};           // poll: rows parked in the table (failed_at set)
  std::atomic<int64_t> slot_lag_bytes{-1};        // wal: server's current LSN - slot's confirmed LSN
  std::atomic<uint64_t> confirmed_lsn{0};         // wal: the slot's confirmed flush LSN
  std::atomic<int64_t> failover_slot_synced{-1};  // wal: 1/0 the slot is synchronized on a standby
  std::atomic<int64_t> failover_protected{-1};    // wal: 1/0 synchronized_standby_slots protects it
  std::atomic<int64_t> producer_queue_depth{0};
  std::atomic<bool> source_connected{false};
  std::atomic<bool> publisher_connected{false};
  std::atomic<bool> leader{true};             // false while a standby waits for the lock/slot
  std::atomic<int64_t> last_loop_unix_ms{0};  // heartbeat of the dispatcher loop (/healthz)

  Histogram batch_size;
  Histogram latency_seconds;      // created_at -> broker ack
  Histogram transaction_seconds;  // exactly-once: batch fetched -> its Kafka transaction committed
  // A batch's stages: fetch (claim / take from the stream), publish (fetched -> every record
  // acknowledged, waiting behind the batch before it included), settle (acknowledged -> durable in the
  // source: marked, or the position confirmed; with exactly-once the transaction's commit first).
  Histogram fetch_seconds;
  Histogram publish_seconds;
  Histogram settle_seconds;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> published_;
  std::map<std::string, uint64_t> failures_;
};

}  // namespace outbox_relay::core
