#include <doctest/doctest.h>

#include <map>
#include <string>

#include "app/modes.h"

using namespace outbox_relay;

TEST_CASE("modes: each mode is found by its --mode name") {
  CHECK(app::mode_names() == std::vector<std::string>{"poll", "wal"});
  for (const auto& name : app::mode_names()) {
    const auto mode = app::mode_named(name);
    REQUIRE(mode.has_value());
    CHECK(app::mode_for(*mode).name() == name);
  }
  CHECK_FALSE(app::mode_named("cdc").has_value());
  CHECK(&app::mode_for(app::Mode::kPoll) == &app::poll_mode());
  CHECK(&app::mode_for(app::Mode::kWal) == &app::wal_mode());
}

TEST_CASE("modes: retention, replay and the slot in status") {
  const auto& poll = app::poll_mode();
  const auto& wal = app::wal_mode();
  CHECK(poll.retention_by() == pg::RetentionBy::kSentAt);
  CHECK(wal.retention_by() == pg::RetentionBy::kCreatedAt);  // rows are never marked
  CHECK_FALSE(poll.replay_refusal().has_value());
  REQUIRE(wal.replay_refusal().has_value());
  CHECK(wal.replay_refusal()->find("--mode=poll") != std::string::npos);
  CHECK_FALSE(poll.reports_missing_slot());
  CHECK(wal.reports_missing_slot());
}

TEST_CASE("modes: a failed statistics query forgets only the mode's own gauges") {
  core::Metrics m;
  m.backlog_rows.store(5);
  m.oldest_unsent_age_ms.store(100);
  m.failed_rows.store(1);
  m.slot_lag_bytes.store(4096);
  m.confirmed_lsn.store(77);
  app::wal_mode().forget_stats(m);
  CHECK(m.slot_lag_bytes.load() == -1);
  CHECK(m.confirmed_lsn.load() == 77);  // the last known position stays
  CHECK(m.backlog_rows.load() == 5);
  app::poll_mode().forget_stats(m);
  CHECK(m.backlog_rows.load() == -1);
  CHECK(m.oldest_unsent_age_ms.load() == -1);
  CHECK(m.failed_rows.load() == -1);
}

TEST_CASE("modes: the backlog lines of status") {
  std::map<std::string, std::string> rows;
  auto row = [&rows](const std::string& name, const std::string& value) { rows[name] = value; };
  pg::TableStats s;
  s.backlog_rows = 3;
  s.oldest_unsent_age_ms = 250'000;
  app::poll_mode().status_backlog(s, row);
  CHECK(rows["backlog rows"] == "3");
  CHECK(rows["oldest unsent age"] == "4m10s");
  rows.clear();
  s.backlog_rows = 0;
  app::poll_mode().status_backlog(s, row);
  CHECK(rows["oldest unsent age"] == "-");
  rows.clear();
  app::wal_mode().status_backlog(s, row);
  CHECK(rows.size() == 1);
  CHECK(rows["backlog"].find("slot's lag") != std::string::npos);
}
