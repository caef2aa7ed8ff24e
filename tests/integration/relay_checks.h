#pragma once
// Assertions shared by integration tests (doctest).

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "helpers.h"
#include "proxy.h"

namespace outbox_relay::testing {

// SIGTERM, then the relay must drain and exit 0 within 30 s.
inline void stop_relay(Process& relay) {
  relay.signal(SIGTERM);
  const auto rc = relay.wait(30s);
  INFO(relay.output());
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
}

// Reads `topic` until every committed event is there (or `timeout` passes), stops the relay (exit 0)
// and checks promises 1-2 on what was read; returns the verdict for further checks.
inline Verdict read_stop_verify(Process& relay, const std::string& topic,
                                const std::vector<std::pair<std::string, std::string>>& committed,
                                std::chrono::milliseconds timeout) {
  const auto records = consume_at_least(topic, committed.size(), timeout);
  stop_relay(relay);
  const auto v = verify(committed, records);
  INFO(v.summary(), relay.output());
  CHECK(v.ok());
  return v;
}

// After `proxy` cut one of the relay's connections: the relay must still run and log its recovery.
inline void require_recovery(Process& relay, const CuttingProxy& proxy) {
  INFO(relay.output());
  REQUIRE(wait_until([&] { return proxy.has_cut(); }, 30s));
  wait_until([&] { return relay.output().find("recovered after") != std::string::npos || !relay.running(); },
             30s);
  REQUIRE(relay.running());
  REQUIRE(relay.output().find("recovered after") != std::string::npos);
}

// How many times `what` occurs in `text` (log lines of a relay).
inline std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// A relay run to its exit: the exit code (none if it was still running at the deadline, then killed)
// and everything it printed.
struct RelayRun {
  std::optional<int> rc;
  std::string output;
};

inline RelayRun run_to_exit(const std::string& url, std::vector<std::string> args,
                            std::chrono::milliseconds timeout = 60s) {
  args.insert(args.end(), {"--http-addr", "off"});
  Process relay(relay_args(url, args));
  RelayRun r{relay.wait(timeout), relay.output()};
  if (!r.rc) relay.signal(SIGKILL);
  return r;
}

// Exit 78 with one error line holding every one of `parts`; nothing else at error level.
inline void require_config_exit(const RelayRun& r, const std::vector<std::string>& parts) {
  INFO(r.output);
  REQUIRE(r.rc == std::optional<int>(78));
  CHECK(occurrences(r.output, " error ") + occurrences(r.output, "outbox-relay: ") == 1);
  for (const auto& p : parts) CHECK(r.output.find(p) != std::string::npos);
}

}  // namespace outbox_relay::testing
