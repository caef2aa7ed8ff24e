#pragma once
// WAL mode: reads the outbox table's INSERTs from a logical replication slot (raw libpq,
// `replication=database`, the built-in `pgoutput` plugin, protocol version 1) and confirms the slot
// position only past transactions whose every record Kafka acknowledged (or that were parked).
//
// Batches and positions
//   A batch is made of whole transactions (Begin..Commit): a transaction larger than the batch size is
//   returned whole, alone, unless its records take more memory than chunk_bytes: then it is handed out
//   in chunks of about that size as it streams in (pgoutput sends a transaction only once committed, so
//   every chunk is committed data), and memory stays bounded whatever the transaction's size. Every
//   record's position, and batch.end_position, is the end LSN of its transaction's commit record (a
//   chunk's: the commit record's start + 1, which is never confirmed); the flush LSN sent to the server
//   (the slot's confirmed_flush_lsn) is the end of the last transaction whose every record is final, so
//   a crash inside a chunked transaction sends it again from its start (exactly-once: its checkpoint
//   counts the records sent, and those are skipped).
//   Memory: complete transactions and chunks not yet fetched stay within max_buffered_bytes (the
//   read-ahead; reading the stream pauses there), a batch within max_batch_bytes, and a batch's records
//   are moved to it, not copied (TxnQueue).
//   commit() with a retriable (or pending) delivery confirms only the transactions before the first
//   one holding it; that transaction and everything after it go back, in order, to the front of the
//   read-ahead queue and are fetched again (kept in memory: the stream is not restarted; after a
//   reconnect the server re-sends them from the slot position instead). abandon() does the same for
//   the whole batch. Records after the failing one may therefore be published twice: at-least-once.
//   Poison records and rejected rows are written to `outbox_relay_parked` (pg/common/parking.h, over a
//   normal connection; the table is created from migration 003 if missing) in the same commit() that
//   confirms their transaction, before it.
//
// What becomes a record
//   - INSERTs into the outbox table: every column by name -> core::Router. The layout's timestamp
//     column (timestamptz/timestamp, ISO text) is turned into ms since the epoch first; a bytea value
//     column into its raw bytes. A row the Router cannot map goes to batch.rejected.
//   - Transactional logical decoding messages, pg_logical_emit_message(true, prefix, content), whose
//     prefix is `<message_prefix>:<topic>[:<key>]` (message_prefix "outbox"):
//         prefix "outbox:orders:order-42" -> topic "orders", key "order-42"
//         prefix "outbox:orders"          -> topic "orders", no key (also "outbox:orders:")
//         prefix "outbox:orders:a:b"      -> topic "orders", key "a:b" (the key is the rest)
//         prefix "outbox" / "outbox::k" / "outbox:bad topic" -> rejected (parked) with the reason
//         prefix "outboxes:x", "other"    -> not ours, skipped
//     value = content bytes unchanged; id and header `id` = the message LSN ("0/1A2B3C8", the same
//     every time the message is re-sent); timestamp = the commit time. No other headers.
//   - Skipped on purpose: UPDATE, DELETE, TRUNCATE, other tables' changes, other prefixes (Debezium's
//     insert-then-delete in one transaction publishes the insert). Non-transactional messages with our
//     prefix are skipped with a warning: they are not tied to a commit (they are sent even when the
//     emitting transaction rolls back), which breaks the outbox contract.
//
// Idle and liveness
//   While fetch() waits it answers keepalives and sends a standby status update at least every
//   status_interval, so wal_sender_timeout never ends the stream. Between fetch() calls (while the
//   dispatcher waits for Kafka) call service() now and then for the same. When nothing is buffered or
//   in flight for heartbeat_interval and the server reports it has read past the confirmed position,
//   the confirmed position moves there (a quiet outbox does not pin WAL).
//
// Threads: one (the dispatcher thread) calls every method.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "core/routing.h"
#include "core/source.h"
#include "pg/common/catalog.h"
#include "pg/decode/assembler.h"
#include "pg/decode/txn_queue.h"
#include "pg/wal/wal_config.h"

struct pg_conn;  // libpq's PGconn, kept out of this header (libpq types stay inside pg/*.cpp)

namespace outbox_relay::pg {

class ReplicationStream;
struct SlotInfo;

class WalSource final : public core::OutboxSource {
 public:
  WalSource(WalSourceConfig cfg, core::Router router);
  ~WalSource() override;
  WalSource(const WalSource&) = delete;
  WalSource& operator=(const WalSource&) = delete;

  // Checks wal_level, the table layout, publication and slot (creating the missing ones when allowed;
  // the publication first, so the slot never decodes before it exists), samples pg_current_wal_lsn()
  // for caught_up(), then starts streaming from the confirmed position. Throws ConfigError (wal_level,
  // missing table/publication/slot not to be created, slot of another plugin or database), FatalError
  // (missing column, slot dropped since we used it, slot invalidated), TransientError (server away,
  // slot active elsewhere: another relay holds it).
  void open() override;

  // Returns as soon as it holds at least one complete transaction and either has `max` records or no
  // more data is immediately available; empty after `wait` (at least min_wait while not caught up and
  // nothing is in flight). Behind a batch in flight it returns at once with what is ready.
  // Throws TransientError when the connection is lost, FatalError on a stream it cannot decode or a
  // layout change that drops a required column, std::logic_error while two batches are in flight.
  core::Batch fetch(std::size_t max, std::chrono::milliseconds wait) override;

