#include "pg/decode/txn_queue.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace outbox_relay::pg {

void TxnQueue::reset(uint64_t confirmed) noexcept {
  ready_.clear();
  in_flight_.clear();
  batch_ends_.clear();
  ready_records_ = 0;
  ready_bytes_ = 0;
  confirmed_ = confirmed;
}

bool TxnQueue::push(Transaction txn) {
  if (txn.end_lsn <= confirmed_) return false;
  ready_records_ += txn.size();
  ready_bytes_ += txn.bytes;
  ready_.push_back(std::move(txn));
  return true;
}

core::Batch TxnQueue::take(std::size_t max) {
  if (batch_ends_.size() >= kMaxBatches) {
    throw std::logic_error("wal source: fetch while " + std::to_string(kMaxBatches) +
                           " batches are in flight");
  }
  const bool behind = !in_flight_.empty();
  if (behind && ready_records_ == 0) return {};
  core::Batch batch;
  std::size_t count = 0;
  while (!ready_.empty()) {
    const auto& t = ready_.front();
    if (count > 0 && count + t.size() > max) break;
    batch.messages.insert(batch.messages.end(), t.messages.begin(), t.messages.end());
    batch.rejected.insert(batch.rejected.end(), t.rejected.begin(), t.rejected.end());
    batch.end_position = t.end_lsn;
    count += t.size();
    ready_records_ -= t.size();
    ready_bytes_ -= t.bytes;
    in_flight_.splice(in_flight_.end(), ready_, ready_.begin());
  }
  if (batch.empty()) {
    // Nothing to publish (and nothing in flight before them): the transactions taken are done already.
    confirmed_ = std::max(confirmed_, batch.end_position);
    in_flight_.clear();
    return batch;
  }
  batch_ends_.push_back(batch.end_position);
  return batch;
}

TxnQueue::CommitPlan TxnQueue::plan(const core::Batch& batch, const core::Settlement& settlement) const {
  if (batch_ends_.empty() || batch.end_position != batch_ends_.front()) {
    throw std::logic_error("wal source: commit of a batch that is not the oldest in flight");
  }
  const auto end = batch_ends_.front();
  CommitPlan plan;
  plan.confirm = confirmed_;
  for (const auto& t : in_flight_) {
    if (!settlement.durable(t.end_lsn) || t.end_lsn > end) break;
    plan.confirm = std::max(plan.confirm, t.end_lsn);
  }
  plan.retry = plan.confirm < end;
  for (const auto& p : settlement.park)
    (p.rejected ? plan.park_rejected : plan.park_messages).push_back(p.index);
  return plan;
}

void TxnQueue::finish(const CommitPlan& plan) noexcept {
  confirmed_ = std::max(confirmed_, plan.confirm);
  auto first = std::find_if(in_flight_.begin(), in_flight_.end(),
                            [this](const Transaction& t) { return t.end_lsn > confirmed_; });
  if (plan.retry) {
    requeue_from(first);  // and every later batch: their events must follow the retried ones
    return;
  }
  in_flight_.erase(in_flight_.begin(), first);
  batch_ends_.erase(batch_ends_.begin());
}

void TxnQueue::skip_through(uint64_t position) noexcept {
  if (position <= confirmed_) return;
  confirmed_ = position;
  while (!ready_.empty() && ready_.front().end_lsn <= confirmed_) {
    ready_records_ -= ready_.front().size();
    ready_bytes_ -= ready_.front().bytes;
    ready_.pop_front();
  }
}

void TxnQueue::abandon() noexcept { requeue_from(in_flight_.begin()); }

void TxnQueue::requeue_from(std::list<Transaction>::iterator first) noexcept {
  for (auto it = first; it != in_flight_.end(); ++it) {
    ready_records_ += it->size();
    ready_bytes_ += it->bytes;
  }
  ready_.splice(ready_.begin(), in_flight_, first, in_flight_.end());
  in_flight_.clear();
  batch_ends_.clear();
}

bool TxnQueue::advance_idle(uint64_t position) noexcept {
  if (!idle() || position <= confirmed_) return false;
  confirmed_ = position;
  return true;
}

}  // namespace outbox_relay::pg
