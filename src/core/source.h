#pragma once
// Where events come from: the poll source (claims rows) or the WAL source (logical replication).

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "core/batch.h"
#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/message.h"
#include "core/settlement.h"

namespace outbox_relay::core {

class OutboxSource {
 public:
  virtual ~OutboxSource() = default;

  // Connects (or reconnects) and validates the table layout. Throws ConfigError for a setup the
  // operator must fix, FatalError for a layout mismatch, TransientError when the server is away.
  virtual void open() = 0;

  // Returns up to `max` events, waiting at most `wait` for the first one; empty on timeout. Called by
  // the dispatcher thread only. Throws TransientError when the connection is lost. With
  // pipeline_depth() == 2 it may be called while one earlier batch is not committed yet (never more):
  // the new batch holds the events after that one's, and `wait` is then 0.
  virtual Batch fetch(std::size_t max, std::chrono::milliseconds wait) = 0;

  // How this source's positions relate (core/settlement.h): the dispatcher settles every batch with it.
  [[nodiscard]] virtual Ordering ordering() const = 0;

  // Applies a batch's settlement (batches are committed in the order they were fetched): settlement.done
  // is marked sent (poll) or confirmed (WAL), settlement.park is parked with its reason, and
  // settlement.retry is left to be fetched again. Never decides finality itself. Throws TransientError
  // when the connection is lost.
  virtual void commit(const Batch& batch, const Settlement& settlement) = 0;

  // What an exactly-once publisher writes beside the batch in its Kafka transaction, so that a restart
  // can tell which events Kafka holds already; called only with a transactional publisher, before
  // commit(). The default names nothing (sources without exactly-once support).
  [[nodiscard]] virtual Checkpoint checkpoint(const Batch& batch, const Settlement& settlement) const {
    (void)batch;
    (void)settlement;
    return {};
  }

  // Exactly-once: checkpoint(batch, settlement) for the settlement in which this batch and every batch
  // fetched before it and not committed yet are acknowledged in full, known before they are sent
  // (Publisher::expect()); nullopt when the source cannot tell in advance.
  [[nodiscard]] virtual std::optional<Checkpoint> expected_checkpoint(const Batch& batch) const {
    (void)batch;
    return std::nullopt;
  }

  // Exactly-once: applies the last checkpoint committed in Kafka, before the first fetch after open()
  // returned while leading: its events are in Kafka, so they are made durable here without being sent
  // again (poll mode: the rows it names are marked; WAL mode: transactions ending at or before its
  // position are skipped and the slot confirmed there). The default refuses a non-empty checkpoint:
  // a source without exactly-once support must never be run with a transactional publisher.
  virtual void recover(const Checkpoint& checkpoint) {
    if (!checkpoint.empty()) throw ConfigError(describe() + " does not support exactly-once delivery");
  }

  // Forgets the batch without marking anything: its events will be fetched again. Abandoning the older
  // of two outstanding batches abandons the newer one too (the dispatcher abandons both).
  virtual void abandon(const Batch& batch) noexcept = 0;

  // True once every event committed before the relay started has been published and committed
  // (--exit-when-idle). Only meaningful right after a fetch returned an empty batch.
  [[nodiscard]] virtual bool caught_up() const = 0;

  // True when the last fetch() left events that were ready to be taken at once (a backlog), although
  // it came back with fewer than `max` (a WAL source returns whole transactions only).
  [[nodiscard]] virtual bool more_ready() const { return false; }

  // Drops the connection (the dispatcher calls open() again after a backoff).
  virtual void close() noexcept = 0;

  // Cuts short a wait inside fetch() (stop requested). Called from another thread; must not block.
  virtual void wake() noexcept {}

  // Keeps the connection alive while the dispatcher waits for Kafka between fetch() and commit()
  // (WAL mode: keepalive replies and standby status updates). Dispatcher thread; returns promptly.
  virtual void service() {}

  // False while this relay is a standby (another one holds the lead); fetch() then returns empty
  // batches until the lead is taken over.
  [[nodiscard]] virtual bool leader() const { return true; }

  // How many fetched batches may be outstanding (fetched, not yet committed or abandoned) at once.
  [[nodiscard]] virtual int pipeline_depth() const { return 1; }

  // For logs and /readyz.
  [[nodiscard]] virtual std::string describe() const = 0;
};

}  // namespace outbox_relay::core
