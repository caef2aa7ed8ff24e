#pragma once
// Exactly-once publishing with two transactional producers taking turns, one Kafka transaction each.
// Why two: a transaction's commit returns once the coordinator has logged it, but it writes the commit
// markers afterwards, and until they are written the same transactional id's next AddPartitionsToTxn is
// answered CONCURRENT_TRANSACTIONS, which librdkafka retries only after 20 ms. Back to back, nearly
// every transaction paid that wait (measured: a 36 ms cycle of which 20 ms was the retry, where the
// markers took about 2 ms). The other producer's last transaction ended a whole transaction earlier,
// so its markers are long written.
//
// And it lets the next transaction start while the previous one commits (overlapping()): the dispatcher
// begins it once every record of the previous one is acknowledged, so in each partition the newer
// transaction's records follow the older one's; commits go in order (commit() closes the oldest open
// transaction), so the one checkpoint key both write holds the relay's progress in its latest committed
// record; abort() aborts both, so a failed older commit never lets the newer transaction through.
// The previous transaction's checkpoint record (written early, beside its records: expect()) must be
// acknowledged too before the next one begins, so that the next one's lands after it in the
// checkpoint topic.
// recover() fences both transactional ids (identity and identity + "~1") before the checkpoint is read,
// so a predecessor's open transaction on either is aborted first.

#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "core/publisher.h"
#include "kafka/config.h"
#include "kafka/producer.h"
#include "kafka/transaction_config.h"

namespace outbox_relay::kafka {

class TransactionalPublisher final : public core::Publisher {
 public:
  // The suffix of the second producer's transactional.id.
  static constexpr const char* kSecondSuffix = "~1";

  TransactionalPublisher(const std::vector<Property>& properties, const TransactionConfig& transactions);

  // Fences both transactional ids, then reads the checkpoint back.
  std::optional<core::Checkpoint> recover() override;
  // Only the fencing (init_transactions of both producers).
  void fence();
  void begin() override;
  void commit(const core::Checkpoint& checkpoint) override;
  void expect(const core::Checkpoint& checkpoint) override { newest().expect(checkpoint); }
  [[nodiscard]] bool transactional() const override { return true; }
  [[nodiscard]] bool overlapping() const override { return true; }
  void send(std::span<const core::OutboxMessage> messages, std::span<core::Delivery> out) override {
    newest().send(messages, out);
  }
  bool await(std::chrono::milliseconds timeout) override { return newest().await(timeout); }
  bool await(std::span<const core::Delivery> out, std::chrono::milliseconds timeout) override {
    return newest().await(out, timeout);
  }
  void abort() noexcept override;
  [[nodiscard]] bool connected() const override { return producers_[0]->connected(); }

  // The first producer, for the operations thread's connection checks and queue depth.
  [[nodiscard]] Producer& first() { return *producers_[0]; }

 private:
  // The producer of the newest open transaction (the last begun when none is open).
  Producer& newest() { return *producers_[open_.empty() ? 1 - next_ : open_.back()]; }
  std::array<std::unique_ptr<Producer>, 2> producers_;
  std::chrono::milliseconds timeout_;
  std::size_t next_ = 0;          // the producer the next begin() uses
  std::deque<std::size_t> open_;  // producers with an open transaction, oldest first
};

}  // namespace outbox_relay::kafka
