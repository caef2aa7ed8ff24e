#include "core/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "core/errors.h"

namespace outbox_relay::core {

Dispatcher::Dispatcher(OutboxSource& source, Publisher& publisher, Waiter& waiter, Metrics& metrics,
                       DispatcherConfig config, const std::atomic<bool>& stop)
    : source_(source),
      publisher_(publisher),
      waiter_(waiter),
      metrics_(metrics),
      config_(std::move(config)),
      stop_(stop),
      backoff_(config_.backoff_initial, config_.backoff_max) {}

Outcome Dispatcher::run() {
  while (!stop_.load()) {
    const auto r = step();
    metrics_.last_loop_unix_ms.store(unix_ms_now());
    if (r == StepResult::kIdle && config_.exit_when_idle && last_fetch_empty_ && source_.caught_up()) {
      if (recovered_ && open_) {
        try {
          refresh_idle_checkpoint();  // the next start finds nothing to apply
        } catch (const TransientError& e) {
          spdlog::warn("could not bring the exactly-once checkpoint up to date before exiting: {}", e.what());
        }
      }
      return Outcome::kIdle;
    }
  }
  if (ahead_) step();  // a batch sent before the stop: drain it and commit what was acknowledged
  return Outcome::kStopped;
}

// Two batches in flight need two open claims (poll) or queue slots (WAL); never with kBlock, whose waves
// need each batch's outcome before the next one is claimed. A transactional publisher has one Kafka
// transaction open at a time: the next batch is claimed while the older one is published, and sent once
// the older one's transaction committed, while the source marks the older one (finish()).
bool Dispatcher::pipelined() const {
  return config_.pipeline && config_.on_poison != PoisonPolicy::kBlock && source_.pipeline_depth() >= 2;
}

StepResult Dispatcher::step() {
  std::optional<InFlight> next;
  bool sent_any = false;  // some batch was sent in this step or is in flight from the step before
  try {
    if (!open_) {
      source_.open();
      open_ = true;
      metrics_.source_connected.store(true);
    }
    if (!recovered_ && source_.leader()) recover();
    if (!ahead_) {
      const auto started = waiter_.now();
      auto batch = fetch(config_.exit_when_idle ? Millis(0) : config_.poll_interval);
      metrics_.leader.store(source_.leader());
      last_fetch_empty_ = batch.empty();
      if (batch.empty()) {
        // A source that just took the lead returns an empty batch first: the next step recovers (above)
        // before it claims anything. The checkpoint is refreshed once nothing arrived for a while, not
        // in every lull of a steady stream, where its transaction would delay the next batch.
        if (!idle_since_) idle_since_ = started;
        if (recovered_ && waiter_.now() - *idle_since_ >= kIdleCheckpointAfter) refresh_idle_checkpoint();
        // Idle proves the connection, not that a batch can be committed: after a batch failed, only a
        // committed batch ends the backoff (a commit that keeps failing must not re-send at once).
        if (!batch_failed_) on_success();
        return StepResult::kIdle;
      }
      idle_since_.reset();
      ahead_.emplace(InFlight{std::move(batch), {}, {}, started, waiter_.now(), {}, {}, false});
    }
    if (!ahead_->sending) start(*ahead_);
    sent_any = true;
    if (pipelined() && !stop_.load()) {
      // The next batch is claimed and sent while this one waits for its acknowledgements. Kafka keeps
      // one partition's records in send order (idempotent producer), so per-key order holds.
      const auto started = waiter_.now();
      auto batch = fetch(Millis(0));
      if (!batch.empty()) {
        next.emplace(InFlight{std::move(batch), {}, {}, started, waiter_.now(), {}, {}, false});
        if (!publisher_.transactional()) start(*next);
      }
    }
    finish(*ahead_, next ? &*next : nullptr);
  } catch (const TransientError& e) {
    // Reports still due must not land in arrays that are about to go away.
    abort_transactions();
    if (next) source_.abandon(next->batch);
    if (ahead_) source_.abandon(ahead_->batch);
    ahead_.reset();
    source_.close();
    open_ = false;
    // A batch whose Kafka transaction committed may have failed to become durable in the source: the
    // checkpoint is read back and applied again before the next claim.
    recovered_ = !publisher_.transactional();
    metrics_.source_connected.store(false);
    batch_failed_ = batch_failed_ || sent_any;
    on_transient(e.what());
    return StepResult::kRetrying;
  } catch (...) {
    abort_transactions();  // fatal or config error: nothing in flight may outlive this batch's bookkeeping
    throw;
  }
  const InFlight done = std::move(*ahead_);
  ahead_ = std::move(next);
  if (done.settlement.abort && ahead_ && !done.settlement.failed) {
    // Poison aborted the transaction: its other events go out again first, so the batch claimed behind
    // it (not sent yet) is claimed again after them.
    source_.abandon(ahead_->batch);
    ahead_.reset();
  }
  if (done.settlement.failed) {
    batch_failed_ = true;
    // The events after a failed one go out again with it, in order: the batch sent behind it is
    // recalled too (what of it reached Kafka is sent again, with the same ids).
    if (ahead_ && done.settlement.recall) {
      abort_transactions();
      source_.abandon(ahead_->batch);
      ahead_.reset();
    }
    on_transient("could not deliver every event of the batch: " +
                 (done.settlement.failure.empty() ? std::string("no acknowledgement in time")
                                                  : done.settlement.failure));
    return StepResult::kRetrying;
  }
  batch_failed_ = false;
  on_success();
  return StepResult::kPublished;
}

// Exactly-once: fences earlier producers of this relay's identity and applies the last checkpoint they
// (or this process, before a reconnect) committed, so the events it names are not published again.
void Dispatcher::recover() {
  if (const auto checkpoint = publisher_.recover()) {
    source_.recover(*checkpoint);
    last_checkpoint_ = *checkpoint;
  }
  recovered_ = true;
}

void Dispatcher::commit_transaction(const Checkpoint& checkpoint, Clock::time_point opened) {
  publisher_.commit(checkpoint);
  if (open_transactions_ > 0) --open_transactions_;
  last_checkpoint_ = checkpoint;
  metrics_.transactions_committed.fetch_add(1);
  metrics_.transaction_seconds.observe(std::chrono::duration<double>(waiter_.now() - opened).count());
}

// While idle (for kIdleCheckpointAfter, and before --exit-when-idle returns), the checkpoint is
// brought up to what the source holds durably (poll mode: no ids left to mark; WAL mode: the confirmed
// position), in a transaction of its own. Otherwise a row named by the last checkpoint and made pending
// again by `replay` while the relay is down would be marked sent, not published again, by the next
// start's recovery.
void Dispatcher::refresh_idle_checkpoint() {
  if (!publisher_.transactional()) return;
  const auto checkpoint = source_.checkpoint(Batch{}, Settlement{});
  if (checkpoint == last_checkpoint_) return;
  const auto opened = waiter_.now();
  begin_transaction();
  commit_transaction(checkpoint, opened);
}

std::size_t Dispatcher::fetch_limit() const {
  const auto most = config_.batch_size * scale_;
  if (config_.batch_bytes == 0) return most;
  // Before any size is known, a small first batch (64 KiB per event: large events must not arrive
  // batch_size at a time); the sizes it brings set the next one's.
  const double per_event = bytes_per_event_ > 0 ? bytes_per_event_ : 65536.0;
  auto bytes = config_.batch_bytes * scale_;
  if (config_.claim_bytes > 0) bytes = std::min(bytes, std::max(config_.claim_bytes, config_.batch_bytes));
  const auto n = static_cast<std::size_t>(static_cast<double>(bytes) / per_event);
  return std::clamp<std::size_t>(n, 1, most);
}

// Claims the next batch. Exactly-once: a claim that came back full (or short only because the source
// returns whole transactions, with more ready) means a backlog, and the next one
// may hold twice as much (one transaction's fixed cost spread over more events), up to
// transaction_batches; a short one means caught up, and the next is one batch again.
Batch Dispatcher::fetch(Millis wait) {
  const auto limit = fetch_limit();
  auto batch = source_.fetch(limit, wait);
  if (publisher_.transactional() && config_.transaction_batches > 1) {
    const bool full = batch.size() >= limit || (!batch.empty() && source_.more_ready());
    scale_ = full ? std::min(scale_ * 2, config_.transaction_batches) : 1;
  }
  return batch;
}

void Dispatcher::learn_sizes(const Batch& batch) {
  if (batch.messages.empty()) return;
  std::size_t bytes = 0;
  for (const auto& m : batch.messages) bytes += memory_bytes(m);
  const double avg = static_cast<double>(bytes) / static_cast<double>(batch.messages.size());
  bytes_per_event_ = bytes_per_event_ > 0 ? 0.5 * bytes_per_event_ + 0.5 * avg : avg;
}

// Sends a fetched batch: asynchronously, or (block policy) wave by wave until it is settled.
void Dispatcher::start(InFlight& f) {
  learn_sizes(f.batch);
  f.deliveries.assign(f.batch.messages.size(), Delivery{});
  f.sending = true;
  begin_transaction();
  if (publisher_.transactional()) {
    if (const auto expected = source_.expected_checkpoint(f.batch)) publisher_.expect(*expected);
  }
  if (config_.on_poison == PoisonPolicy::kBlock) {
    publish_in_waves(f);
  } else {
    publisher_.send(f.batch.messages, f.deliveries);
  }
  if (config_.on_point) config_.on_point("sent");
}

// Waits for the batch's deliveries, dead-letters its poison (dlq policy), settles it, closes its Kafka
// transaction (exactly-once: records and checkpoint become visible together, before anything is
// durable in the source) and has the source apply the settlement.
void Dispatcher::finish(InFlight& f, InFlight* behind) {
  wait_for(f.deliveries);
  if (config_.on_poison == PoisonPolicy::kDlq) dead_letter(f);
  f.sent = waiter_.now();
  if (config_.on_point) config_.on_point("delivered");
  const bool transactional = publisher_.transactional();
  f.settlement = settle(f.batch, f.deliveries, source_.ordering(),
                        transactional ? Atomicity::kTransaction : Atomicity::kPerRecord, f.dead_letters);
  refuse_misconfiguration(f);
  if (f.settlement.abort) {
    abort_transactions();
  } else if (transactional) {
    const auto checkpoint = source_.checkpoint(f.batch, f.settlement);
    // Written now, before a transaction begins behind it, if it is not the one written ahead: the
    // transaction's last checkpoint record must precede the next transaction's in the topic.
    publisher_.expect(checkpoint);
    // The batch claimed behind this one goes out in the next transaction: while this one commits (an
    // overlapping publisher; its records follow this batch's, all acknowledged, in every partition, and
    // if this commit fails the next transaction is aborted with it) or else once it committed, while
    // this one is marked. Its checkpoint need not name this batch's rows: the marking ends (or fails,
    // aborting it) before the next transaction commits.
    const bool next = behind != nullptr && !f.settlement.failed;
    const bool overlap = next && publisher_.overlapping();
    if (overlap) start(*behind);
    commit_transaction(checkpoint, f.fetched);
    if (next && !overlap) start(*behind);
  } else {
    publisher_.commit(Checkpoint{});
  }
  if (config_.on_point) config_.on_point("published");
  source_.commit(f.batch, f.settlement);
  if (config_.on_point) config_.on_point("committed");
  record(f);
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const double fetch = seconds(f.fetched - f.started), publish = seconds(f.sent - f.fetched),
               settle = seconds(waiter_.now() - f.sent);
  metrics_.fetch_seconds.observe(fetch);
  metrics_.publish_seconds.observe(publish);
  metrics_.settle_seconds.observe(settle);
  spdlog::debug("batch of {}: fetched in {:.1f} ms, published in {:.1f} ms, committed in {:.1f} ms",
                f.batch.size(), fetch * 1e3, publish * 1e3, settle * 1e3);
}

// Block policy: an aggregate's later events must not leave while an earlier one is poison, also when
// the broker rejects it asynchronously. So the batch goes out in waves, wave j holding the j-th
// pending event of every key (keyless events all go in the first): each wave is acknowledged before
// the next is sent, and a key whose event was poison (or failed for now, or was a malformed row) has
// its later events held (kDeferred): they stay unsent and the source skips the key while its poison
// event stays parked. Costs one round trip per event of the busiest key in the batch.
void Dispatcher::publish_in_waves(InFlight& f) {
  const auto& batch = f.batch;
  const auto n = batch.messages.size();
  std::map<std::string, std::pair<std::size_t, std::string>> held;  // key -> (first held index, why)
  for (const auto& r : batch.rejected) {
    if (r.key)
      held.emplace(*r.key, std::make_pair(r.position, "held behind poison event \"" + r.row.id + "\""));
  }
  std::vector<bool> settled(n, false);
  for (;;) {
    std::vector<OutboxMessage> wave;
    std::vector<std::size_t> index;
    std::set<std::string> keys;
    for (std::size_t i = 0; i < n; ++i) {
      if (settled[i]) continue;
      const auto& m = batch.messages[i];
      if (m.key) {
        auto h = held.find(*m.key);
        if (h != held.end() && i >= h->second.first) {
          f.deliveries[i] = {DeliveryStatus::kDeferred, h->second.second, -1, -1};
          settled[i] = true;
          continue;
        }
        if (!keys.insert(*m.key).second) continue;  // this key already has an event in the wave
      }
      wave.push_back(m);
      index.push_back(i);
    }
    if (wave.empty()) return;
    std::vector<Delivery> out(wave.size());
    publisher_.send(wave, out);
    wait_for(out);
    for (std::size_t j = 0; j < index.size(); ++j) {
      const auto i = index[j];
      f.deliveries[i] = out[j];
      settled[i] = true;
      const auto& m = batch.messages[i];
      if (m.key && out[j].status != DeliveryStatus::kAcked) {
        held.emplace(*m.key, std::make_pair(i + 1, "held behind event \"" + m.id + "\": " + out[j].error));
      }
    }
    if (stop_.load()) {  // draining: what was not sent yet stays unsent
      for (std::size_t i = 0; i < n; ++i) {
        if (!settled[i]) f.deliveries[i] = {DeliveryStatus::kDeferred, "not sent: stopping", -1, -1};
      }
      return;
    }
  }
}

// Waits until every delivery in `out` is final; past the drain deadline (after a stop request) or the
// delivery timeout it gives up on everything in flight, which then stays unsent.
void Dispatcher::wait_for(std::span<const Delivery> out) {
  if (out.empty()) return;
  const auto started = waiter_.now();
  std::optional<Clock::time_point> drain_deadline;
  while (!publisher_.await(out, Millis(100))) {
    source_.service();
    const auto now = waiter_.now();
    if (stop_.load() && !drain_deadline) {
      drain_deadline = now + config_.drain_timeout;
      spdlog::info("draining in-flight events (up to {} ms)", config_.drain_timeout.count());
    }
    if ((drain_deadline && now >= *drain_deadline) || now - started >= config_.delivery_timeout) {
      spdlog::warn("giving up on in-flight events after {} ms; they stay unsent and will be published again",
                   std::chrono::duration_cast<Millis>(now - started).count());
      abort_transactions();
      return;
    }
  }
}

// Sends every poison message (and every row that could not be mapped) to the dead-letter topic, with
// the reason and origin in headers. One that the DLQ does not acknowledge is neither parked nor marked
// done (kUnparked) before it is somewhere durable; the rest of the batch settles as usual.
void Dispatcher::dead_letter(InFlight& f) {
  const auto& batch = f.batch;
  auto& deliveries = f.deliveries;
  std::vector<OutboxMessage> dlq;
  std::vector<Delivery*> origin;  // the delivery (or malformed row's) that each copy decides
  f.dead_letters.assign(batch.rejected.size(), Delivery{});
  auto add = [&](OutboxMessage m, const std::string& error, Delivery* original) {
    m.headers.emplace_back("dlq.error", error);
    m.headers.emplace_back("dlq.original.topic", m.topic);
    m.topic = config_.dlq_topic;
    dlq.push_back(std::move(m));
    origin.push_back(original);
  };
  for (std::size_t i = 0; i < batch.messages.size(); ++i) {
    if (deliveries[i].status != DeliveryStatus::kPoison) continue;
    add(batch.messages[i], deliveries[i].error, &deliveries[i]);
  }
  for (std::size_t i = 0; i < batch.rejected.size(); ++i) {
    const auto& r = batch.rejected[i];
    f.dead_letters[i] = {DeliveryStatus::kPoison, r.error, -1, -1};
    OutboxMessage m;
    m.id = r.row.id;
    m.headers.emplace_back("id", r.row.id);
    for (const auto& c : r.row.columns) {
      if (c.value) m.headers.emplace_back("dlq.column." + c.name, *c.value);
    }
    add(std::move(m), r.error, &f.dead_letters[i]);
  }
  if (dlq.empty()) return;
  std::vector<Delivery> dlq_deliveries(dlq.size());
  publisher_.send(dlq, dlq_deliveries);
  wait_for(dlq_deliveries);
  for (std::size_t j = 0; j < dlq.size(); ++j) {
    const auto& d = dlq_deliveries[j];
    if (d.status == DeliveryStatus::kAcked) metrics_.dead_lettered.fetch_add(1);
    *origin[j] = after_dead_letter(*origin[j], d, config_.dlq_topic);
  }
}

namespace {

// A poison reason without its quoted parts (ids, topic names, values), to tell whether many events
// failed for one reason.
std::string reason_shape(const std::string& reason) {
  std::string out;
  bool quoted = false;
  for (const char c : reason) {
    if (c == '"') {
      quoted = !quoted;
      out += c;
    } else if (!quoted) {
      out += c;
    }
  }
  return out;
}

}  // namespace

// When the first events a relay sees all fail for one reason, the fault is the configuration (a topic
// template naming a column that is always NULL, a topic the cluster does not have), not the rows:
// parking the whole outbox would only hide it. Stops with that reason instead; nothing is parked or
// marked, so the events are published once the configuration is fixed.
void Dispatcher::refuse_misconfiguration(const InFlight& f) const {
  const auto& s = f.settlement;
  if (published_any_ || !s.done.empty() || !s.retry.empty() || s.park.size() < kMisconfigurationEvents)
    return;
  const auto shape = reason_shape(s.park.front().reason);
  for (const auto& p : s.park) {
    if (reason_shape(p.reason) != shape) return;
  }
  throw FatalError("the first " + std::to_string(s.park.size()) +
                   " events all fail for the same reason, which points at the configuration rather than "
                   "the rows (none was parked): " +
                   s.park.front().reason);
}

// Counts what the settlement made durable: published events (and their latency) and parked ones.
void Dispatcher::record(const InFlight& f) {
  const auto& batch = f.batch;
  std::map<std::string, uint64_t> by_topic;
  const auto now_ms = unix_ms_now();
  published_any_ = published_any_ || !f.settlement.done.empty();
  for (const auto i : f.settlement.done) {
    const auto& m = batch.messages[i];
    ++by_topic[m.topic];
    if (m.timestamp_ms > 0) {
      metrics_.latency_seconds.observe(static_cast<double>(now_ms - m.timestamp_ms) / 1000.0);
    }
  }
  for (const auto& p : f.settlement.park) {
    if (p.rejected) {
      spdlog::warn("parked malformed event \"{}\": {}", batch.rejected[p.index].row.id, p.reason);
    } else {
      spdlog::warn("parked event \"{}\" for topic \"{}\": {}", batch.messages[p.index].id,
                   batch.messages[p.index].topic, p.reason);
    }
  }
  if (!f.settlement.park.empty()) {
    metrics_.parked.fetch_add(f.settlement.park.size());
    metrics_.add_failure("poison", f.settlement.park.size());
  }
  metrics_.add_published(by_topic);
  metrics_.batches.fetch_add(1);
  metrics_.batch_size.observe(static_cast<double>(batch.size()));
}

void Dispatcher::begin_transaction() {
  publisher_.begin();
  if (publisher_.transactional()) ++open_transactions_;
}

// Aborts whatever the publisher has in flight; every transaction begun and not committed is counted
// aborted (abort() aborts them all; one whose commit failed ends here too).
void Dispatcher::abort_transactions() noexcept {
  publisher_.abort();
  if (open_transactions_ > 0) metrics_.transactions_aborted.fetch_add(open_transactions_);
  open_transactions_ = 0;
}

void Dispatcher::on_transient(const std::string& what) {
  metrics_.retries.fetch_add(1);
  metrics_.add_failure("transient");
  if (healthy_) {
    spdlog::warn("{}; retrying with backoff", what);
    healthy_ = false;
  } else {
    spdlog::debug("still failing: {}", what);
  }
  const auto delay = backoff_.next(waiter_.random());
  waiter_.sleep_for(delay);
}

void Dispatcher::on_success() {
  if (!healthy_) {
    spdlog::info("recovered after {} retries", backoff_.failures());
    metrics_.reconnects.fetch_add(1);
    healthy_ = true;
  }
  backoff_.reset();
}

}  // namespace outbox_relay::core
