#include "http/prometheus.h"

#include <fmt/format.h>

#include <iterator>

namespace outbox_relay::http {

namespace {

class Writer {
 public:
  void header(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <typename T>
  void sample(std::string_view name, T value, std::string_view labels = {}) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  template <typename T>
  void single(std::string_view name, std::string_view type, std::string_view help, T value) {
    header(name, type, help);
    sample(name, value);
  }
  void histogram(std::string_view name, std::string_view help, const core::Histogram::Snapshot& s) {
    header(name, "histogram", help);
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i < s.bounds.size(); ++i) {
      sample(bucket, s.cumulative[i], fmt::format("le=\"{}\"", s.bounds[i]));
    }
    sample(bucket, s.count, "le=\"+Inf\"");
    sample(std::string(name) + "_sum", s.sum);
    sample(std::string(name) + "_count", s.count);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_prometheus(const core::Metrics& m, const ExpositionInfo& info) {
  Writer w;
  w.header("outbox_relay_build_info", "gauge", "Build and mode of this relay; always 1.");
  w.sample("outbox_relay_build_info", 1,
           fmt::format("version=\"{}\",mode=\"{}\"", escape_label_value(info.version),
                       escape_label_value(info.mode)));
  w.single("outbox_relay_start_time_seconds", "gauge", "Unix time the process started.",
           static_cast<double>(info.start_unix_ms) / 1000.0);

  w.header("outbox_relay_events_published_total", "counter",
           "Events acknowledged by Kafka (acks=all) and marked sent, by topic.");
  for (const auto& [topic, n] : m.published_by_topic()) {
    w.sample("outbox_relay_events_published_total", n,
             fmt::format("topic=\"{}\"", escape_label_value(topic)));
  }
  w.header("outbox_relay_failures_total", "counter",
           "Failures by reason: transient (batch retried) or poison (event parked).");
  for (const auto& [reason, n] : m.failures_by_reason()) {
    w.sample("outbox_relay_failures_total", n, fmt::format("reason=\"{}\"", escape_label_value(reason)));
  }
  w.single("outbox_relay_events_parked_total", "counter",
           "Events Kafka will never accept, parked with the error.", m.parked.load());
  w.single("outbox_relay_events_dead_lettered_total", "counter", "Events sent to the dead-letter topic.",
           m.dead_lettered.load());
  w.single("outbox_relay_batches_total", "counter", "Batches published and committed.", m.batches.load());
  w.single("outbox_relay_retries_total", "counter", "Transient failures retried after a backoff.",
           m.retries.load());
  w.single("outbox_relay_reconnects_total", "counter", "Recoveries after a run of transient failures.",
           m.reconnects.load());
  w.histogram("outbox_relay_batch_size", "Events per published batch.", m.batch_size.snapshot());
  w.histogram("outbox_relay_end_to_end_latency_seconds",
              "From the event's created_at to Kafka's acknowledgement.", m.latency_seconds.snapshot());
  w.histogram("outbox_relay_batch_fetch_seconds", "A batch's claim (poll) or take from the stream (wal).",
              m.fetch_seconds.snapshot());
  w.histogram("outbox_relay_batch_publish_seconds",
              "A batch fetched -> every record acknowledged (waiting behind the batch before it included).",
              m.publish_seconds.snapshot());
  w.histogram("outbox_relay_batch_settle_seconds",
              "A batch acknowledged -> durable in the source (rows marked or position confirmed; "
              "with exactly-once, its transaction committed first).",
              m.settle_seconds.snapshot());

  if (m.exactly_once.load()) {
    w.header("outbox_relay_transactions_total", "counter",
             "Kafka transactions (exactly-once): committed with their checkpoint, or aborted.");
    w.sample("outbox_relay_transactions_total", m.transactions_committed.load(), "outcome=\"committed\"");
    w.sample("outbox_relay_transactions_total", m.transactions_aborted.load(), "outcome=\"aborted\"");
    w.histogram("outbox_relay_transaction_duration_seconds",
                "From a batch fetched to its Kafka transaction committed (exactly-once).",
                m.transaction_seconds.snapshot());
  }

  if (const auto v = m.backlog_rows.load(); v >= 0) {
    w.single("outbox_relay_backlog_rows", "gauge", "Unsent, not failed rows in the outbox table (poll mode).",
             v);
  }
  if (const auto v = m.oldest_unsent_age_ms.load(); v >= 0) {
    w.single("outbox_relay_oldest_unsent_age_seconds", "gauge", "Age of the oldest unsent row (poll mode).",
             static_cast<double>(v) / 1000.0);
  }
  if (const auto v = m.failed_rows.load(); v >= 0) {
    w.single("outbox_relay_failed_rows", "gauge", "Rows parked in the outbox table with failed_at set.", v);
  }
  if (const auto v = m.slot_lag_bytes.load(); v >= 0) {
    w.single("outbox_relay_slot_lag_bytes", "gauge",
             "WAL between the server's current LSN and the slot's confirmed flush LSN (WAL mode).", v);
  }
  if (const auto v = m.confirmed_lsn.load(); v > 0) {
    w.single("outbox_relay_slot_confirmed_lsn", "gauge", "The slot's confirmed flush LSN as a byte position.",
             v);
  }
  if (const auto v = m.failover_slot_synced.load(); v >= 0) {
    w.single("outbox_relay_failover_slot_synced", "gauge",
             "1 when the WAL slot is synchronized on a standby listed in --db-url (PostgreSQL 17+).", v);
  }
  if (const auto v = m.failover_protected.load(); v >= 0) {
    w.single("outbox_relay_failover_protected", "gauge",
             "1 when synchronized_standby_slots on the primary holds back what the relay receives until "
             "the standby has it (PostgreSQL 17+).",
             v);
  }
  w.single("outbox_relay_producer_queue_depth", "gauge", "Messages queued in the producer, not yet reported.",
           m.producer_queue_depth.load());
  w.single("outbox_relay_source_connected", "gauge", "1 while connected to PostgreSQL.",
           m.source_connected.load() ? 1 : 0);
  w.single("outbox_relay_publisher_connected", "gauge", "1 while a Kafka broker answers.",
           m.publisher_connected.load() ? 1 : 0);
  w.single("outbox_relay_leader", "gauge", "1 while this instance relays, 0 while it waits as a standby.",
           m.leader.load() ? 1 : 0);
  w.single("outbox_relay_last_loop_timestamp_seconds", "gauge",
           "Unix time of the dispatcher loop's last pass.",
           static_cast<double>(m.last_loop_unix_ms.load()) / 1000.0);
  return w.take();
}

}  // namespace outbox_relay::http
