#include "kafka/producer.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/errors.h"
#include "kafka/checkpoint_topic.h"
#include "kafka/topic_probe.h"

namespace outbox_relay::kafka {

namespace {

// What send() hands librdkafka as the per-message opaque; freed by the delivery callback.
struct Pending {
  core::Delivery* delivery;
  uint64_t generation;  // the send() it belongs to; a report for an abandoned send is dropped
};

// The producer's transactional id was taken over (by a newer producer of the same id).
bool is_fencing(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

}  // namespace

bool is_poison_error(int code) {
  switch (static_cast<rd_kafka_resp_err_t>(code)) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

void Producer::RdKafkaDeleter::operator()(rd_kafka_s* rk) const { rd_kafka_destroy(rk); }
void Producer::TopicDeleter::operator()(rd_kafka_topic_s* t) const { rd_kafka_topic_destroy(t); }

Producer::Producer(const std::vector<Property>& properties, std::optional<TransactionConfig> transactions)
    : properties_(properties), transactions_(std::move(transactions)) {
  char err[512];
  auto all = properties;
  if (transactions_) {
    all.emplace_back("transactional.id", transactions_->transactional_id());
    all.emplace_back("transaction.timeout.ms", std::to_string(transactions_->timeout.count()));
  }
  rd_kafka_conf_t* conf = new_conf(all);
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_dr_msg_cb(
      conf, [](rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) { on_delivery(rk, m, opaque); });
  rd_kafka_conf_set_error_cb(
      conf, [](rd_kafka_t* rk, int e, const char* reason, void* opaque) { on_error(rk, e, reason, opaque); });
  rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    on_log(rk, level, fac, buf);
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw core::ConfigError(std::string("kafka producer: ") + err);
  }
  rk_.reset(rk);
}

Producer::~Producer() {
  if (!rk_) return;
  // Whatever is still queued was never acknowledged, so its rows are not marked: drop it. The caller's
  // Delivery array may already be gone, so reports from here on are dropped, not written.
  ++generation_;
  outstanding_ = 0;
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_.get(), 0);
  topics_.clear();
  rk_.reset();
}

void Producer::on_delivery(rd_kafka_s* /*rk*/, const rd_kafka_message_s* m, void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  std::unique_ptr<Pending> p(static_cast<Pending*>(m->_private));
  if (!p || p->generation != self->generation_) return;
  core::Delivery& d = *p->delivery;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (self->unknown_topics_.tracked() > 0) self->unknown_topics_.delivered(rd_kafka_topic_name(m->rkt));
    d.status = core::DeliveryStatus::kAcked;
    d.partition = m->partition;
    d.offset = m->offset;
    if (!self->brokers_up_.exchange(true) && self->was_down_.exchange(false))
      spdlog::info("kafka is reachable again");
  } else {
    self->failed(d, m->err, rd_kafka_topic_name(m->rkt));
  }
  --self->outstanding_;
}

// A record to `topic` failed with `err`, in its delivery report or already when it was produced
// (librdkafka refuses a topic its metadata cache holds as absent, e.g. just after a deletion).
void Producer::failed(core::Delivery& d, int err, const std::string& topic) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  const bool unknown_topic =
      code == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || code == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
  if (unknown_topic && !unknown_topics_.poison(topic, std::chrono::steady_clock::now())) {
    d.status = core::DeliveryStatus::kRetriable;
    d.error = std::string(rd_kafka_err2str(code)) + " (retried for up to " +
              std::to_string(unknown_topics_.grace().count() / 1000) +
              " s in case the topic is being created)";
    return;
  }
  d.status = is_poison_error(err) ? core::DeliveryStatus::kPoison : core::DeliveryStatus::kRetriable;
  d.error = rd_kafka_err2str(code);
}

void Producer::on_error(rd_kafka_s* rk, int e, const char* reason, void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  const auto err = static_cast<rd_kafka_resp_err_t>(e);
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    rd_kafka_fatal_error(rk, buf, sizeof buf);
    spdlog::error("kafka producer fatal error: {}", buf);
    self->fatal_.store(true);
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    if (self->brokers_up_.exchange(false)) {
      spdlog::warn("all kafka brokers are down: {}", reason);
      self->was_down_.store(true);
    }
    return;
  }
  spdlog::debug("kafka: {}", reason);
}

void Producer::on_log(const rd_kafka_s* /*rk*/, int level, const char* fac, const char* buf) {
  // Connection failures come at level 3 on every retry; the state change is logged once by on_error
  // (all brokers down / recovered), so they stay at debug here.
  if (level <= 2) {
    spdlog::error("kafka {}: {}", fac, buf);
  } else if (level <= 5) {
    spdlog::debug("kafka {}: {}", fac, buf);
  } else {
    spdlog::trace("kafka {}: {}", fac, buf);
  }
}

