#pragma once
// Exactly-once publishing with two transactional producers taking turns, one Kafka transaction each.
// Why two: a transaction's commit returns once the coordinator has logged it, but it writes the commit
// markers afterwards, and until they are written the same transactional id's next AddPartitionsToTxn is
// answered CONCURRENT_TRANSACTIONS, which librdkafka retries only after 20 ms. Back to back, nearly
// every transaction paid that wait (measured: a 36 ms cycle of which 20 ms was the retry, where the
// markers took about 2 ms). The other producer's last transaction ended a whole transaction earlier,
// so its markers are long written.
//
// Still one transaction at a time: begin() is only called once the previous transaction committed or
// aborted (the dispatcher's rule), so one partition's records keep their order across the two, and
// both write the one checkpoint key, whose latest committed record is the relay's progress.
// recover() fences both transactional ids (identity and identity + "~1") before the checkpoint is read,
// so a predecessor's open transaction on either is aborted first.

#include <array>
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

  std::optional<core::Checkpoint> recover() override;
  void begin() override;
  void commit(const core::Checkpoint& checkpoint) override { current().commit(checkpoint); }
  [[nodiscard]] bool transactional() const override { return true; }
  void send(std::span<const core::OutboxMessage> messages, std::span<core::Delivery> out) override {
    current().send(messages, out);
  }
  bool await(std::chrono::milliseconds timeout) override { return current().await(timeout); }
  bool await(std::span<const core::Delivery> out, std::chrono::milliseconds timeout) override {
    return current().await(out, timeout);
  }
  void abort() noexcept override { current().abort(); }
  [[nodiscard]] bool connected() const override { return producers_[0]->connected(); }

  // The first producer, for the operations thread's connection checks and queue depth.
  [[nodiscard]] Producer& first() { return *producers_[0]; }

 private:
  Producer& current() { return *producers_[turn_]; }
  std::array<std::unique_ptr<Producer>, 2> producers_;
  std::size_t turn_ = 0;
};

}  // namespace outbox_relay::kafka
