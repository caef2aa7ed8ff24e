#pragma once
// The statements of poll mode, built from the table as it is (its columns) and the options: a pure
// function, no connection, so that unit tests read the SQL and bench/claim.cpp runs the relay's own.

#include <string>

#include "core/routing.h"
#include "pg/common/catalog.h"
#include "pg/poll/poll_config.h"

namespace outbox_relay::pg {

struct ClaimStatements {
  // The id column is an integer claimed in id order: the claim starts past a watermark ($2) and
  // snapshot_xmax/advance move it (pg/poll/watermark.h).
  bool watermark = false;
  // The table has failed_at and error: poison rows are marked there, else moved to outbox_relay_parked.
  bool failed_columns = false;

  // $1 limit[, $2 watermark]: the layout's columns present in the table as text (the timestamp column
  // as ms since the epoch), pending rows only (sent_at/failed_at NULL when present; this shard's keys;
  // with skip_blocked_keys, not behind a failed row of the same key), in claim order, locked, skipping
  // rows locked by others.
  std::string claim;
  std::string snapshot_xmax;  // watermark: txid_snapshot_xmax of the current snapshot, as text
  // watermark: $1 xmax, $2 floor, $3 candidate -> (every transaction up to xmax ended, the first
  // pending id in (floor, candidate])
  std::string advance;
  std::string done;  // $1 array of ids: delete (on_sent delete) or stamp sent_at (mark)
  // failed_columns: $1 id, $2 error -> failed_at, error (and attempts + 1 when present).
  // Otherwise: $1 array of ids, $2 parked rows JSON (pg/common/parking.h) -> the rows still in the
  // table are deleted and their events inserted into outbox_relay_parked.
  std::string park;
};

// `table` must hold the layout's required columns (the caller checked).
[[nodiscard]] ClaimStatements claim_statements(const core::Layout& layout, const TableShape& table,
                                               const PollSourceConfig& cfg);

}  // namespace outbox_relay::pg
