// judge_failover: whether the WAL slot survives a promotion, and the setting each warning names.
#include <doctest/doctest.h>

#include <algorithm>

#include "pg/wal/failover.h"

using namespace outbox_relay;

namespace {

bool mentions(const std::vector<std::string>& lines, const std::string& part) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(part) != std::string::npos; });
}

pg::FailoverFacts ready() {
  pg::FailoverFacts f;
  f.server_version = 180001;
  f.slot_exists = true;
  f.slot_failover = true;
  f.standby_slots = {"node2"};
  pg::StandbySlotFacts s;
  s.label = "127.0.0.1:5433";
  s.reached = s.in_recovery = s.sync_replication_slots = s.hot_standby_feedback = s.primary_slot_name_set =
      true;
  s.slot_exists = s.slot_synced = true;
  f.standbys.push_back(s);
  return f;
}

}  // namespace

TEST_CASE("a synchronized, protected failover slot has no warning") {
  const auto r = pg::judge_failover(ready(), "relay", true);
  CHECK(r.supported);
  CHECK(r.synced == 1);
  CHECK(r.protected_by_standby_slots == 1);
  CHECK(r.warnings.empty());
  CHECK(mentions(r.fine, "synchronized on standby 127.0.0.1:5433"));
}

TEST_CASE("before PostgreSQL 17 a failover needs the operator") {
  pg::FailoverFacts f;
  f.server_version = 150020;
  const auto r = pg::judge_failover(f, "relay", true);
  CHECK_FALSE(r.supported);
  CHECK(r.synced == -1);
  CHECK(r.protected_by_standby_slots == -1);
  CHECK(mentions(r.warnings, "operator action"));
  CHECK(pg::manual_failover_procedure("relay", "pub").find("outbox_relay_slots") != std::string::npos);
}

TEST_CASE("each missing setting is named") {
  auto f = ready();
  f.standby_slots.clear();
  auto& s = f.standbys[0];
  s.slot_exists = s.slot_synced = false;
  s.sync_replication_slots = false;
  s.hot_standby_feedback = false;
  const auto r = pg::judge_failover(f, "relay", true);
  CHECK(r.synced == 0);
  CHECK(r.protected_by_standby_slots == 0);
  CHECK(mentions(r.warnings, "synchronized_standby_slots is not set"));
  CHECK(mentions(r.warnings, "sync_replication_slots = on"));
  CHECK(mentions(r.warnings, "hot_standby_feedback = on"));
}

TEST_CASE("a standby slot that does not exist or is not streamed is reported") {
  auto f = ready();
  f.standby_slots_missing = {"node2"};
  auto r = pg::judge_failover(f, "relay", true);
  CHECK(r.protected_by_standby_slots == 0);
  CHECK(mentions(r.warnings, "not a physical slot"));
  f.standby_slots_missing.clear();
  f.standby_slots_inactive = {"node2"};
  r = pg::judge_failover(f, "relay", true);
  CHECK(r.protected_by_standby_slots == 1);
  CHECK(mentions(r.warnings, "no standby streams"));
}

TEST_CASE("a copy that is temporary or invalidated does not count as synchronized") {
  auto f = ready();
  f.standbys[0].slot_temporary = true;
  auto r = pg::judge_failover(f, "relay", true);
  CHECK(r.synced == 0);
  CHECK(mentions(r.warnings, "not persisted yet"));
  f = ready();
  f.standbys[0].invalidation_reason = "rows_removed";
  r = pg::judge_failover(f, "relay", true);
  CHECK(r.synced == 0);
  CHECK(mentions(r.warnings, "rows_removed"));
}

TEST_CASE("no standby in the URL, a non-failover slot and --failover-slot=off are warnings") {
  auto f = ready();
  f.standbys.clear();
  f.slot_failover = false;
  auto r = pg::judge_failover(f, "relay", true);
  CHECK(r.synced == -1);
  CHECK(mentions(r.warnings, "no standby in --db-url"));
  CHECK(mentions(r.warnings, "is not a failover slot"));
  r = pg::judge_failover(ready(), "relay", false);
  CHECK(mentions(r.warnings, "--failover-slot=off"));
}
