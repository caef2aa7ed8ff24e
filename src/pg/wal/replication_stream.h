#pragma once
// The replication connection of WAL mode (raw libpq, `replication=database`) and its CopyBoth stream:
// IDENTIFY_SYSTEM, START_REPLICATION of the pgoutput plugin, reading CopyData messages without blocking,
// standby status updates. What the messages mean, and which position to confirm, is the WAL source's.
// Modelled on pg_recvlogical.c. Only files under src/pg/wal/ include this.
//
// Errors: TransientError when the connection is lost or a command fails for now; the server ending or
// refusing the stream is classified by the slot (in use elsewhere: transient; dropped after we used
// it, or invalidated: FatalError; publication missing: FatalError). Threads: one.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "pg/common/libpq_handles.h"
#include "pg/decode/pgoutput.h"

namespace outbox_relay::pg {

class ReplicationStream {
 public:
  using Clock = std::chrono::steady_clock;

  ReplicationStream(std::string slot, std::chrono::milliseconds command_timeout)
      : slot_(std::move(slot)), command_timeout_(command_timeout) {}

  // Opens the replication connection with `params` (the session's; replication, DateStyle ISO, which the
  // tuple mapping parses, and wal_sender_timeout = session_timeout added) and runs IDENTIFY_SYSTEM.
  // `redacted` names the server in errors. ConfigError when the connection is bound to no database.
  void connect(std::map<std::string, std::string> params, const std::string& redacted,
               std::chrono::milliseconds session_timeout);
  [[nodiscard]] PGconn* connection() const { return conn_.get(); }
  // Backend pid of the last connection made (0 before any).
  [[nodiscard]] int backend_pid() const { return backend_pid_; }
  // IDENTIFY_SYSTEM of the last connection: the cluster's system identifier and the server's timeline
  // (a promoted standby starts a new, higher one; an old primary that comes back stays on its old one).
  [[nodiscard]] const std::string& system_id() const { return system_id_; }
  [[nodiscard]] uint32_t timeline() const { return timeline_; }
  // pg_is_in_recovery() of the connected server (a standby). TransientError when the query fails.
  [[nodiscard]] bool in_recovery();
  // Where timeline `tli` of the connected server branched off its parent (TIMELINE_HISTORY), or nullopt
  // when it is the first timeline or the history cannot be read.
  [[nodiscard]] std::optional<uint64_t> timeline_start(uint32_t tli);

  // A slot this process has streamed from: its absence now means it was dropped (FatalError).
  void mark_slot_seen() { slot_seen_ = true; }
  [[nodiscard]] bool slot_seen() const { return slot_seen_; }

  // START_REPLICATION from `from` on `publication` (with logical decoding messages when `messages`).
  void start(uint64_t from, const std::string& publication, bool messages);
  [[nodiscard]] bool streaming() const { return streaming_; }

  // Reads what has arrived on the socket into libpq's buffer (never blocks). TransientError when the
  // stream is not open or the connection is lost.
  void receive();
  // The next message buffered, nullopt when none is. Its payload points into a buffer that is valid
  // until the next call. FatalError when it cannot be decoded; classified errors when the server ended
  // the stream.
  std::optional<CopyMessage> next();

  // Sends a status update: written up to max(received, flush), flushed and applied up to `flush`; the
  // server answers at once with a keepalive when `request_reply`. Does nothing while not streaming.
  void send_status(uint64_t flush, bool request_reply);
  // The furthest position the server reported (keepalives and data).
  [[nodiscard]] uint64_t received() const { return received_; }
  [[nodiscard]] uint64_t sent_flush() const { return sent_flush_; }
  [[nodiscard]] Clock::time_point last_status() const { return last_status_; }
  [[nodiscard]] Clock::time_point last_reply_request() const { return last_reply_request_; }

  // Waits until data arrives or `until`.
  void wait_readable(Clock::time_point until);

  void close() noexcept;

 private:
  [[noreturn]] void lost(const std::string& what);
  [[noreturn]] void classify(const std::string& state, const std::string& message, const std::string& what);

  std::string slot_;
  std::chrono::milliseconds command_timeout_;
  PgConn conn_;
  PqBuffer buffer_;  // the last message next() returned
  int backend_pid_ = 0;
  std::string system_id_;
  uint32_t timeline_ = 0;
  bool slot_seen_ = false;
  bool streaming_ = false;
  uint64_t received_ = 0;
  uint64_t sent_flush_ = 0;
  Clock::time_point last_status_{};
  Clock::time_point last_reply_request_{};
};

}  // namespace outbox_relay::pg
