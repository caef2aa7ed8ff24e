#include "kafka/transactional_publisher.h"

#include <future>
#include <stdexcept>
#include <string>

#include "core/errors.h"

namespace outbox_relay::kafka {

TransactionalPublisher::TransactionalPublisher(const std::vector<Property>& properties,
                                               const TransactionConfig& transactions)
    : timeout_(transactions.timeout) {
  auto second = transactions;
  second.id_suffix = transactions.id_suffix + kSecondSuffix;
  producers_[0] = std::make_unique<Producer>(properties, transactions);
  producers_[1] = std::make_unique<Producer>(properties, second);
}

std::optional<core::Checkpoint> TransactionalPublisher::recover() {
  fence();
  return producers_[0]->recover();  // reads the checkpoint both write
}

void TransactionalPublisher::fence() {
  // Side by side: each init_transactions is a few round trips to the coordinator, and a start waits.
  auto second = std::async(std::launch::async, [this] { producers_[1]->fence(); });
  try {
    producers_[0]->fence();
  } catch (...) {
    second.wait();
    throw;
  }
  second.get();
}

void TransactionalPublisher::begin() {
  // The producers alternate, so while fewer than two are open, `next_` is never one of them.
  const auto p = next_;
  if (open_.size() >= producers_.size()) {
    throw std::logic_error("transactional publisher: begin() with both transactions open");
  }
  // In the checkpoint topic the newer transaction's record must follow the open one's: the latest
  // committed record is the relay's progress.
  if (!open_.empty() && !producers_[open_.back()]->await_checkpoint(timeout_)) {
    throw core::TransientError("the kafka transaction's checkpoint record was not acknowledged within " +
                               std::to_string(timeout_.count()) + " ms");
  }
  producers_[p]->begin();
  next_ = 1 - p;
  open_.push_back(p);
}

void TransactionalPublisher::commit(const core::Checkpoint& checkpoint) {
  if (open_.empty()) throw core::TransientError("no kafka transaction to commit");
  const auto p = open_.front();
  try {
    producers_[p]->commit(checkpoint);
  } catch (...) {
    if (!producers_[p]->in_transaction()) open_.pop_front();  // aborted by the failed commit
    throw;
  }
  open_.pop_front();
}

void TransactionalPublisher::abort() noexcept {
  // Each producer aborts its open transaction, if any, or gives up on what it still has in flight.
  for (auto& p : producers_) p->abort();
  open_.clear();
}

}  // namespace outbox_relay::kafka
