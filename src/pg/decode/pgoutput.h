#pragma once
// A pure decoder for what a logical walsender streams with the built-in `pgoutput` plugin, protocol
// version 1 (PostgreSQL's "Logical Replication Message Formats"), plus the replication-protocol
// CopyData wrappers around it (XLogData 'w', primary keepalive 'k', standby status update 'r').
//
// No I/O and no libpq here: every function takes bytes and returns values, so it is unit-tested from
// byte fixtures and fuzzed (tests/fuzz/fuzz_pgoutput.cpp). Every read is bounds-checked; malformed
// input throws DecodeError and never reads outside the given bytes. Integers are big-endian (network
// order) as on the wire. Strings are returned as bytes: the server sends them in the database encoding.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace outbox_relay::pg {

// A message that does not follow the protocol (truncated, unknown type, bad length, trailing bytes).
struct DecodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Timestamps on the wire are microseconds since the PostgreSQL epoch, 2000-01-01 00:00:00 UTC.
inline constexpr int64_t kPgEpochUnixSeconds = 946684800;
[[nodiscard]] constexpr int64_t pg_time_to_unix_ms(int64_t pg_us) {
  const int64_t ms = pg_us / 1000 - ((pg_us % 1000) < 0 ? 1 : 0);  // floor, also before 2000
  return ms + kPgEpochUnixSeconds * 1000;
}
[[nodiscard]] constexpr int64_t unix_us_to_pg_time(int64_t unix_us) {
  return unix_us - kPgEpochUnixSeconds * 1000000;
}

namespace pgoutput {

// 'B': sent before the first change of a transaction that has something published.
struct Begin {
  uint64_t final_lsn = 0;   // LSN of the commit record
  int64_t commit_time = 0;  // microseconds since 2000-01-01 UTC
  uint32_t xid = 0;
};

// 'C': ends the transaction opened by the last Begin.
struct Commit {
  uint8_t flags = 0;
  uint64_t commit_lsn = 0;  // == Begin::final_lsn
  uint64_t end_lsn = 0;     // end of the commit record: the position to confirm once it is handled
  int64_t commit_time = 0;
};

// 'O': the transaction was replayed from another node.
struct Origin {
  uint64_t commit_lsn = 0;
  std::string name;
};

struct RelationColumn {
  bool key = false;  // part of the replica identity
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;
};

// 'R': describes a table before the first change to it in a session (and after it changes).
struct Relation {
  uint32_t oid = 0;
  std::string nspname;
  std::string relname;
  char replica_identity = 'd';  // d(efault), n(othing), f(ull), i(ndex)
  std::vector<RelationColumn> columns;
};

// 'Y': describes a non-built-in column type.
struct Type {
  uint32_t oid = 0;
  std::string nspname;
  std::string name;
};

enum class ColumnKind : char {
  kNull = 'n',
  kUnchangedToast = 'u',  // a TOASTed value an UPDATE did not change: the value is not sent
  kText = 't',            // the type's text output
  kBinary = 'b',          // the type's binary send output (only with the `binary` option)
};

struct TupleColumn {
  ColumnKind kind = ColumnKind::kNull;
  std::string value;  // empty unless kText or kBinary
};
using TupleData = std::vector<TupleColumn>;

// 'I'
struct Insert {
  uint32_t relation_oid = 0;
  TupleData new_tuple;
};

// 'U'. old_kind is 'K' (old key columns), 'O' (old row, REPLICA IDENTITY FULL) or 0 (not sent).
struct Update {
  uint32_t relation_oid = 0;
  char old_kind = 0;
  std::optional<TupleData> old_tuple;
  TupleData new_tuple;
};

// 'D'. old_kind is 'K' or 'O' as for Update.
struct Delete {
  uint32_t relation_oid = 0;
  char old_kind = 'K';
  TupleData old_tuple;
};

// 'T'
struct Truncate {
  static constexpr uint8_t kCascade = 1;
  static constexpr uint8_t kRestartIdentity = 2;
  uint8_t options = 0;
  std::vector<uint32_t> relation_oids;
};

// 'M': pg_logical_emit_message(transactional, prefix, content). A transactional one arrives between
// the Begin and Commit of its transaction; a non-transactional one arrives on its own, as soon as it
// is decoded, even if its transaction later rolls back.
struct LogicalMessage {
  bool transactional = false;
  uint64_t lsn = 0;  // as sent by the server (the end of the message's WAL record)
  std::string prefix;
  std::string content;  // arbitrary bytes
};

using Message =
    std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate, LogicalMessage>;

// Decodes one pgoutput message (the payload of one XLogData). Throws DecodeError.
[[nodiscard]] Message decode(std::string_view bytes);

// The one-letter tag of a decoded message ('B', 'C', ...), for logs.
[[nodiscard]] char tag(const Message& m);

// What the walsender told us about each table (Relation messages), so tuples can be read by column
// name. The server sends a Relation before the first change to a table in a session, so a fresh cache
// per replication connection is enough.
class RelationCache {
 public:
  void apply(Relation relation);  // adds or replaces by oid
  [[nodiscard]] const Relation* find(uint32_t oid) const;
  // The relation of a change, checked against the tuple: throws DecodeError when the relation was
  // never described or its column count differs from the tuple's.
  [[nodiscard]] const Relation& require(uint32_t oid, const TupleData& tuple) const;
  void clear() { relations_.clear(); }
  [[nodiscard]] std::size_t size() const { return relations_.size(); }

 private:
  std::unordered_map<uint32_t, Relation> relations_;
};

}  // namespace pgoutput

// ---- replication protocol (the CopyBoth stream of START_REPLICATION) ----

// 'w': a chunk of the stream. For logical replication the payload is one pgoutput message.
struct XLogData {
  uint64_t start_lsn = 0;
  uint64_t end_lsn = 0;      // the server's current end of WAL (logical: same as start)
  int64_t send_time = 0;     // microseconds since 2000-01-01 UTC
  std::string_view payload;  // points into the decoded buffer
};

// 'k': the server's keepalive. end_lsn is how far the walsender has processed the WAL: once every
// message before it has been handled, nothing at or before it is still to come.
struct PrimaryKeepalive {
  uint64_t end_lsn = 0;
  int64_t send_time = 0;
  bool reply_requested = false;
};

using CopyMessage = std::variant<XLogData, PrimaryKeepalive>;

// Decodes one CopyData message from the server. Throws DecodeError.
[[nodiscard]] CopyMessage decode_copy_data(std::string_view bytes);

// The standby status update ('r', 34 bytes) a client sends: write/flush/apply positions, its clock
// (microseconds since 2000-01-01 UTC) and whether the server should answer at once with a keepalive.
// For a logical slot, `flush` becomes the slot's confirmed_flush_lsn.
[[nodiscard]] std::string encode_standby_status(uint64_t write_lsn, uint64_t flush_lsn, uint64_t apply_lsn,
                                                int64_t client_time, bool reply_requested);

}  // namespace outbox_relay::pg
