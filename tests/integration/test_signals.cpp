// Signals sent to the running daemon from outside (kill, systemd, a terminal's hangup): each catchable
// one has a deliberate effect. SIGTERM, SIGINT and SIGHUP stop it cleanly (drain, exit 0); SIGUSR1 and
// SIGUSR2 are logged and ignored, and leave the daemon stoppable.
#include <doctest/doctest.h>
#include <signal.h>

#include <string>

#include "helpers.h"
#include "relay_checks.h"

using namespace outbox_relay::testing;

namespace {

// The relay on a fresh database, past the point where it blocks signals (its first log lines).
void wait_started(Process& relay) {
  REQUIRE_MESSAGE(
      wait_until([&] { return relay.output().find("effective config") != std::string::npos; }, 60s),
      relay.output());
}

// After `sig`: the relay must log the stop, drain and exit 0 within 30 s.
void expect_clean_stop(Process& relay, const std::string& sig) {
  const auto rc = relay.wait(30s);
  INFO(relay.output());
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(relay.output().find("received " + sig + ", stopping: draining in-flight events") !=
        std::string::npos);
  CHECK(relay.output().find("stopped (signal)") != std::string::npos);
}

}  // namespace

TEST_CASE("signals: SIGUSR1 and SIGUSR2 are ignored with a log line; SIGTERM still drains and exits 0") {
  const auto url = fresh_database("it_signals_usr");
  Process relay(relay_args(url, {"--http-addr", "off"}));
  wait_started(relay);
  relay.signal(SIGUSR2);
  CHECK_MESSAGE(wait_until([&] { return relay.output().find("received SIGUSR2") != std::string::npos; }, 10s),
                relay.output());
  relay.signal(SIGUSR1);
  CHECK_MESSAGE(wait_until([&] { return relay.output().find("received SIGUSR1") != std::string::npos; }, 10s),
                relay.output());
  CHECK(relay.running());
  relay.signal(SIGTERM);
  expect_clean_stop(relay, "SIGTERM");
}

TEST_CASE("signals: SIGHUP stops the relay cleanly, as SIGTERM does") {
  const auto url = fresh_database("it_signals_hup");
  Process relay(relay_args(url, {"--http-addr", "off"}));
  wait_started(relay);
  relay.signal(SIGHUP);
  expect_clean_stop(relay, "SIGHUP");
}
