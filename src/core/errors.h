#pragma once
// The three kinds of failure the relay distinguishes; each maps to one reaction (docs/ARCHITECTURE.md,
// "Errors").

#include <stdexcept>

namespace outbox_relay::core {

// Bad flag, config file or environment value, or a server set up wrong (wal_level): exit 78.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Likely to pass (connection lost, broker down): abandon the batch, back off, reconnect.
struct TransientError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Cannot be recovered by retrying in this process (librdkafka fatal error, slot dropped, table layout
// mismatch): drain, exit non-zero, let the supervisor restart.
struct FatalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace outbox_relay::core
