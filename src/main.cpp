// outbox-relay: parse options, run the chosen command, map the outcome to an exit code
// (app/exit_codes.h, the one mapping).

#include <iostream>

#include "app/commands/commands.h"
#include "app/exit_codes.h"
#include "app/logging.h"
#include "app/options.h"
#include "app/signals.h"
#include "core/errors.h"

int main(int argc, char** argv) {
  using namespace outbox_relay;
  // Before any thread exists (librdkafka starts its own): signals go to the sigwait thread only.
  app::block_signals();
  app::Options options;
  try {
    if (!app::parse_options(argc, argv, options)) return app::kExitOk;
  } catch (const core::ConfigError& e) {
    // Logging is not set up yet (its level is an option): the line goes to stderr, escaped as a log
    // line is (a flag's value may hold a newline).
    std::cerr << "outbox-relay: " << app::text_escape(e.what()) << '\n';
    return app::exit_code_for(e);
  }
  app::setup_logging(options.log_level);
  if (options.log_format == "json") app::use_json_logs();
  switch (options.command) {
    case app::Command::kMigrate:
      return app::run_migrate(options);
    case app::Command::kStatus:
      return app::run_status(options, std::cout);
    case app::Command::kCheck:
      return app::run_check(options, std::cout);
    case app::Command::kReplay:
      return app::run_replay(options, std::cout);
    case app::Command::kCleanup:
      return app::run_cleanup(options, std::cout);
    case app::Command::kRun:
    default:
      return app::run_relay(options);
  }
}
