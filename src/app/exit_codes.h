#pragma once
// The one mapping from how a command ended to the process exit code, used by main and every command:
//   returned normally            -> the command's own code (0, or 1 when `check` found a problem)
//   core::ConfigError            -> 78 (EX_CONFIG: a flag, file or server setup to fix)
//   core::FatalError, any other  -> 1 (systemd restarts the daemon)

#include <exception>
#include <functional>
#include <string_view>

namespace outbox_relay::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitConfig = 78;  // EX_CONFIG

int exit_code_for(const std::exception& e);

// Runs `body` and returns its exit code; an exception escaping it is logged as one error line and
// mapped by exit_code_for. With a `label` (a one-shot command: "status", "migrate failed") the line is
// "<label>: <what>"; without one (the daemon) it is "<what>" for a ConfigError, "fatal: <what>" for a
// FatalError and "fatal: unexpected error: <what>" for a failure no layer classified.
int run_guarded(std::string_view label, const std::function<int()>& body);

}  // namespace outbox_relay::app
