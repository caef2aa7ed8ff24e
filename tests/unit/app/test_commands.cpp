#include <doctest/doctest.h>

#include <algorithm>

#include "parse_options.h"

#include "app/commands/commands.h"
#include "app/format.h"
#include "app/options.h"
#include "core/errors.h"

using namespace outbox_relay;

namespace {

app::Options parse(std::vector<std::string> args) { return testing::parse_args(std::move(args)); }

// A server where everything the default poll configuration needs is in place.
pg::ServerFacts good_facts() {
  pg::ServerFacts f;
  f.server_version = "15.20";
  f.user = "relay";
  f.wal_level = "logical";
  f.replication = true;
  f.table_exists = true;
  f.columns = {"id",    "aggregate_type", "aggregate_id", "event_type", "payload", "headers",
               "topic", "created_at",     "sent_at",      "failed_at",  "error",   "attempts"};
  f.can_select = f.can_update = f.can_delete = true;
  f.parked_table_exists = f.can_insert_parked = true;
  f.slots_table_exists = f.can_write_slots = true;
  f.slot_exists = true;
  f.slot_plugin = "pgoutput";
  f.publication_exists = f.publication_has_table = true;
  return f;
}

app::Options options(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--db-url", "postgresql://relay@h/d", "--kafka-brokers", "k:1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return parse(args);
}

int failures(const std::vector<app::CheckLine>& lines) {
  int n = 0;
  for (const auto& l : lines) n += l.level == app::CheckLine::Level::kFail ? 1 : 0;
  return n;
}

std::string failure_text(const std::vector<app::CheckLine>& lines) {
  std::string s;
  for (const auto& l : lines) {
    if (l.level == app::CheckLine::Level::kFail) s += l.text + "\n";
  }
  return s;
}

}  // namespace

TEST_CASE("check: a complete setup passes") {
  CHECK(failures(app::evaluate_server(options(), good_facts())) == 0);
  CHECK(failures(app::evaluate_server(options({"--mode", "wal"}), good_facts())) == 0);
}

TEST_CASE("check: missing table and missing columns") {
  auto f = good_facts();
  f.table_exists = false;
  auto lines = app::evaluate_server(options(), f);
  CHECK(failure_text(lines).find("table \"outbox\" does not exist") != std::string::npos);
  f = good_facts();
  f.columns.erase("aggregate_id");
  f.columns.erase("payload");
  lines = app::evaluate_server(options(), f);
  CHECK(failure_text(lines).find(R"(lacks column(s) "aggregate_id", "payload")") != std::string::npos);
  f = good_facts();
  f.columns.erase("sent_at");
  CHECK(failure_text(app::evaluate_server(options({"--on-sent", "mark"}), f)).find("sent_at") !=
        std::string::npos);
}

TEST_CASE("check: grants the mode needs") {
  auto f = good_facts();
  f.can_delete = false;
  // delete mode needs DELETE; mark mode with failed_at columns does not
  CHECK(failure_text(app::evaluate_server(options(), f)).find("lacks DELETE") != std::string::npos);
  CHECK(failures(app::evaluate_server(options({"--on-sent", "mark"}), f)) == 0);
  // ... unless --retention deletes old rows
  CHECK(failure_text(app::evaluate_server(options({"--on-sent", "mark", "--retention", "7d"}), f))
            .find("for --retention") != std::string::npos);
  f = good_facts();
  f.can_update = false;
  const auto text = failure_text(app::evaluate_server(options(), f));
  CHECK(text.find("role \"relay\" lacks UPDATE on table \"outbox\"") != std::string::npos);
  CHECK(text.find("GRANT UPDATE ON outbox TO relay") != std::string::npos);
  // WAL mode only reads
  CHECK(failures(app::evaluate_server(options({"--mode", "wal"}), f)) == 0);
  f = good_facts();
  f.can_select = false;
  CHECK(failure_text(app::evaluate_server(options(), f)).find("lacks SELECT") != std::string::npos);
}

TEST_CASE("check: WAL mode needs INSERT on outbox_relay_parked and to write outbox_relay_slots") {
  auto f = good_facts();
  f.can_insert_parked = false;
  CHECK(failure_text(app::evaluate_server(options({"--mode", "wal"}), f))
            .find("GRANT INSERT ON outbox_relay_parked TO \"relay\"") != std::string::npos);
  f = good_facts();
  f.can_write_slots = false;
  CHECK(failure_text(app::evaluate_server(options({"--mode", "wal"}), f))
            .find("GRANT SELECT, INSERT, UPDATE ON outbox_relay_slots") != std::string::npos);
  f = good_facts();
  f.slots_table_exists = false;  // the relay may create it: a warning
  const auto lines = app::evaluate_server(options({"--mode", "wal"}), f);
  CHECK(failures(lines) == 0);
  CHECK(std::any_of(lines.begin(), lines.end(), [](const app::CheckLine& l) {
    return l.text.find("run `outbox-relay migrate`") != std::string::npos;
  }));
}

