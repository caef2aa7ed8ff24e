#pragma once
// The commands of the outbox-relay binary, one per file in app/commands/. Each returns the process
// exit code; an exception escaping a command's work is mapped by run_guarded (app/exit_codes.h).
// The operator's one-shot commands print to `out` and log errors to stderr:
//   status   backlog, oldest unsent age, failed/sent/parked rows, and the slot when one exists
//   check    config, PostgreSQL, table layout, grants, the mode's server needs, Kafka, static topics
//   replay   makes chosen sent (or --failed) rows pending again; the running daemon republishes them
//   cleanup  deletes sent rows older than --retention in batches of 1000 (SKIP LOCKED)

#include <chrono>
#include <iosfwd>
#include <vector>

#include "app/check_line.h"
#include "app/options.h"
#include "pg/common/maintenance.h"

namespace outbox_relay::app {

// The daemon: runs until SIGTERM/SIGINT (or idle with --exit-when-idle). Thread: main, with signals
// blocked (block_signals) before it starts any thread.
int run_relay(const Options& options);

// `outbox-relay migrate`: creates or upgrades the schema (idempotent).
int run_migrate(const Options& options);

int run_status(const Options& options, std::ostream& out);
int run_check(const Options& options, std::ostream& out);
int run_replay(const Options& options, std::ostream& out);
int run_cleanup(const Options& options, std::ostream& out);

// Judges what server_facts() found against the options: table and columns for the layout, then what
// the mode needs (grants, wal_level/REPLICATION/slot/publication). Pure (the unit-test seam of `check`).
std::vector<CheckLine> evaluate_server(const Options& options, const pg::ServerFacts& facts);

// --exactly-once, for `check` and `status`: the transactional id, the checkpoint topic and the last
// checkpoint committed under that id (read with read_committed; fences nothing). Throws what
// kafka::read_checkpoint throws.
std::string describe_exactly_once(const Options& options, std::chrono::milliseconds timeout);

// Statement timeout of the one-shot commands' connection.
inline constexpr std::chrono::milliseconds kCommandStatementTimeout{30000};

}  // namespace outbox_relay::app
