#pragma once
// Wires options into a running relay: source, producer, dispatcher, signals. Returns the exit code.

#include "app/options.h"

namespace outbox_relay::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitConfig = 78;  // EX_CONFIG

void setup_logging(const std::string& level);

// Runs the daemon until SIGTERM/SIGINT (or idle with --exit-when-idle). Thread: main.
int run_relay(const Options& options);

// `outbox-relay migrate`.
int run_migrate(const Options& options);

}  // namespace outbox_relay::app
