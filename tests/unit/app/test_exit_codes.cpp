#include <doctest/doctest.h>

#include <stdexcept>

#include "app/exit_codes.h"
#include "core/errors.h"

using namespace outbox_relay;

TEST_CASE("exit codes: one mapping for every command") {
  CHECK(app::exit_code_for(core::ConfigError("x")) == 78);
  CHECK(app::exit_code_for(core::FatalError("x")) == 1);
  CHECK(app::exit_code_for(core::TransientError("x")) == 1);
  CHECK(app::exit_code_for(std::runtime_error("x")) == 1);
  CHECK(app::run_guarded("status", [] { return app::kExitOk; }) == 0);
  CHECK(app::run_guarded("check", [] { return app::kExitFailure; }) == 1);
  CHECK(app::run_guarded("status", []() -> int { throw core::ConfigError("table \"x\" does not exist"); }) ==
        78);
  CHECK(app::run_guarded("", []() -> int { throw core::ConfigError("bad"); }) == 78);
  CHECK(app::run_guarded("", []() -> int { throw core::FatalError("slot dropped"); }) == 1);
  CHECK(app::run_guarded("", []() -> int { throw std::logic_error("bug"); }) == 1);
}
