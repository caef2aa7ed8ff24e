#pragma once
// The operator's subcommands. Each prints to stdout and returns the process exit code:
//   status   backlog, oldest unsent age, failed/sent/parked rows, and the slot when one exists
//   check    config, PostgreSQL, table layout, grants, wal_level (WAL mode), Kafka, static topics
//   replay   makes chosen sent (or --failed) rows pending again; the running daemon republishes them
//   cleanup  deletes sent rows older than --retention in batches of 1000 (SKIP LOCKED)

#include <iosfwd>
#include <string>
#include <vector>

#include "app/options.h"
#include "pg/common/maintenance.h"

namespace outbox_relay::app {

int run_status(const Options& options, std::ostream& out);
int run_check(const Options& options, std::ostream& out);
int run_replay(const Options& options, std::ostream& out);
int run_cleanup(const Options& options, std::ostream& out);

// One finding of `check`.
struct CheckLine {
  enum class Level { kOk, kWarn, kFail };
  Level level = Level::kOk;
  std::string text;
};

// Judges what server_facts() found against the options: table and columns for the layout, grants
// for the mode, wal_level/REPLICATION/slot/publication for --mode=wal. Pure (the unit-test seam).
std::vector<CheckLine> evaluate_server(const Options& options, const pg::ServerFacts& facts);

// "3.2s", "4m10s", "2h05m", "3d04h": an age for humans.
std::string format_age(int64_t ms);

}  // namespace outbox_relay::app
