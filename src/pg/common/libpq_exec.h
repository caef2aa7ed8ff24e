#pragma once
// Running statements on a raw libpq connection (the WAL source's, whose replication connection libpqxx
// cannot drive) with a deadline, and reading their results. Only files under src/pg/ include this.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pg/common/libpq_handles.h"
#include "pg/common/text_query.h"

namespace outbox_relay::pg {

// A libpq message as one log line: inner newlines and tabs folded into single spaces.
std::string one_line(const char* text);
std::string conn_error(PGconn* c);
// The primary message of a failed result (the full text when it has none).
std::string result_error(const PGresult* r);
std::string sqlstate(const PGresult* r);

// Connects with `params` (a key=value string is built from them). Throws core::TransientError
// "<what>: <cause>" when the server cannot be reached.
PgConn connect_libpq(const std::map<std::string, std::string>& params, const std::string& what);

// Waits until the socket is readable (or writable); false on timeout. EINTR counts as a wake-up.
bool wait_socket(PGconn* c, bool for_write, std::chrono::steady_clock::time_point until);

// Runs one command asynchronously within `timeout` and returns its result (the first error, else the
// last result; a COPY result as soon as it arrives). Throws TransientError when the connection fails or
// the command times out (the caller then drops the connection).
PgResult exec(PGconn* c, const std::string& sql, const std::vector<std::optional<std::string>>& params,
              std::chrono::milliseconds timeout, const std::string& what);

// The command succeeded (with or without rows).
bool ok(const PgResult& r);

// One value; nullopt when NULL or when the result has no such row or column.
std::optional<std::string> field(const PgResult& r, int row, int col);

// A failed query on a normal connection: permissions are the operator's to fix (ConfigError); the rest
// may pass (TransientError). "<what>: <cause>".
[[noreturn]] void throw_query_error(const PgResult& r, const std::string& what);

// A TextQuery over this connection, each statement bounded by `timeout`;
// failures throw as throw_query_error with `what`.
TextQuery libpq_query(PGconn* c, std::chrono::milliseconds timeout, const std::string& what);

}  // namespace outbox_relay::pg
