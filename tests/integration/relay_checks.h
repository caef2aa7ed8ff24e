#pragma once
// Assertions shared by integration tests (doctest).

#include <doctest/doctest.h>
#include <signal.h>

#include "helpers.h"

namespace outbox_relay::testing {

// SIGTERM, then the relay must drain and exit 0 within 30 s.
inline void stop_relay(Process& relay) {
  relay.signal(SIGTERM);
  const auto rc = relay.wait(30s);
  INFO(relay.output());
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
}

}  // namespace outbox_relay::testing