  // Parks poison/rejected records of the transactions it confirms, then moves the flush LSN and sends
  // it at once. Throws TransientError when parking or the status update fails (the acked position is
  // kept and sent after the next open()).
  void commit(const core::Batch& batch, const core::Settlement& settlement) override;
  [[nodiscard]] core::Ordering ordering() const override { return core::Ordering::kPrefix; }
  // Exactly-once: the checkpoint is the position the batch's settlement confirms (the confirmed
  // position while idle).
  [[nodiscard]] core::Checkpoint checkpoint(const core::Batch& batch,
                                            const core::Settlement& settlement) const override;
  [[nodiscard]] std::optional<core::Checkpoint> expected_checkpoint(const core::Batch& batch) const override;
  void recover(const core::Checkpoint& checkpoint) override;

  void abandon(const core::Batch& batch) noexcept override;

  // Nothing buffered or in flight, and the stream has been read up to pg_current_wal_lsn() as sampled
  // at open().
  [[nodiscard]] bool caught_up() const override;
  [[nodiscard]] bool more_ready() const override { return queue_.has_ready(); }

  // Sends a last status update (best effort) and drops both connections.
  void close() noexcept override;

  [[nodiscard]] int pipeline_depth() const override { return static_cast<int>(TxnQueue::kMaxBatches); }
  [[nodiscard]] std::string describe() const override;

  // Keeps the stream alive between fetch() calls without blocking: reads what has arrived (within the
  // read-ahead bound), answers keepalives, sends the periodic status update. Throws TransientError
  // when the connection is lost. Proposed as a virtual of core::OutboxSource (docs/ARCHITECTURE.md:
  // service()).
  void service() override;
  void wake() noexcept override { woken_.store(true); }

  // The flush LSN we have confirmed (or will confirm at the next status update).
  [[nodiscard]] uint64_t confirmed_lsn() const { return queue_.confirmed(); }

 private:
  using Clock = std::chrono::steady_clock;

  // Connects the side connection and the replication connection to the same host of --db-url: the first,
  // in its order, that accepts the connection, is not in recovery, and is not on a timeline older than
  // the one streamed before (an old primary that came back). TransientError naming why each was skipped.
  void connect_primary();
  // The side connection again (parking), to the host the stream is on.
  void connect_meta();
  // The server is of the cluster streamed before, on another timeline: a standby was promoted.
  [[nodiscard]] bool promoted() const;
  // After a promotion: the position to resume from (the slot's, synchronized from the old primary), and
  // an error in the log if the relay had confirmed WAL the new timeline does not have.
  uint64_t follow_promotion(const SlotInfo& slot);
  // Logs what judge_failover() says about the slot (once, and again after following a promotion).
  void report_failover() noexcept;
  void make_assembler();
  // Reads what has arrived, stopping early once `stop_at_records` records or the read-ahead bound are
  // ready. True when the socket had nothing more.
  bool pump(std::size_t stop_at_records);
  [[nodiscard]] bool enough_ready(std::size_t stop_at_records) const;
  void handle(const CopyMessage& msg);
  void handle_data(const XLogData& x);
  void tick();  // status updates, heartbeat, keepalive requests while catching up
  void send_status(bool request_reply);
  [[nodiscard]] Clock::time_point next_timer() const;
  [[nodiscard]] bool position_reached() const;
  // Nothing of ours buffered, in flight or half-read from the stream.
  [[nodiscard]] bool stream_idle() const;
  [[nodiscard]] bool wants_reply() const;
  void park(const core::Batch& batch, const core::Settlement& settlement, bool once = false);
  void park_skipped(std::vector<core::RejectedRow> rows);
  // The position the slot may be confirmed at: queue_.confirmed(), or less while held_.
  [[nodiscard]] uint64_t confirmable() const;

  WalSourceConfig cfg_;
  core::Router router_;
  std::string redacted_;  // conninfo without the password, for logs
  TableShape table_;

  struct ConnCloser {
    void operator()(pg_conn* c) const noexcept;
  };
  std::unique_ptr<pg_conn, ConnCloser> meta_;  // normal connection: checks, publication, parking
  std::unique_ptr<ReplicationStream> stream_;  // replication connection, CopyBoth once streaming
  TransactionAssembler assembler_;
  TxnQueue queue_;

  std::string host_;       // host:port streamed from
  std::string system_id_;  // IDENTIFY_SYSTEM of the stream last started
  uint32_t timeline_ = 0;  // its timeline
  bool failover_reported_ = false;
  bool parked_table_ready_ = false;
  bool warned_keep_size_ = false;
  bool restart_ = false;  // the queue was dropped (abandon() could not give records back): reconnect
  std::atomic<bool> woken_{false};  // wake(): fetch() returns at its next check (within a status interval)
  uint64_t target_ = 0;             // pg_current_wal_lsn() at open(), for caught_up()
  uint64_t idle_position_ = 0;      // server read position with no transaction of ours open before it
  uint64_t streamed_ = 0;           // the stream is read up to here (idle_position_ without recover()'s)
  // Exactly-once recovery: Kafka holds the transactions up to `through`, but the malformed rows among
  // them were to be parked when the slot was confirmed past them, which the crash prevented. The slot
  // stays at `from` until the stream has been read up to `through` and those rows are parked.
  struct Held {
    uint64_t from = 0;
    uint64_t through = 0;
    std::size_t parked = 0;
  };
  std::optional<Held> held_;
  Clock::time_point last_activity_{};
};

}  // namespace outbox_relay::pg