// Topic handles are cached (a lookup per record is measurable at 100k records/s), but only so many:
// topic names come from outbox rows, and a table routing to ever new topics must not grow memory
// without bound. Dropping our handles is safe while their records are in flight: librdkafka holds
// its own reference per queued record (producev with a topic name does just that).
// A topic the broker auto-creates on the first request: librdkafka asks again only at its once-a-second
// topic scan, so its first batch waits that second. Not shortened on purpose: sending as soon as the
// metadata names the partitions' leaders lost records (the leader had not taken the partition yet, a
// produce request failed and the next one, a moment later, succeeded: the idempotent producer's first
// sequence numbers were then skipped by the broker and the retried records reported delivered as
// duplicates). Topics created ahead of time do not wait.
rd_kafka_topic_s* Producer::topic(const std::string& name) {
  auto it = topics_.find(name);
  if (it != topics_.end()) return it->second.get();
  if (topics_.size() >= kMaxCachedTopics) topics_.clear();
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr);
  if (t == nullptr) return nullptr;
  return topics_.emplace(name, t).first->second.get();
}

bool Producer::prepare_topic(const std::string& name, std::chrono::milliseconds timeout) {
  if (wait_for_leaders(rk_.get(), name, timeout) != TopicReadiness::kReady) return false;
  topic(name);
  return true;
}

void Producer::throw_if_fatal() {
  if (!fatal_.load()) return;
  char buf[512];
  const auto err = rd_kafka_fatal_error(rk_.get(), buf, sizeof buf);
  std::string what = std::string("kafka producer fatal error (") + rd_kafka_err2name(err) + "): " + buf;
  // Exactly-once and not fenced (e.g. librdkafka 2.0 failing the abort of a transaction whose partitions
  // were being added when the cluster went away): this producer is done, nothing it sent is visible.
  if (transactions_ && !is_fencing(err))
    what +=
        "; a restart fences the transactional id, which aborts what it left open, and resumes from the "
        "checkpoint";
  throw core::FatalError(what);
}

void Producer::send(std::span<const core::OutboxMessage> messages, std::span<core::Delivery> out) {
  throw_if_fatal();
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    rd_kafka_topic_t* rkt = topic(m.topic);
    if (rkt == nullptr) {
      out[i].status = core::DeliveryStatus::kPoison;
      out[i].error = std::string("invalid topic: ") + rd_kafka_err2str(rd_kafka_last_error());
      continue;
    }
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(m.headers.size());
    for (const auto& [k, v] : m.headers) {
      rd_kafka_header_add(hdrs, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                          static_cast<ssize_t>(v.size()));
    }
    auto* p = new Pending{&out[i], generation_};
    void* value = m.value ? const_cast<char*>(m.value->data()) : nullptr;
    const std::size_t value_len = m.value ? m.value->size() : 0;
    const void* key = m.key ? m.key->data() : nullptr;
    const std::size_t key_len = m.key ? m.key->size() : 0;
    for (;;) {
      const auto err =
          rd_kafka_producev(rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(value, value_len),
                            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_HEADERS(hdrs),
                            RD_KAFKA_V_TIMESTAMP(m.timestamp_ms), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++outstanding_;
        break;
      }
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        // Backpressure: serve delivery reports to make room, never drop.
        rd_kafka_poll(rk_.get(), 50);
        throw_if_fatal();
        continue;
      }
      rd_kafka_headers_destroy(hdrs);
      delete p;
      failed(out[i], err, m.topic);
      break;
    }
  }
  rd_kafka_poll(rk_.get(), 0);
}

// Serves delivery reports until `done` or `timeout`; throws on a fatal producer error.
// By flushing, not just polling: one thread produces and then waits, so while it waits nothing more is
// produced, and linger.ms (which lets a batch being produced fill the producer's requests) would only
// hold back the batch's last records; rd_kafka_flush() sends at once for as long as it runs. It returns
// when nothing at all is in flight, so while records of another batch are (pipelining), it is called
// for a millisecond at a time, and `done` checked in between; after a while, in longer slices.
bool Producer::serve_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  for (;;) {
    throw_if_fatal();
    if (done()) return true;
    const auto now = std::chrono::steady_clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left.count() <= 0) return false;
    const int64_t slice = now - start < std::chrono::milliseconds(50) ? 1 : 20;
    rd_kafka_flush(rk_.get(), static_cast<int>(std::min<int64_t>(left.count(), slice)));
  }
}

bool Producer::await(std::chrono::milliseconds timeout) {
  return serve_until([this] { return outstanding_ == 0; }, timeout);
}