TEST_CASE("check: a table without failed_at parks into outbox_relay_parked") {
  auto f = good_facts();
  f.columns.erase("failed_at");
  f.can_insert_parked = false;
  CHECK(failure_text(app::evaluate_server(options(), f)).find("INSERT on outbox_relay_parked") !=
        std::string::npos);
  f.parked_table_exists = false;
  CHECK(failure_text(app::evaluate_server(options(), f)).find("outbox_relay_parked does not exist") !=
        std::string::npos);
}

TEST_CASE("check: wal_level, REPLICATION, slot and publication for --mode=wal") {
  auto f = good_facts();
  f.wal_level = "replica";
  auto text = failure_text(app::evaluate_server(options({"--mode", "wal"}), f));
  CHECK(text.find("wal_level is \"replica\"; --mode=wal needs wal_level = logical") != std::string::npos);
  // poll mode does not care
  CHECK(failures(app::evaluate_server(options(), f)) == 0);
  f = good_facts();
  f.replication = false;
  CHECK(failure_text(app::evaluate_server(options({"--mode", "wal"}), f)).find("REPLICATION") !=
        std::string::npos);
  f.superuser = true;
  CHECK(failures(app::evaluate_server(options({"--mode", "wal"}), f)) == 0);
  f = good_facts();
  f.slot_plugin = "test_decoding";
  CHECK(failure_text(app::evaluate_server(options({"--mode", "wal"}), f)).find("not pgoutput") !=
        std::string::npos);
  f = good_facts();
  f.slot_exists = false;
  f.publication_exists = f.publication_has_table = false;
  CHECK(failures(app::evaluate_server(options({"--mode", "wal"}), f)) == 0);  // created on start: warnings
  text = failure_text(app::evaluate_server(options({"--mode", "wal", "--require-slot"}), f));
  CHECK(text.find("slot \"outbox_relay\" does not exist") != std::string::npos);
  CHECK(text.find("publication \"outbox_relay_pub\" does not exist") != std::string::npos);
  f = good_facts();
  f.publication_has_table = false;
  CHECK(failure_text(app::evaluate_server(options({"--mode", "wal"}), f)).find("does not include table") !=
        std::string::npos);
}

TEST_CASE("admin subcommands parse; replay needs a range or a list") {
  auto o = parse({"status", "--db-url", "postgresql://u@h/d"});
  CHECK(o.command == app::Command::kStatus);
  o = parse({"replay", "--from", "10", "--to", "20", "--db-url", "postgresql://u@h/d"});
  CHECK(o.command == app::Command::kReplay);
  CHECK(o.replay_from == "10");
  CHECK(o.replay_to == "20");
  CHECK_FALSE(o.replay_failed);
  o = parse({"replay", "--ids", "3,5,8", "--failed", "--db-url", "postgresql://u@h/d"});
  CHECK(o.replay_ids == std::vector<std::string>{"3", "5", "8"});
  CHECK(o.replay_failed);
  CHECK_THROWS_WITH_AS(parse({"replay", "--db-url", "postgresql://u@h/d"}), doctest::Contains("--from/--to"),
                       core::ConfigError);
  CHECK_THROWS_AS(parse({"replay", "--ids", "1", "--from", "1", "--db-url", "postgresql://u@h/d"}),
                  core::ConfigError);
  o = parse({"cleanup", "--retention", "7d", "--db-url", "postgresql://u@h/d"});
  CHECK(o.command == app::Command::kCleanup);
  CHECK(o.retention == std::chrono::hours(24 * 7));
  CHECK_THROWS_WITH_AS(parse({"cleanup", "--db-url", "postgresql://u@h/d"}), doctest::Contains("--retention"),
                       core::ConfigError);
  CHECK_THROWS_WITH_AS(parse({"cleanup", "--retention", "7", "--db-url", "postgresql://u@h/d"}),
                       doctest::Contains("needs a unit"), core::ConfigError);
  o = parse({"check", "--db-url", "postgresql://u@h/d", "--kafka-brokers", "k:1"});
  CHECK(o.command == app::Command::kCheck);
  CHECK_THROWS_WITH_AS(parse({"check", "--db-url", "postgresql://u@h/d"}),
                       doctest::Contains("--kafka-brokers"), core::ConfigError);
}

TEST_CASE("ages for humans") {
  CHECK(app::format_age(-1) == "-");
  CHECK(app::format_age(3200) == "3.2s");
  CHECK(app::format_age(250'000) == "4m10s");
  CHECK(app::format_age(7'500'000) == "2h05m");
  CHECK(app::format_age(3 * 86'400'000 + 4 * 3'600'000) == "3d04h");
}
