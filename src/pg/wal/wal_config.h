#pragma once
// The WAL source's settings, apart from the source itself.

#include <chrono>
#include <cstddef>
#include <string>

namespace outbox_relay::pg {

struct WalSourceConfig {
  std::string conninfo;  // libpq URL or key=value; may contain a password: never logged (redact_conninfo)
  std::string table = "outbox";       // optionally schema-qualified, as in poll mode
  std::string slot = "outbox_relay";  // [a-z0-9_]{1,63}
  std::string publication = "outbox_relay_pub";
  bool create_slot = true;         // false: a missing slot is a ConfigError
  bool create_publication = true;  // false: a missing publication is a ConfigError
  // PostgreSQL 17+: the slot is a failover slot (created with FAILOVER, or altered to one when no one
  // streams it), which standbys with sync_replication_slots keep a copy of, so a promoted standby has it.
  bool failover_slot = true;
  std::chrono::milliseconds status_interval{1000};
  std::chrono::milliseconds heartbeat_interval{10000};
  std::string message_prefix = "outbox";  // "" = logical decoding messages are not events
  // Read-ahead bound: past this much memory in transactions (or chunks) not yet fetched, the source
  // stops reading the stream (the server waits; keepalives still flow).
  std::size_t max_buffered_bytes = 4u << 20;
  // A transaction whose records reach this much memory is published in chunks of about this size as
  // it streams in, instead of being held whole (0: never). The slot is confirmed only past its end, so
  // a crash re-sends it from its start (exactly-once: the checkpoint counts its records sent).
  std::size_t chunk_bytes = 2u << 20;
  // Most memory in records one batch takes from the read-ahead (its first transaction or chunk always).
  std::size_t max_batch_bytes = 4u << 20;
  // Shortest wait in fetch() while nothing is ready and the source is not caught up, so that wait=0
  // (--exit-when-idle) polls the socket instead of spinning.
  std::chrono::milliseconds min_wait{20};
  // Bound on each connect and each command (IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT, queries).
  std::chrono::milliseconds command_timeout{30000};
  // The server ends the stream of a relay that stopped answering (dead, paused, partitioned) after this
  // (wal_sender_timeout for this connection, and tcp_user_timeout), which frees the slot for a standby.
  // Keepalive replies and status updates (status_interval) keep a live relay's stream open.
  std::chrono::milliseconds session_timeout{60000};
};

}  // namespace outbox_relay::pg