bool Producer::await(std::span<const core::Delivery> out, std::chrono::milliseconds timeout) {
  std::size_t i = 0;  // out[..i) is final; reports arrive roughly in order, so this is linear overall
  return serve_until(
      [&] {
        while (i < out.size() && out[i].status != core::DeliveryStatus::kPending) ++i;
        // outstanding_ == 0 with some still pending: given up on by abort(), no report will come for them
        return i == out.size() || outstanding_ == 0;
      },
      timeout);
}

// Reports that did not come by now must not write into the caller's array any more.
void Producer::forget_in_flight() noexcept {
  ++generation_;
  outstanding_ = 0;
}

void Producer::abort() noexcept {
  if (!rk_) return;
  if (in_transaction_) {
    // What is in flight is let finish first (bounded): librdkafka 2.0 can fail an abort that comes
    // right after a transaction's first records, while their partitions are being added to it, with
    // INVALID_TXN_STATE, which is fatal for the producer (librdkafka issue 4849). Acknowledged records
    // of an aborted transaction are never visible to read_committed consumers.
    if (outstanding_ > 0) {
      try {
        serve_until([this] { return outstanding_ == 0; }, kAbortSettle);
      } catch (...) {  // fatal already: the abort below fails the same way
      }
    }
    // Purges what is queued, waits for what is in flight, and writes the abort markers: nothing of the
    // batch becomes visible to read_committed consumers.
    in_transaction_ = false;
    checkpoint_written_.reset();
    for (int attempt = 0; attempt < 3; ++attempt) {
      rd_kafka_error_t* e =
          rd_kafka_abort_transaction(rk_.get(), static_cast<int>(transactions_->timeout.count()));
      if (e == nullptr) break;
      const bool retry = rd_kafka_error_is_retriable(e) != 0;
      spdlog::warn("could not abort the kafka transaction: {}", rd_kafka_error_string(e));
      if (rd_kafka_error_is_fatal(e) != 0) fatal_.store(true);
      rd_kafka_error_destroy(e);
      if (!retry) break;
    }
    rd_kafka_poll(rk_.get(), 0);
    forget_in_flight();
    checkpoint_deliveries_.clear();
    return;
  }
  if (outstanding_ == 0) return;
  // Purged messages get a delivery report with _PURGE_QUEUE / _PURGE_INFLIGHT: retriable.
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (outstanding_ > 0 && std::chrono::steady_clock::now() < deadline) rd_kafka_poll(rk_.get(), 50);
  forget_in_flight();
}

namespace {

// A transactional API error as the relay's error kinds: fatal (fenced by a newer producer of the same
// identity, or a broken producer) ends the process; anything else is retried after a backoff.
[[noreturn]] void throw_transaction_error(rd_kafka_error_t* e, const std::string& what) {
  const std::string msg = what + ": " + rd_kafka_error_string(e);
  const bool fatal = rd_kafka_error_is_fatal(e) != 0;
  const bool fenced = is_fencing(rd_kafka_error_code(e));
  rd_kafka_error_destroy(e);
  if (fatal || fenced) {
    throw core::FatalError(msg + (fenced ? " (another relay with the same transactional id took over)" : ""));
  }
  throw core::TransientError(msg);
}

}  // namespace

void Producer::fence() {
  if (!transactions_) return;
  throw_if_fatal();
  if (initialized_) return;
  const auto timeout = static_cast<int>(transactions_->timeout.count());
  if (rd_kafka_error_t* e = rd_kafka_init_transactions(rk_.get(), timeout)) {
    throw_transaction_error(
        e, "could not initialize kafka transactions for \"" + transactions_->transactional_id() + "\"");
  }
  initialized_ = true;
  spdlog::info("kafka transactions initialized as \"{}\" (earlier producers of that id are fenced)",
               transactions_->transactional_id());
}

std::optional<core::Checkpoint> Producer::recover() {
  if (!transactions_) return std::nullopt;
  fence();
  // Created (compacted) before any handle of ours asks for it: a producer's metadata request would
  // have a broker that auto-creates topics create it with its defaults. A topic handle, made after,
  // asks for its metadata at once: a record produced by topic name alone waits for the next periodic
  // refresh (a second) before the first commit can flush it.
  const auto& name = transactions_->checkpoint_topic;
  ensure_checkpoint_topic(rk_.get(), name, transactions_->timeout);
  if (!prepare_topic(name, transactions_->timeout))
    throw core::TransientError("checkpoint topic \"" + name + "\" has no leader for each partition yet");
  auto cp = read_checkpoint(properties_, transactions_->checkpoint_topic, transactions_->identity,
                            transactions_->timeout);
  if (cp) {
    spdlog::info("checkpoint of \"{}\": position {}, {} ids published and maybe not marked",
                 transactions_->identity, cp->position, cp->ids.size());
  }
  return cp;
}

