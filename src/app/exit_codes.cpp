#include "app/exit_codes.h"

#include <spdlog/spdlog.h>

#include "core/errors.h"

namespace outbox_relay::app {

int exit_code_for(const std::exception& e) {
  return dynamic_cast<const core::ConfigError*>(&e) != nullptr ? kExitConfig : kExitFailure;
}

int run_guarded(std::string_view label, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    if (!label.empty()) {
      spdlog::error("{}: {}", label, e.what());
    } else if (dynamic_cast<const core::ConfigError*>(&e) != nullptr) {
      spdlog::error("{}", e.what());
    } else if (dynamic_cast<const core::FatalError*>(&e) != nullptr) {
      spdlog::error("fatal: {}", e.what());
    } else {
      // Rather than std::terminate's bare abort, end with the message.
      spdlog::error("fatal: unexpected error: {}", e.what());
    }
    return exit_code_for(e);
  }
}

}  // namespace outbox_relay::app
