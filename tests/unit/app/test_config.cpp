#include <doctest/doctest.h>

#include "parse_options.h"

#include "app/options.h"
#include "core/duration.h"
#include "core/errors.h"
#include "kafka/config.h"
#include "pg/common/conninfo.h"

using namespace outbox_relay;

namespace {

app::Options parse(std::vector<std::string> args) { return testing::parse_args(std::move(args)); }

std::string config_error(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const core::ConfigError& e) {
    return e.what();
  }
  return "";
}

const std::vector<std::string> kBase = {"--db-url", "postgresql://u:pw@localhost/db", "--kafka-brokers",
                                        "k:9092"};

std::vector<std::string> with(std::vector<std::string> extra) {
  auto v = kBase;
  v.insert(v.end(), extra.begin(), extra.end());
  return v;
}

}  // namespace

TEST_CASE("durations need a unit") {
  CHECK(core::parse_duration("250ms").count() == 250);
  CHECK(core::parse_duration("10s").count() == 10000);
  CHECK(core::parse_duration("5m").count() == 300000);
  CHECK(core::parse_duration("1h").count() == 3600000);
  CHECK_THROWS_WITH_AS(core::parse_duration("30"), doctest::Contains("needs a unit"), std::invalid_argument);
  CHECK_THROWS_AS(core::parse_duration("x"), std::invalid_argument);
  CHECK_THROWS_AS(core::parse_duration("-1s"), std::invalid_argument);
  CHECK(core::parse_duration("7d").count() == 7 * 86400000);
  CHECK_THROWS_WITH_AS(core::parse_duration("3w"), doctest::Contains("unknown unit"), std::invalid_argument);
  CHECK(core::format_duration(std::chrono::milliseconds(90000)) == "90s");
}

