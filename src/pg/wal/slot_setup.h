#pragma once
// WAL mode's setup on the normal (side) connection and the replication one: the server's settings, the
// table, the publication and the replication slot, checked, and created where allowed. Each function
// runs its statements within cfg.command_timeout and throws ConfigError (for the operator to fix),
// FatalError (events could be lost) or TransientError (may pass), naming what it checked.
// Only files under src/pg/wal/ include this.

#include <cstdint>
#include <string>

#include "core/routing.h"
#include "pg/common/catalog.h"
#include "pg/common/libpq_handles.h"
#include "pg/wal/wal_config.h"

namespace outbox_relay::pg {

// 1 to 63 of [a-z0-9_]: what a replication command may name without quoting.
[[nodiscard]] bool valid_slot_name(const std::string& s);

// PostgreSQL 14 or later, wal_level = logical; warns once (`warned`) when max_slot_wal_keep_size is -1.
void check_server(PGconn* meta, const WalSourceConfig& cfg, bool& warned_keep_size);

// The table and its columns; FatalError when a column the layout requires is missing.
TableShape resolve_table(PGconn* meta, const WalSourceConfig& cfg, const core::Layout& layout);

// The publication exists (created when missing and allowed), publishes inserts and includes the table.
void ensure_publication(PGconn* meta, const WalSourceConfig& cfg, const TableShape& table);

struct SlotInfo {
  bool exists = false;
  uint64_t confirmed_flush = 0;
  bool failover = false;  // a failover slot (17+): synchronized to standbys that sync slots
  bool synced = false;    // synchronized from a former primary (left so by a promotion; 17+)
  bool active = false;    // some walsender streams it
};

// The slot, if it exists, is a logical pgoutput slot of this database, not temporary and not invalidated
// (wal_status lost, or an invalidation_reason / conflicting on 16+). While it is held by our own
// walsender of before a reconnect (`own_walsender_pid`), waits up to 5 s for it to go.
SlotInfo inspect_slot(PGconn* meta, const WalSourceConfig& cfg, int own_walsender_pid);

// outbox_relay_parked (poison events) and outbox_relay_slots (below) exist, created from their
// migrations where the role may, with the privileges WAL mode needs; ConfigError naming the GRANT or
// `outbox-relay migrate` otherwise. Without them the first poison event would stop the relay, and a
// dropped slot would be re-created at "now" unnoticed.
void check_relay_tables(PGconn* meta, const WalSourceConfig& cfg);

// A slot this relay created is recorded in outbox_relay_slots, so that a slot dropped while the relay
// was down (or across a supervisor restart) is noticed instead of silently re-created at "now", which
// would skip every event committed in between. FatalError when the slot is recorded there.
void refuse_if_slot_was_dropped(PGconn* meta, const WalSourceConfig& cfg);

// CREATE_REPLICATION_SLOT on the replication connection (a slot another relay created just now is fine);
// a failover slot on PostgreSQL 17+ unless cfg.failover_slot is off.
void create_slot(PGconn* repl, const WalSourceConfig& cfg);

// On PostgreSQL 17+, when the slot's failover property differs from cfg.failover_slot and no one streams
// it: ALTER_REPLICATION_SLOT (FAILOVER ...). A failure is a warning (the stream works either way).
void align_slot_failover(PGconn* repl, const WalSourceConfig& cfg, const SlotInfo& slot);

// Records the slot (created at `created_lsn`) in outbox_relay_slots (check_relay_tables made sure it can).
void remember_slot(PGconn* meta, const WalSourceConfig& cfg, uint64_t created_lsn);

// pg_current_wal_lsn().
uint64_t current_wal_lsn(PGconn* meta, const WalSourceConfig& cfg);

}  // namespace outbox_relay::pg
