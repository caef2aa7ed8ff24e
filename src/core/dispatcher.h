#pragma once
// The relay loop: fetch a batch from the source, publish it, wait for every delivery report, then
// commit the outcome to the source. Pipelined (when the source allows it): the next batch is fetched
// and sent while the previous one waits for its acknowledgements, and batches are committed in fetch
// order. The one invariant: a durable position never moves past a message the broker has not
// acknowledged (or that was parked as poison): core::settle() decides it, the source applies it.

#include <atomic>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/backoff.h"
#include "core/batch.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/publisher.h"
#include "core/settlement.h"
#include "core/source.h"

namespace outbox_relay::core {

enum class PoisonPolicy {
  kPark,   // mark the row failed with the error; the rest flows
  kDlq,    // publish it to the dead-letter topic with the error in headers, then park it as sent there
  kBlock,  // park it and hold back that key's later events (the source skips keys with a parked
           // event) until an operator resolves it; other keys flow
};

struct DispatcherConfig {
  std::size_t batch_size = 2000;
  // Also bounds a batch by its records' memory (core::memory_bytes; 0: no bound): the next fetch asks
  // for about this many bytes' worth of events, from the sizes seen so far (memory stays flat for
  // large payloads while small ones still come in big batches).
  std::size_t batch_bytes = 2u << 20;
  // Most bytes of records one claim may take however far it grows (transaction_batches): its share of
  // the memory budget (0: no bound beyond batch_bytes times transaction_batches).
  std::size_t claim_bytes = 0;
  Millis poll_interval{1000};      // longest wait in fetch when nothing arrives
  Millis drain_timeout{10000};     // after a stop request, how long in-flight deliveries may take
  Millis delivery_timeout{60000};  // await bound for one batch before its stragglers count as retriable
  bool exit_when_idle = false;
  PoisonPolicy on_poison = PoisonPolicy::kPark;
  std::string dlq_topic;
  Millis backoff_initial{200};
  Millis backoff_max{10000};
  // Called at each step of a batch's life, with its name: "sent" (every record handed to the
  // publisher), "delivered" (every delivery report in, the Kafka transaction still open), "published" (every
  // delivery final and the Kafka transaction committed, nothing durable in the source yet), "committed" (the
  // source made it durable). Tests kill the process there (OUTBOX_RELAY_TEST_KILL_AT); empty in production.
  std::function<void(const char* point)> on_point;
  // A transactional publisher pays a fixed cost per Kafka transaction (the commit, the coordinator's
  // markers): under a backlog (the last claim came back full) the claim limit doubles, up to this many
  // times batch_size and batch_bytes; it is one batch again as soon as a claim comes back short, so
  // latency at moderate rates is that of one batch.
  std::size_t transaction_batches = 1;
  // Fetch and send the next batch while the previous one is in flight (if the source allows it; never
  // with kBlock, whose waves need the batch's outcome before the next one is claimed).
  bool pipeline = true;
};

enum class StepResult {
  kPublished,  // a batch went out and was committed (maybe partly: poison parked)
  kIdle,       // nothing to do within the poll interval
  kRetrying,   // a transient failure: backed off, will try again
};

enum class Outcome {
  kStopped,  // stop requested, in-flight work drained and committed
  kIdle,     // --exit-when-idle and the source is caught up
};

class Dispatcher {
 public:
  // A first batch of at least this many events, every one poison for the same reason, stops the
  // relay (a misconfiguration) instead of being parked.
  static constexpr std::size_t kMisconfigurationEvents = 20;
  // Exactly-once: how long nothing must arrive before the checkpoint is brought up to date on its own.
  static constexpr Millis kIdleCheckpointAfter{500};

  Dispatcher(OutboxSource& source, Publisher& publisher, Waiter& waiter, Metrics& metrics,
             DispatcherConfig config, const std::atomic<bool>& stop);

  // Runs until stopped or (with exit_when_idle) caught up. Throws FatalError on an unrecoverable error
  // and ConfigError on a setup the operator must fix. Thread: the dispatcher thread.
  Outcome run();

  // One iteration: commits one batch (fetching it first unless it is already in flight from the step
  // before); unit tests drive this directly. Transient errors are handled inside (backoff).
  StepResult step();

  [[nodiscard]] bool healthy() const { return healthy_; }

 private:
  // A batch that has been sent and not yet committed. `deliveries` is parallel to batch.messages and
  // receives the delivery reports, so its buffer must not move while the publisher may write to it
  // (moving the vector keeps the buffer).
  struct InFlight {
    Batch batch;
    std::vector<Delivery> deliveries;
    std::vector<Delivery> dead_letters;  // dlq policy: parallel to batch.rejected, their copies' fate
    Clock::time_point started, fetched, sent;
    Settlement settlement;  // decided by finish() once every delivery is final
    bool sending = false;   // start() was called (a transactional publisher sends it later)
  };

  [[nodiscard]] bool pipelined() const;
  [[nodiscard]] std::size_t fetch_limit() const;
  Batch fetch(Millis wait);
  void learn_sizes(const Batch& batch);
  void start(InFlight& f);
  void finish(InFlight& f, InFlight* behind = nullptr);
  void publish_in_waves(InFlight& f);
  void wait_for(std::span<const Delivery> out);
  void dead_letter(InFlight& f);
  void record(const InFlight& f);
  void refuse_misconfiguration(const InFlight& f) const;
  void recover();
  void commit_transaction(const Checkpoint& checkpoint, Clock::time_point opened);
  void refresh_idle_checkpoint();
  void begin_transaction();
  void abort_transactions() noexcept;
  void on_transient(const std::string& what);
  void on_success();

  OutboxSource& source_;
  Publisher& publisher_;
  Waiter& waiter_;
  Metrics& metrics_;
  DispatcherConfig config_;
  const std::atomic<bool>& stop_;
  Backoff backoff_;
  bool open_ = false;
  bool healthy_ = true;
  bool last_fetch_empty_ = false;
  std::optional<InFlight> ahead_;                // sent by the step before, committed by the next step
  double bytes_per_event_ = 0;                   // running average of the records fetched (0: none seen yet)
  std::optional<Clock::time_point> idle_since_;  // start of the run of empty claims, if in one
  std::size_t scale_ = 1;              // exactly-once: batches' worth the next claim may hold (see config)
  bool batch_failed_ = false;          // the last batch failed; only a committed one resets the backoff
  bool recovered_ = false;             // Publisher::recover() applied since the source was opened
  Checkpoint last_checkpoint_;         // the last one committed in Kafka (exactly-once)
  bool published_any_ = false;         // some event reached Kafka since start (see refuse_misconfiguration)
  std::size_t open_transactions_ = 0;  // begun through begin_transaction(), not committed or aborted
};

}  // namespace outbox_relay::core
