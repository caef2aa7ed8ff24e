#include "pg/decode/txn_queue.h"

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>

namespace outbox_relay::pg {

void TxnQueue::reset(uint64_t confirmed) noexcept {
  ready_.clear();
  in_flight_.clear();
  batches_.clear();
  ready_records_ = 0;
  ready_bytes_ = 0;
  recall_pending_ = false;
  confirmed_ = confirmed;
  partial_ = {};
}

bool TxnQueue::push(Transaction txn) {
  if (txn.end_lsn <= confirmed_) return false;
  ready_records_ += txn.size();
  ready_bytes_ += txn.bytes;
  ready_.push_back({next_seq_++, std::move(txn)});
  return true;
}

core::Batch TxnQueue::take(std::size_t max, std::size_t max_bytes) {
  if (batches_.size() >= kMaxBatches) {
    throw std::logic_error("wal source: fetch while " + std::to_string(kMaxBatches) +
                           " batches are in flight");
  }
  if (recall_pending_) {
    throw std::logic_error("wal source: fetch while the batch behind a retried one is in flight");
  }
  const bool behind = !in_flight_.empty();
  if (behind && ready_records_ == 0) return {};
  core::Batch batch;
  std::size_t count = 0;
  std::size_t bytes = 0;
  std::size_t entries = 0;
  while (!ready_.empty()) {
    auto& [seq, t] = ready_.front();
    if (count > 0 && (count + t.size() > max || bytes + t.bytes > max_bytes)) break;
    batch.messages.insert(batch.messages.end(), std::make_move_iterator(t.messages.begin()),
                          std::make_move_iterator(t.messages.end()));
    batch.rejected.insert(batch.rejected.end(), std::make_move_iterator(t.rejected.begin()),
                          std::make_move_iterator(t.rejected.end()));
    batch.end_position = t.end_lsn;
    count += t.size();
    bytes += t.bytes;
    ++entries;
    ready_records_ -= t.size();
    ready_bytes_ -= t.bytes;
    in_flight_.push_back(
        {seq, t.xid, t.end_lsn, t.commit_lsn, t.complete, t.messages.size(), t.rejected.size(), t.bytes});
    ready_.pop_front();
  }
  if (batch.empty()) {
    // Nothing to publish (and nothing in flight before them): the transactions taken are done already.
    confirmed_ = std::max(confirmed_, batch.end_position);
    partial_ = {};  // chunks always hold records: these are whole transactions
    in_flight_.clear();
    return batch;
  }
  batch.source_tag = ++next_tag_;
  batches_.push_back({batch.source_tag, batch.end_position, entries});
  return batch;
}

// Moves `confirm` and `partial` past one settled in-flight transaction (or chunk).
void TxnQueue::settle_one(const Shell& shell, uint64_t& confirm, Partial& partial) {
  if (shell.complete) {
    confirm = std::max(confirm, shell.end_lsn);
    partial = {};
  } else {
    if (partial.commit_lsn != shell.commit_lsn) partial = {shell.commit_lsn, 0};
    partial.records += shell.size();
  }
}

TxnQueue::CommitPlan TxnQueue::plan(const core::Batch& batch, const core::Settlement& settlement) const {
  if (batches_.empty() || batch.source_tag != batches_.front().tag) {
    throw std::logic_error("wal source: commit of a batch that is not the oldest in flight");
  }
  const auto entries = batches_.front().entries;
  CommitPlan plan;
  plan.confirm = confirmed_;
  plan.partial = partial_;
  for (auto it = in_flight_.begin(); it != in_flight_.end() && plan.settled < entries; ++it) {
    if (!settlement.durable(it->end_lsn)) break;
    ++plan.settled;
    settle_one(*it, plan.confirm, plan.partial);
  }
  plan.retry = plan.settled < entries;
  for (const auto& p : settlement.park)
    (p.rejected ? plan.park_rejected : plan.park_messages).push_back(p.index);
  return plan;
}

std::pair<uint64_t, TxnQueue::Partial> TxnQueue::settled_through(const core::Batch& batch) const {
  std::size_t entries = 0;
  bool found = false;
  for (const auto& b : batches_) {
    entries += b.entries;
    if (b.tag == batch.source_tag) {
      found = true;
      break;
    }
  }
  if (batch.source_tag == 0 || !found) throw std::logic_error("wal source: the batch is not in flight");
  std::pair<uint64_t, Partial> out{confirmed_, partial_};
  auto it = in_flight_.begin();
  for (std::size_t i = 0; i < entries && it != in_flight_.end(); ++i, ++it)
    settle_one(*it, out.first, out.second);
  return out;
}

void TxnQueue::finish(const CommitPlan& plan, const core::Batch& batch) {
  confirmed_ = std::max(confirmed_, plan.confirm);
  partial_ = plan.partial;
  const auto entries = batches_.front().entries;
  std::size_t message_index = 0;
  std::size_t rejected_index = 0;
  auto it = in_flight_.begin();
  for (std::size_t i = 0; i < plan.settled; ++i) {
    message_index += it->messages;
    rejected_index += it->rejected;
    it = in_flight_.erase(it);
  }
  batches_.erase(batches_.begin());
  if (plan.retry) {
    requeue(it, entries - plan.settled, batch, message_index, rejected_index);
    recall_pending_ = !batches_.empty();  // the events behind must follow the retried ones
  }
}

std::vector<core::RejectedRow> TxnQueue::skip_through(uint64_t position, Partial partial) {
  std::vector<core::RejectedRow> rows;
  if (partial.records > 0 && partial.commit_lsn >= std::max(position, confirmed_)) partial_ = partial;
  if (position <= confirmed_) return rows;
  confirmed_ = position;
  if (partial_.records > 0 && partial_.commit_lsn < confirmed_) partial_ = {};  // behind it: done
  while (!ready_.empty() && ready_.front().txn.end_lsn <= confirmed_) {
    auto& txn = ready_.front().txn;
    ready_records_ -= txn.size();
    ready_bytes_ -= txn.bytes;
    std::move(txn.rejected.begin(), txn.rejected.end(), std::back_inserter(rows));
    ready_.pop_front();
  }
  return rows;
}

void TxnQueue::abandon(const core::Batch& batch) {
  auto b = std::find_if(batches_.begin(), batches_.end(),
                        [&](const InFlightBatch& x) { return x.tag == batch.source_tag; });
  if (batch.source_tag == 0 || b == batches_.end()) return;
  std::size_t before = 0;
  for (auto x = batches_.begin(); x != b; ++x) before += x->entries;
  const auto entries = b->entries;
  batches_.erase(b);
  requeue(std::next(in_flight_.begin(), static_cast<std::ptrdiff_t>(before)), entries, batch, 0, 0);
  if (batches_.empty()) recall_pending_ = false;
}

void TxnQueue::requeue(std::list<Shell>::iterator first, std::size_t count, const core::Batch& batch,
                       std::size_t message_index, std::size_t rejected_index) {
  std::list<Ready> back;
  for (std::size_t i = 0; i < count; ++i) {
    Transaction t;
    t.xid = first->xid;
    t.end_lsn = first->end_lsn;
    t.commit_lsn = first->commit_lsn;
    t.complete = first->complete;
    t.bytes = first->bytes;
    const auto m = batch.messages.begin() + static_cast<std::ptrdiff_t>(message_index);
    t.messages.assign(m, m + static_cast<std::ptrdiff_t>(first->messages));
    const auto r = batch.rejected.begin() + static_cast<std::ptrdiff_t>(rejected_index);
    t.rejected.assign(r, r + static_cast<std::ptrdiff_t>(first->rejected));
    message_index += first->messages;
    rejected_index += first->rejected;
    ready_records_ += t.size();
    ready_bytes_ += t.bytes;
    back.push_back({first->seq, std::move(t)});
    first = in_flight_.erase(first);
  }
  ready_.merge(back, [](const Ready& a, const Ready& b) { return a.seq < b.seq; });
}

bool TxnQueue::advance_idle(uint64_t position) noexcept {
  if (!idle() || position <= confirmed_) return false;
  confirmed_ = position;
  if (partial_.records > 0 && partial_.commit_lsn < confirmed_) partial_ = {};
  return true;
}

}  // namespace outbox_relay::pg
