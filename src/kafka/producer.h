#pragma once
// The Kafka side: one idempotent librdkafka producer (acks=all), RAII over rd_kafka_t and its topic
// handles. Delivery reports land in the caller's Delivery array; serve them with await().

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/publisher.h"
#include "kafka/config.h"
#include "kafka/transaction_config.h"
#include "kafka/unknown_topics.h"

struct rd_kafka_s;
struct rd_kafka_topic_s;
struct rd_kafka_message_s;

namespace outbox_relay::kafka {

// Whether a delivery error means the broker will never take this record (park it) or may later.
bool is_poison_error(int rd_kafka_resp_err);

class Producer final : public core::Publisher {
 public:
  // Throws core::ConfigError naming the -X property librdkafka rejects. With `transactions`, the
  // producer is transactional (see TransactionConfig).
  explicit Producer(const std::vector<Property>& properties,
                    std::optional<TransactionConfig> transactions = std::nullopt);
  ~Producer() override;
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  void send(std::span<const core::OutboxMessage> messages, std::span<core::Delivery> out) override;
  bool await(std::chrono::milliseconds timeout) override;
  bool await(std::span<const core::Delivery> out, std::chrono::milliseconds timeout) override;
  void abort() noexcept override;
  [[nodiscard]] bool connected() const override { return brokers_up_.load(); }

  // Transactions (no-ops unless constructed with a TransactionConfig). fence(): init_transactions
  // once (fences earlier producers of the transactional id, aborting a transaction they left open);
  // recover() also reads the identity's checkpoint back.
  void fence();
  std::optional<core::Checkpoint> recover() override;
  void begin() override;
  void expect(const core::Checkpoint& checkpoint) override;
  void commit(const core::Checkpoint& checkpoint) override;
  [[nodiscard]] bool transactional() const override { return transactions_.has_value(); }
  [[nodiscard]] bool in_transaction() const { return in_transaction_; }
  // Serves delivery reports until every checkpoint record of the open transaction (written by
  // expect()) has a final report, up to `timeout`; true at once when none is in flight.
  bool await_checkpoint(std::chrono::milliseconds timeout);
  // Checkpoint records written in transactions so far (for tests: one per commit when expect() was right).
  [[nodiscard]] std::size_t checkpoint_records() const { return checkpoint_records_; }

  // Before the first record to `name` (a topic known at start: the dead-letter topic, written rarely,
  // and the checkpoint topic just created, so that the first record does not meet a topic being
  // created): waits up to `timeout` until each of its partitions has a leader that answers for it (a
  // broker that auto-creates topics creates it), then keeps its handle. False when it did not come up
  // in time, or the broker refuses it.
  bool prepare_topic(const std::string& name, std::chrono::milliseconds timeout);

  // How long abort() lets a transaction's records in flight finish before it aborts (see abort()).
  static constexpr std::chrono::milliseconds kAbortSettle{5000};

  // Topic handles kept between sends (bounded: see topic()).
  static constexpr std::size_t kMaxCachedTopics = 256;
  [[nodiscard]] std::size_t cached_topics() const { return topics_.size(); }

  // Messages queued in librdkafka and not yet reported (for metrics).
  [[nodiscard]] int queue_depth() const;

  // Blocks up to `timeout` for cluster metadata; throws core::TransientError when no broker answers.
  // Updates connected() either way. Thread-safe: the operations thread calls it for /readyz.
  void check_connection(std::chrono::milliseconds timeout);

 private:
  static void on_delivery(rd_kafka_s* rk, const rd_kafka_message_s* msg, void* opaque);
  // Records a failed send in `d`: poison or retriable (an unknown topic is retriable for a grace).
  void failed(core::Delivery& d, int err, const std::string& topic);
  static void on_error(rd_kafka_s* rk, int err, const char* reason, void* opaque);
  static void on_log(const rd_kafka_s* rk, int level, const char* fac, const char* buf);
  rd_kafka_topic_s* topic(const std::string& name);
  void throw_if_fatal();
  bool serve_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  void forget_in_flight() noexcept;
  void write_checkpoint(const core::Checkpoint& checkpoint, const char* purpose);
  void write_checkpoint(const std::string& value);

  struct RdKafkaDeleter {
    void operator()(rd_kafka_s* rk) const;
  };
  struct TopicDeleter {
    void operator()(rd_kafka_topic_s* t) const;
  };
  std::vector<Property> properties_;  // as given, for the checkpoint reader
  std::optional<TransactionConfig> transactions_;
  bool initialized_ = false;     // init_transactions() done
  bool in_transaction_ = false;  // begin() called, not yet committed or aborted
  // The open transaction's checkpoint records: one report each (a list: stable addresses), emptied
  // only once their reports can no longer come (forget_in_flight()); the value last written.
  std::list<core::Delivery> checkpoint_deliveries_;
  std::optional<std::string> checkpoint_written_;
  std::size_t checkpoint_records_ = 0;
  std::unique_ptr<rd_kafka_s, RdKafkaDeleter> rk_;
  std::unordered_map<std::string, std::unique_ptr<rd_kafka_topic_s, TopicDeleter>> topics_;
  std::size_t outstanding_ = 0;  // reports still due for every send(); dispatcher thread only
  uint64_t generation_ = 0;      // bumped when abort() gives up on the reports of a send
  UnknownTopics unknown_topics_{std::chrono::seconds(30)};
  std::atomic<bool> brokers_up_{false};
  std::atomic<bool> fatal_{false};
  std::atomic<bool> was_down_{false};  // for logging the recovery once
};

}  // namespace outbox_relay::kafka
