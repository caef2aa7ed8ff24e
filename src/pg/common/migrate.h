#pragma once
// `outbox-relay migrate`: applies the embedded sql/ migrations that the database has not seen yet,
// each in its own transaction, under an advisory lock so concurrent runs wait instead of racing.

#include <string>
#include <vector>

namespace outbox_relay::pg {

// Returns the names of the migrations applied now (empty when the schema was current). Throws
// core::TransientError when the server cannot be reached and std::runtime_error when a migration fails.
std::vector<std::string> migrate(const std::string& conninfo);

}  // namespace outbox_relay::pg
