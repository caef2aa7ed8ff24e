#pragma once
// WAL mode without I/O: turns decoded pgoutput messages into whole transactions of outbox records.
// Inserted rows of the outbox table go through core::Router; logical decoding messages whose prefix
// starts with the configured message prefix become records directly (mapping in pg/wal/wal_source.h).
// Everything else (updates, deletes, truncates, other tables, other prefixes) is skipped on purpose:
// Debezium's insert-then-delete in one transaction publishes the insert.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/batch.h"
#include "core/message.h"
#include "core/routing.h"
#include "pg/decode/pgoutput.h"
#include "pg/decode/text_codec.h"  // decode_bytea_hex, used by the mapping

namespace outbox_relay::pg {

// Type oids of the built-in types the mapping converts.
inline constexpr uint32_t kByteaOid = 17;
inline constexpr uint32_t kTimestampOid = 1114;
inline constexpr uint32_t kTimestamptzOid = 1184;

// ms since the Unix epoch of a timestamp in PostgreSQL's ISO output (DateStyle ISO, which the WAL
// source sets on its connection): "2026-11-22 05:34:36.123456+00", "...+05:30", "...-03:30:15",
// without an offset (a `timestamp` column, read as UTC). Fractions below a millisecond are floored.
// nullopt for anything else ("infinity", BC dates, other DateStyles).
[[nodiscard]] std::optional<int64_t> timestamp_text_to_ms(std::string_view text);

// Where a logical decoding message goes, from its prefix "<configured>:<topic>[:<key>]".
struct MessageRoute {
  std::string topic;
  std::optional<std::string> key;  // nullopt when absent or empty; may itself contain ':'
};
// nullopt: not ours (other prefix, or `configured` empty = messages disabled). Otherwise the route,
// or (index 1) why the message cannot be routed (no topic, invalid topic name).
[[nodiscard]] std::optional<std::variant<MessageRoute, std::string>> route_message_prefix(
    std::string_view prefix, std::string_view configured);

// The record for a transactional logical decoding message, or (index 1) why it is poison; nullopt when
// the prefix is not ours. id (and the `id` header) = the message's LSN ("0/1A2B3C8"), stable across
// re-sends; value = content unchanged; timestamp = `timestamp_ms` (the commit time).
[[nodiscard]] std::optional<core::Router::Result> map_logical_message(const pgoutput::LogicalMessage& message,
                                                                      std::string_view configured_prefix,
                                                                      int64_t timestamp_ms,
                                                                      uint64_t position);

// The row for an inserted tuple: every column by name, NULL as nullopt. The layout's timestamp column,
// when its type is timestamp(tz), becomes ms-since-epoch text as the Router expects (NULL when it is
// not a finite ISO timestamp); the value column, when bytea, becomes its raw bytes. An unchanged-TOAST
// column (never seen in an insert) is left out of the row. id = the id column's text.
[[nodiscard]] core::OutboxRow tuple_to_row(const pgoutput::Relation& relation,
                                           const pgoutput::TupleData& tuple, const core::Layout& layout);

// The layout's required columns the relation does not have, in layout order.
[[nodiscard]] std::vector<std::string> missing_columns(const pgoutput::Relation& relation,
                                                       const core::Layout& layout);

// One committed transaction, mapped, or a chunk of one (complete == false) too large to hold whole.
// Positions of its messages and rejected rows = end_lsn.
struct Transaction {
  uint32_t xid = 0;
  // Complete: the end of the commit record; confirming it means "this transaction is done". A chunk:
  // commit_lsn + 1, a position after every earlier transaction and before this one's end, which orders
  // its records but is never confirmed.
  uint64_t end_lsn = 0;
  uint64_t commit_lsn = 0;  // where the commit record starts (Begin's final LSN)
  bool complete = true;     // false: a chunk; the rest of the transaction follows
  std::vector<core::OutboxMessage> messages;
  std::vector<core::RejectedRow> rejected;
  std::size_t bytes = 0;  // approximate memory held, for the read-ahead bound

  [[nodiscard]] std::size_t size() const { return messages.size() + rejected.size(); }
};

// Assembles pgoutput messages (in stream order) into transactions. Not thread-safe; one per stream.
class TransactionAssembler {
 public:
  struct Options {
    std::string table_schema;  // the outbox table, as Relation messages name it
    std::string table_name;
    std::string message_prefix;  // "" = logical decoding messages are not events
    // Told about things skipped deliberately that an operator may want to know about (a
    // non-transactional message with our prefix). Must not throw.
    std::function<void(const std::string&)> warn;
    // A transaction whose records reach this many bytes is handed out in chunks of about this size
    // as it streams in (all of its rows are committed already); 0: only whole transactions.
    std::size_t chunk_bytes = 0;
  };

  TransactionAssembler(core::Router router, Options options);

  // Feeds one decoded message. Returns the transaction when `message` is its Commit, or a chunk of it
  // (complete == false) when its records reached chunk_bytes; the chunk after the last one is the
  // transaction's end (complete, maybe without records). Throws DecodeError
  // when the stream breaks the protocol's order (a change outside Begin..Commit, Begin inside a
  // transaction, a Commit for another transaction, a tuple of an undescribed relation) and
  // core::FatalError when the outbox table lacks a column the layout requires.
  std::optional<Transaction> feed(pgoutput::Message message);
  // decode() + feed().
  std::optional<Transaction> feed_bytes(std::string_view payload) { return feed(pgoutput::decode(payload)); }

  // Between a Begin and its Commit.
  [[nodiscard]] bool in_transaction() const { return current_.has_value(); }
  // Exactly-once recovery: the first `records` records of the transaction whose commit record starts at
  // `commit_lsn` are in Kafka already; they are dropped when it streams in (once).
  void skip_records(uint64_t commit_lsn, uint64_t records) { skip_ = {commit_lsn, records}; }
  // The malformed rows among the records dropped so far: Kafka holds the rest of their transaction,
  // and they were to be parked when it was confirmed, which the crash prevented. For the source to park.
  [[nodiscard]] std::vector<core::RejectedRow> take_skipped_rejected() {
    return std::exchange(skipped_rejected_, {});
  }
  // Forgets the partial transaction and the relations (a new stream starts with neither).
  void reset();

  [[nodiscard]] const pgoutput::RelationCache& relations() const { return relations_; }
  [[nodiscard]] const core::Router& router() const { return router_; }

 private:
  struct Current {
    pgoutput::Begin begin;
    Transaction txn;
  };

  void on_relation(pgoutput::Relation relation);
  void on_insert(const pgoutput::Insert& insert);
  void on_message(const pgoutput::LogicalMessage& message);
  Current& require_transaction(const char* what);
  void add(core::Router::Result result, core::OutboxRow row);

  // The chunk gathered so far, handed out; the transaction goes on.
  Transaction take_chunk();

  core::Router router_;
  Options options_;
  pgoutput::RelationCache relations_;
  std::optional<Current> current_;
  struct Skip {
    uint64_t commit_lsn = 0;
    uint64_t records = 0;
  } skip_;
  uint64_t skipping_ = 0;  // records of the current transaction still to drop
  std::vector<core::RejectedRow> skipped_rejected_;
};

}  // namespace outbox_relay::pg
