#pragma once
// The operator's queries, each on a connection of its own (never the dispatcher's): backlog and slot
// statistics for /metrics and `status`, the facts `check` judges, `replay` and `cleanup`/--retention.
// Every query is short; statements are bounded by a statement_timeout set at connect.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "core/routing.h"

namespace outbox_relay::pg {

// Connects with `application_name` and a statement_timeout. Throws core::TransientError whose text
// names the server by redact_conninfo (never the password).
std::unique_ptr<pqxx::connection> connect_side(const std::string& conninfo,
                                               const std::string& application_name,
                                               std::chrono::milliseconds statement_timeout);

// Column names of `table` (schema-qualified or not); nullopt when the table does not exist.
std::optional<std::set<std::string>> table_columns(pqxx::connection& c, const std::string& table);

struct TableStats {
  int64_t backlog_rows = -1;          // unsent and not failed
  int64_t oldest_unsent_age_ms = -1;  // -1 when empty or the layout has no timestamp column
  int64_t failed_rows = -1;           // failed_at set; -1 when the table has no failed_at column
  int64_t sent_rows = -1;             // sent_at set (--on-sent=mark); -1 without a sent_at column
  int64_t parked_rows = -1;           // rows in outbox_relay_parked; -1 when that table is absent
};

// `with_sent` adds the count of marked rows (a full scan of the sent index: `status` only).
// Throws pqxx errors (the caller reconnects).
TableStats table_stats(pqxx::connection& c, const std::string& table, const core::Layout& layout,
                       bool with_sent);

struct SlotStats {
  bool exists = false;
  bool active = false;
  std::string plugin;
  std::string wal_status;           // reserved, extended, unreserved, lost
  std::string confirmed_flush_lsn;  // "X/Y"
  uint64_t confirmed_lsn = 0;       // the same as a byte position
  int64_t lag_bytes = -1;           // pg_current_wal_lsn() - confirmed_flush_lsn
};
SlotStats slot_stats(pqxx::connection& c, const std::string& slot);

// What `check` needs to know about the server and the table; judged by app::evaluate_check.
struct ServerFacts {
  std::string server_version;
  std::string user;
  bool superuser = false;
  bool replication = false;
  std::string wal_level;
  bool table_exists = false;
  std::set<std::string> columns;
  bool can_select = false;
  bool can_update = false;
  bool can_delete = false;
  bool parked_table_exists = false;
  bool can_insert_parked = false;
  bool slots_table_exists = false;  // outbox_relay_slots (WAL mode records its slots there)
  bool can_write_slots = false;     // SELECT, INSERT and UPDATE on it
  bool slot_exists = false;
  std::string slot_plugin;
  bool publication_exists = false;
  bool publication_has_table = false;
};
ServerFacts server_facts(pqxx::connection& c, const std::string& table, const std::string& slot,
                         const std::string& publication);

// Which rows a retention pass deletes: marked rows (poll mode) or any row by its timestamp (WAL mode,
// where rows are published from the WAL and never marked).
enum class RetentionBy { kSentAt, kCreatedAt };

// Deletes rows older than `retention` in batches of `batch` rows, each batch its own short
// transaction that skips rows other sessions hold locked, so writers and the relay never wait on
// it. Stops early when `keep_going` returns false. Returns the number of rows deleted. Throws
// core::ConfigError when the table lacks the column, pqxx errors otherwise.
int64_t delete_older_than(pqxx::connection& c, const std::string& table, const core::Layout& layout,
                          RetentionBy by, std::chrono::milliseconds retention, int batch,
                          const std::function<bool()>& keep_going);

// Rows `replay` selects: an inclusive id range or a list of ids.
struct ReplaySelection {
  std::optional<std::string> from, to;
  std::vector<std::string> ids;
  bool failed = false;  // failed rows (failed_at set) instead of sent (marked) ones
};
struct ReplayResult {
  int64_t reset = 0;  // rows made pending again
  std::vector<std::string> reset_ids;
};

// Makes the selected sent (or failed) rows pending again in one transaction and wakes the relays
// with NOTIFY, so the running daemon publishes them again. Throws core::ConfigError when the table
// has no sent_at (failed_at) column.
ReplayResult replay(pqxx::connection& c, const std::string& table, const core::Layout& layout,
                    const ReplaySelection& selection, const std::string& notify_channel);

}  // namespace outbox_relay::pg
