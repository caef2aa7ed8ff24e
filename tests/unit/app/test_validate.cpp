#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "app/cli.h"
#include "app/modes.h"
#include "app/options.h"
#include "core/errors.h"

using namespace outbox_relay;

namespace {

app::RawOptions base() {
  app::RawOptions r;
  r.db_url = "postgresql://relay@h/d";
  r.kafka_brokers = "k:9092";
  return r;
}

std::string no_secret(const std::string& flag, const std::string& path) {
  FAIL("unexpected secret read: " << flag << " " << path);
  return "";
}

std::string error_of(const app::RawOptions& r) {
  try {
    app::validate(r, no_secret);
  } catch (const core::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("validate: the flag table's defaults make a poll relay") {
  const auto o = app::validate(base(), no_secret);
  CHECK(o.command == app::Command::kRun);
  CHECK(o.mode == app::Mode::kPoll);
  CHECK(o.table == "outbox");
  CHECK(o.batch_size == 2000);
  CHECK(o.batch_bytes == 2u << 20);
  CHECK(o.poll_interval == std::chrono::seconds(1));
  CHECK(o.session_timeout == std::chrono::seconds(60));
  CHECK(o.drain_timeout == std::chrono::seconds(10));
  CHECK(o.stats_interval == std::chrono::seconds(5));
  CHECK(o.retention.count() == 0);
  CHECK(o.on_sent == pg::OnSent::kDelete);
  CHECK(o.on_poison == core::PoisonPolicy::kPark);
  CHECK(o.pipeline);
  CHECK(o.shard_index == 0);
  CHECK(o.shard_count == 1);
  CHECK(o.slot == "outbox_relay");
  CHECK_FALSE(o.http_addr_explicit);
}

TEST_CASE("validate: the WAL mode's rules name the flag it refuses") {
  auto r = base();
  r.mode = "wal";
  CHECK(app::validate(r, no_secret).mode == app::Mode::kWal);
  r.shard = "0/2";
  CHECK(error_of(r).find("--shard is for poll mode") == 0);
  r = base();
  r.mode = "wal";
  r.on_poison = "block";
  CHECK(error_of(r) == app::kBlockPolicyRefused);
  r.mode = "poll";
  CHECK(error_of(r).empty());
  r.layout = "debezium";
  CHECK(error_of(r) == app::kBlockPolicyRefused);  // no failed_at column
  r = base();
  r.mode = "cdc";
  CHECK(error_of(r).find("--mode") == 0);
}

TEST_CASE("validate: rules between flags, one line naming the flag") {
  auto r = base();
  r.layout = "debezium";
  r.on_sent = "mark";
  CHECK(error_of(r).find("--on-sent=mark") == 0);
  r = base();
  r.shard = "2/2";
  CHECK(error_of(r) == "--shard: \"2/2\" needs 0 <= I < N");
  r = base();
  r.header_columns = {"trace:"};
  CHECK(error_of(r).find("--header-column") == 0);
  r = base();
  r.kafka_brokers.clear();
  CHECK(error_of(r).find("--kafka-brokers is required") == 0);
  r.kafka_properties = {"bootstrap.servers=k:1"};
  CHECK(error_of(r).empty());
  r = base();
  r.poll_interval = "5ms";
  CHECK(error_of(r).find("--poll-interval: \"5ms\" is shorter than") == 0);
}

TEST_CASE("validate: subcommands that do not publish skip the relay's rules") {
  auto r = base();
  r.kafka_brokers.clear();
  r.command = app::Command::kStatus;
  CHECK(error_of(r).empty());
  r.command = app::Command::kCheck;
  CHECK(error_of(r).find("--kafka-brokers") == 0);
  r.command = app::Command::kCleanup;
  CHECK(error_of(r).find("cleanup needs --retention") == 0);
  r.retention = "7d";
  CHECK(error_of(r).empty());
  r.command = app::Command::kReplay;
  CHECK(error_of(r).find("replay: give --from/--to") == 0);
  r.replay_ids = {"1"};
  CHECK(error_of(r).empty());
}

TEST_CASE("validate: password files are read through the injected reader") {
  std::vector<std::string> asked;
  auto reader = [&asked](const std::string& flag, const std::string& path) {
    asked.push_back(flag + " " + path);
    return std::string("hunter2");
  };
  auto r = base();
  r.db_password_file = "/run/secrets/db";
  r.kafka_sasl_password_file = "/run/secrets/kafka";
  const auto o = app::validate(r, reader);
  CHECK(asked == std::vector<std::string>{"--kafka-sasl-password-file /run/secrets/kafka",
                                          "--db-password-file /run/secrets/db"});
  CHECK(o.db_url.find("hunter2") != std::string::npos);
  CHECK(o.kafka_overrides.back() == kafka::Property{"sasl.password", "hunter2"});
  r.kafka_properties = {"sasl.password=x"};
  CHECK_THROWS_WITH_AS(app::validate(r, reader), doctest::Contains("--kafka-sasl-password-file"),
                       core::ConfigError);
}

TEST_CASE("validate: --table must be an SQL identifier, optionally schema-qualified and double-quoted") {
  auto r = base();
  for (const char* bad : {"", "x; DROP TABLE y", "outbox--", "a.b.c", ".outbox", "public.", "1outbox",
                          "\"unterminated", "\"\"", "out box", "a.\"b\"c", "\"a\nb\""}) {
    CAPTURE(bad);
    r.table = bad;
    CHECK(error_of(r).rfind("--table: ", 0) == 0);
    // Every command names its table: status, replay and cleanup refuse it as the daemon does.
    r.command = app::Command::kStatus;
    CHECK(error_of(r).rfind("--table: ", 0) == 0);
    r.command = app::Command::kRun;
  }
  r.table = std::string(64, 'a');
  CHECK(error_of(r).find("longer than 63 bytes") != std::string::npos);
  r.table = "x; DROP TABLE y";
  CHECK(error_of(r) ==
        "--table: \"x; DROP TABLE y\" is not a table name (NAME or SCHEMA.NAME, each an SQL "
        "identifier, double-quoted where it needs to be)");

  // The valid forms, as the rest of the relay takes them: each part by its name (unquoted parts
  // fold to lower case, as PostgreSQL folds them).
  const std::pair<const char*, const char*> good[] = {
      {"outbox", "outbox"},
      {"public.outbox", "public.outbox"},
      {"Outbox", "outbox"},
      {"App_1.outbox$2", "app_1.outbox$2"},
      {"\"Outbox\"", "Outbox"},
      {"\"my schema\".\"Out\"\"box\"", "my schema.Out\"box"},
      {"public.\"a.b\"", "public.a.b"},
      {"_x", "_x"},
  };
  for (const auto& [text, table] : good) {
    CAPTURE(text);
    r.table = text;
    CHECK(error_of(r).empty());
    CHECK(app::validate(r, no_secret).table == table);
  }
  // The relay splits a table at its first dot: a schema name holding one cannot be said.
  r.table = "\"a.b\".outbox";
  CHECK(error_of(r).find("--table: ") == 0);
}

TEST_CASE("validate: durations the server takes in int milliseconds are bounded") {
  auto r = base();
  r.session_timeout = "100000d";
  CHECK(error_of(r) == "--session-timeout: \"100000d\" is longer than 1d, the longest it can be");
  r.session_timeout = "24h";
  CHECK(app::validate(r, no_secret).session_timeout == std::chrono::hours(24));
  r.session_timeout = "25h";
  CHECK(error_of(r).find("--session-timeout") == 0);
  // Every interval the relay waits on or adds to a clock reading: no overflow.
  const std::pair<std::string app::RawOptions::*, const char*> intervals[] = {
      {&app::RawOptions::poll_interval, "--poll-interval: "},
      {&app::RawOptions::drain_timeout, "--drain-timeout: "},
      {&app::RawOptions::heartbeat_interval, "--heartbeat-interval: "},
      {&app::RawOptions::status_interval, "--status-interval: "},
      {&app::RawOptions::stats_interval, "--stats-interval: "}};
  for (const auto& [member, flag] : intervals) {
    CAPTURE(flag);
    r = base();
    r.*member = "9999999999d";
    CHECK(error_of(r).find(flag) == 0);
  }
}

TEST_CASE("validate: flags that contradict each other are errors, not silently ignored") {
  auto r = base();
  r.mode = "wal";
  r.on_sent = "mark";
  CHECK(error_of(r).find("--on-sent=mark: WAL mode never marks rows") == 0);
  r.on_sent = "delete";
  CHECK(error_of(r).empty());

  r = base();
  r.dlq_topic = "dead";
  CHECK(error_of(r) ==
        "--dlq-topic is only used with --on-poison=dlq: add --on-poison=dlq or drop --dlq-topic");
  r.on_poison = "dlq";
  CHECK(error_of(r).empty());

  r = base();
  r.kafka_properties = {"bootstrap.servers=other:9092"};
  CHECK(error_of(r).find("-X bootstrap.servers conflicts with --kafka-brokers") == 0);
  r.command = app::Command::kCheck;  // `check` judges the same settings the daemon would run with
  CHECK(error_of(r).find("-X bootstrap.servers conflicts with --kafka-brokers") == 0);
}
