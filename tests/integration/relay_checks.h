#pragma once
// Assertions shared by integration tests (doctest).

#include <doctest/doctest.h>
#include <signal.h>

#include <string>

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

// How many times `what` occurs in `text` (log lines of a relay).
inline std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace outbox_relay::testing
