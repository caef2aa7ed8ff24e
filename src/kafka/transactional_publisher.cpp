#include "kafka/transactional_publisher.h"

#include <future>

namespace outbox_relay::kafka {

TransactionalPublisher::TransactionalPublisher(const std::vector<Property>& properties,
                                               const TransactionConfig& transactions) {
  auto second = transactions;
  second.id_suffix = transactions.id_suffix + kSecondSuffix;
  producers_[0] = std::make_unique<Producer>(properties, transactions);
  producers_[1] = std::make_unique<Producer>(properties, second);
}

std::optional<core::Checkpoint> TransactionalPublisher::recover() {
  // Both ids are fenced before the checkpoint is read, side by side (each init_transactions is a few
  // round trips to the coordinator, and a start waits for them).
  auto second = std::async(std::launch::async, [this] { producers_[1]->fence(); });
  try {
    producers_[0]->fence();
  } catch (...) {
    second.wait();
    throw;
  }
  second.get();
  return producers_[0]->recover();  // reads the checkpoint both write
}

void TransactionalPublisher::begin() {
  turn_ = 1 - turn_;
  current().begin();
}

}  // namespace outbox_relay::kafka