TEST_CASE("sizes need a unit") {
  CHECK(core::parse_size("2MiB") == 2u << 20);
  CHECK(core::parse_size("512KiB") == 512u * 1024);
  CHECK(core::parse_size("64kB") == 64000);
  CHECK(core::parse_size("0B") == 0);
  CHECK_THROWS_WITH_AS(core::parse_size("2048"), doctest::Contains("needs a unit"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(core::parse_size("2mb"), doctest::Contains("unknown unit"), std::invalid_argument);
  CHECK_THROWS_AS(core::parse_size("-1MiB"), std::invalid_argument);
  CHECK_THROWS_AS(core::parse_size("99999999999999999999GiB"), std::invalid_argument);
  const auto o = parse(with({"--batch-bytes", "1MiB", "--pipeline", "off"}));
  CHECK(o.batch_bytes == 1u << 20);
  CHECK_FALSE(o.pipeline);
  CHECK(o.dispatcher_config().batch_bytes == 1u << 20);
  CHECK_FALSE(o.dispatcher_config().pipeline);
  CHECK(config_error(with({"--batch-bytes", "4096"})).find("--batch-bytes") != std::string::npos);
  CHECK(config_error(with({"--pipeline", "maybe"})).find("--pipeline") != std::string::npos);
}

TEST_CASE("memory budget: its shares bound the batch, the claim, the read-ahead and the producer's queue") {
  const auto o = parse(with({}));
  CHECK(o.memory_budget == 8u << 20);
  CHECK(o.batch_bytes == 2u << 20);
  CHECK(o.dispatcher_config().claim_bytes == 2u << 20);
  auto queue_kbytes = [](const outbox_relay::app::Options& opts) {
    std::string v;
    for (const auto& [k, val] : opts.producer_properties())
      if (k == "queue.buffering.max.kbytes") v = val;  // the last one set wins
    return v;
  };
  CHECK(queue_kbytes(o) == "2048");
  // A batch larger than its share is cut to it; 0B means the share.
  const auto big = parse(with({"--memory-budget", "64MiB", "--batch-bytes", "32MiB"}));
  CHECK(big.batch_bytes == 16u << 20);
  CHECK(parse(with({"--memory-budget", "4MiB", "--batch-bytes", "0B"})).batch_bytes == 1u << 20);
  CHECK(queue_kbytes(big) == "16384");
  CHECK(queue_kbytes(parse(with({"-X", "queue.buffering.max.kbytes=100"}))) == "100");
  // Exactly-once: 32 MiB unless given.
  CHECK(parse(with({"--exactly-once"})).memory_budget == 32u << 20);
  CHECK(parse(with({"--exactly-once"})).dispatcher_config().claim_bytes == 8u << 20);
  CHECK(parse(with({"--exactly-once", "--memory-budget", "8MiB"})).memory_budget == 8u << 20);
  for (const auto* bad : {"1MiB", "5GiB", "16", "lots"}) {
    CAPTURE(bad);
    CHECK(config_error(with({"--memory-budget", bad})).find("--memory-budget") != std::string::npos);
  }
}

TEST_CASE("valid flags parse into options") {
  const auto o = parse(with({"--mode", "wal", "--batch-size", "50", "--poll-interval", "250ms", "-X",
                             "linger.ms=10", "--exit-when-idle"}));
  CHECK(o.mode == app::Mode::kWal);
  CHECK(o.batch_size == 50);
  CHECK(o.poll_interval.count() == 250);
  CHECK(parse(with({"--on-sent", "mark"})).on_sent == pg::OnSent::kMark);
  CHECK(o.exit_when_idle);
  const auto props = o.producer_properties();
  CHECK(props.back() == kafka::Property{"enable.idempotence", "true"});
  CHECK(props[props.size() - 2] == kafka::Property{"acks", "all"});
  CHECK(std::find(props.begin(), props.end(), kafka::Property{"linger.ms", "10"}) != props.end());
}

TEST_CASE("bad flags are config errors naming the flag") {
  CHECK(config_error(with({"--batch-size", "0"})).find("--batch-size") != std::string::npos);
  CHECK(config_error(with({"--mode", "cdc"})).find("--mode") != std::string::npos);
  CHECK(config_error(with({"--poll-interval", "5"})).find("--poll-interval") != std::string::npos);
  CHECK(config_error(with({"--no-such-flag"})).find("--no-such-flag") != std::string::npos);
  CHECK(config_error({"--kafka-brokers", "k:1"}).find("--db-url") != std::string::npos);
  CHECK(config_error({"--db-url", "postgresql://x/y"}).find("--kafka-brokers") != std::string::npos);
  CHECK(config_error(with({"--on-poison", "dlq"})).find("--dlq-topic") != std::string::npos);
  CHECK(config_error(with({"--layout", "debezium", "--on-sent", "mark"})).find("--on-sent") !=
        std::string::npos);
}

TEST_CASE("-X cannot weaken acks or idempotence") {
  CHECK(config_error(with({"-X", "acks=1"})).find("acks") != std::string::npos);
  CHECK(config_error(with({"-X", "enable.idempotence=false"})).find("idempotence") != std::string::npos);
  CHECK(config_error(with({"-X", "max.in.flight.requests.per.connection=10"})).find("max.in.flight") !=
        std::string::npos);
  CHECK(config_error(with({"-X", "linger.ms"})).find("key=value") != std::string::npos);
  CHECK(config_error(with({"-X", "acks=all"})).empty());
  CHECK(config_error(with({"-X", "acks=-1"})).empty());
}

TEST_CASE("a bad connection string is an error that does not echo the password") {
  const auto e = config_error({"--db-url", "host=x password=hunter2 bogus=1", "--kafka-brokers", "k:1"});
  CHECK(e.find("--db-url") != std::string::npos);
  CHECK(e.find("hunter2") == std::string::npos);
}

TEST_CASE("environment variables set flags; flags win") {
  setenv("OUTBOX_RELAY_BATCH_SIZE", "77", 1);
  setenv("OUTBOX_RELAY_TABLE", "app.events", 1);
  auto o = parse(kBase);
  CHECK(o.batch_size == 77);
  CHECK(o.table == "app.events");
  o = parse(with({"--batch-size", "5"}));
  CHECK(o.batch_size == 5);
  unsetenv("OUTBOX_RELAY_BATCH_SIZE");
  unsetenv("OUTBOX_RELAY_TABLE");
}

TEST_CASE("conninfo redaction never shows the password") {
  const auto r = pg::redact_conninfo("postgresql://relay:s3cret@db.internal:6432/app?sslmode=require");
  CHECK(r.find("s3cret") == std::string::npos);
  CHECK(r.find("host=db.internal") != std::string::npos);
  CHECK(r.find("user=relay") != std::string::npos);
  CHECK(r.find("sslmode=require") != std::string::npos);
  CHECK(pg::redact_conninfo("password=abc host=h").find("abc") == std::string::npos);
  const auto added = pg::with_defaults("postgresql://u@h/d", {{"application_name", "x"}, {"user", "other"}});
  CHECK(added.find("application_name='x'") != std::string::npos);
  CHECK(added.find("user='u'") != std::string::npos);
}

TEST_CASE("secret kafka properties are recognised") {
  CHECK(kafka::is_secret_property("sasl.password"));
  CHECK(kafka::is_secret_property("ssl.key.password"));
  CHECK_FALSE(kafka::is_secret_property("linger.ms"));
}