void Producer::begin() {
  if (!transactions_) return;
  throw_if_fatal();
  if (!initialized_) throw core::TransientError("kafka transactions are not initialized yet");
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(rk_.get())) {
    throw_transaction_error(e, "could not begin a kafka transaction");
  }
  in_transaction_ = true;
  checkpoint_written_.reset();
}

// The checkpoint record goes out with the batch's records: its partition joins the transaction in the
// same AddPartitionsToTxn round trip as theirs, and the commit does not wait for another round trip
// to add it and another to write it. Written again (the settled checkpoint, handed to expect() or
// commit()) only if the batch settled otherwise.
void Producer::expect(const core::Checkpoint& checkpoint) {
  if (!transactions_) return;
  write_checkpoint(checkpoint, "write a checkpoint in");
}

// `checkpoint` as the open transaction's last checkpoint record: written unless it is that already.
void Producer::write_checkpoint(const core::Checkpoint& checkpoint, const char* purpose) {
  throw_if_fatal();
  if (!in_transaction_) throw core::TransientError(std::string("no kafka transaction to ") + purpose);
  auto value = core::encode_checkpoint(checkpoint, transactions_->identity);
  if (checkpoint_written_ != value) write_checkpoint(value);
}

bool Producer::await_checkpoint(std::chrono::milliseconds timeout) {
  return serve_until(
      [this] {
        return std::none_of(
            checkpoint_deliveries_.begin(), checkpoint_deliveries_.end(),
            [](const core::Delivery& d) { return d.status == core::DeliveryStatus::kPending; });
      },
      timeout);
}

void Producer::write_checkpoint(const std::string& value) {
  const auto& key = transactions_->identity;
  auto* p = new Pending{&checkpoint_deliveries_.emplace_back(), generation_};
  rd_kafka_topic_t* rkt = topic(transactions_->checkpoint_topic);
  if (rkt == nullptr) {
    delete p;
    checkpoint_deliveries_.pop_back();
    throw core::TransientError("could not write the checkpoint: " +
                               std::string(rd_kafka_err2str(rd_kafka_last_error())));
  }
  const auto err =
      rd_kafka_producev(rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    delete p;
    checkpoint_deliveries_.pop_back();
    throw core::TransientError(std::string("could not write the checkpoint: ") + rd_kafka_err2str(err));
  }
  ++outstanding_;
  ++checkpoint_records_;
  checkpoint_written_ = value;
}

void Producer::commit(const core::Checkpoint& checkpoint) {
  if (!transactions_) return;
  // The last checkpoint record of a transaction is the one a restart reads.
  write_checkpoint(checkpoint, "commit");
  // Commit flushes the checkpoint record first. A retriable failure leaves the outcome open: commit
  // again until it is known (the records must not be sent again if it went through). Past the
  // transaction timeout the process ends, and the next start learns the outcome from the checkpoint.
  const auto deadline = std::chrono::steady_clock::now() + transactions_->timeout;
  for (;;) {
    rd_kafka_error_t* e =
        rd_kafka_commit_transaction(rk_.get(), static_cast<int>(transactions_->timeout.count()));
    if (e == nullptr) break;
    if (rd_kafka_error_txn_requires_abort(e) != 0) {
      const std::string why = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
      abort();
      throw core::TransientError("kafka transaction aborted: " + why);
    }
    if (rd_kafka_error_is_retriable(e) == 0 || std::chrono::steady_clock::now() >= deadline) {
      if (rd_kafka_error_is_retriable(e) != 0) {
        const std::string why = rd_kafka_error_string(e);
        rd_kafka_error_destroy(e);
        throw core::FatalError("the outcome of a kafka transaction stayed unknown (" + why +
                               "); restarting learns it from the checkpoint");
      }
      throw_transaction_error(e, "could not commit a kafka transaction");
    }
    spdlog::debug("committing the kafka transaction again: {}", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
  }
  in_transaction_ = false;
  checkpoint_written_.reset();
  rd_kafka_poll(rk_.get(), 0);
  forget_in_flight();  // every report was served by the commit's flush
  checkpoint_deliveries_.clear();
}

int Producer::queue_depth() const { return rd_kafka_outq_len(rk_.get()); }

void Producer::check_connection(std::chrono::milliseconds timeout) {
  const struct rd_kafka_metadata* md = nullptr;
  const auto err = rd_kafka_metadata(rk_.get(), 0, nullptr, &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    brokers_up_.store(false);
    throw core::TransientError(std::string("could not reach kafka: ") + rd_kafka_err2str(err));
  }
  rd_kafka_metadata_destroy(md);
  brokers_up_.store(true);
}

}  // namespace outbox_relay::kafka
