#include <doctest/doctest.h>

#include "parse_options.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "app/options.h"
#include "app/secrets.h"
#include "core/errors.h"
#include "pg/common/conninfo.h"

using namespace outbox_relay;

namespace {

// A file in the temp directory, removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& contents) {
    char tmpl[] = "/tmp/outbox-relay-unit-XXXXXX";
    const int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = tmpl;
    std::ofstream(path, std::ios::binary) << contents;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

app::Options parse(std::vector<std::string> args) { return testing::parse_args(std::move(args)); }

std::string effective(const app::Options& o, const std::string& key) {
  for (const auto& [k, v] : o.effective) {
    if (k == key) return v;
  }
  return "<absent>";
}

std::string all_effective(const app::Options& o) {
  std::string s;
  for (const auto& [k, v] : o.effective) s += k + "=" + v + "\n";
  return s;
}

}  // namespace

TEST_CASE("password file: read without the trailing newline, injected into the conninfo") {
  TempFile f("pa ss'w\\rd\n");
  CHECK(app::read_secret_file("--db-password-file", f.path) == "pa ss'w\\rd");
  const auto ci = pg::with_password("postgresql://relay@db.internal:6432/app", "pa ss'w\\rd");
  const auto params = pg::parse_conninfo(ci);
  CHECK(params.at("password") == "pa ss'w\\rd");
  CHECK(params.at("user") == "relay");
  CHECK(params.at("host") == "db.internal");
  CHECK(params.at("port") == "6432");
  // The file wins over a password in the URL.
  CHECK(pg::parse_conninfo(pg::with_password("postgresql://u:old@h/d", "new")).at("password") == "new");
  CHECK(pg::redact_conninfo(ci).find("pa ss") == std::string::npos);
}

TEST_CASE("password file errors name the flag and path, never contents") {
  CHECK_THROWS_WITH_AS(app::read_secret_file("--db-password-file", "/nonexistent/pw"),
                       doctest::Contains("--db-password-file: cannot read \"/nonexistent/pw\""),
                       core::ConfigError);
  TempFile empty("\n");
  CHECK_THROWS_WITH_AS(app::read_secret_file("--db-password-file", empty.path), doctest::Contains("is empty"),
                       core::ConfigError);
}

TEST_CASE("--db-password-file and --kafka-sasl-password-file through parse_options") {
  TempFile db("db-Secret-123\n");
  TempFile sasl("sasl-Secret-456\n");
  const auto o =
      parse({"--db-url", "postgresql://relay@localhost/db", "--kafka-brokers", "k:9092", "--db-password-file",
             db.path, "--kafka-sasl-password-file", sasl.path, "-X", "security.protocol=SASL_SSL", "-X",
             "sasl.mechanism=PLAIN", "-X", "sasl.username=relay"});
  CHECK(pg::parse_conninfo(o.db_url).at("password") == "db-Secret-123");
  bool found = false;
  for (const auto& [k, v] : o.kafka_overrides)
    found = found || (k == "sasl.password" && v == "sasl-Secret-456");
  CHECK(found);
  const auto text = all_effective(o);
  CHECK(text.find("db-Secret-123") == std::string::npos);
  CHECK(text.find("sasl-Secret-456") == std::string::npos);
  CHECK(effective(o, "db-password-file") == db.path);
  CHECK_THROWS_WITH_AS(parse({"--db-url", "postgresql://u@h/d", "--kafka-brokers", "k:1", "-X",
                              "sasl.password=x", "--kafka-sasl-password-file", sasl.path}),
                       doctest::Contains("give one"), core::ConfigError);
}

TEST_CASE("redaction of settings") {
  CHECK(app::redact_setting("db-url", "postgresql://relay:hunter2@db:5432/app").find("hunter2") ==
        std::string::npos);
  CHECK(app::redact_setting("db-url", "postgresql://relay:hunter2@db:5432/app").find("host=db") !=
        std::string::npos);
  CHECK(app::redact_setting("kafka-property", "sasl.password=hunter2") == "sasl.password=[redacted]");
  CHECK(app::redact_setting("kafka-property", "ssl.key.password=a=b,c") == "ssl.key.password=[redacted]");
  CHECK(app::redact_setting("kafka-property", "linger.ms=5") == "linger.ms=5");
  CHECK(app::redact_setting("db-password-file", "/run/secrets/pw") == "/run/secrets/pw");
  CHECK(app::redact_setting("some-password", "x") == "[redacted]");
  CHECK(app::redact_setting("batch-size", "10") == "10");
}

TEST_CASE("the effective config lists every flag with secrets redacted") {
  const auto o = parse({"--db-url", "postgresql://relay:hunter2@db:5432/app", "--kafka-brokers", "k:9092",
                        "-X", "sasl.password=hunter3", "-X", "linger.ms=7", "--batch-size", "10"});
  const auto text = all_effective(o);
  CHECK(text.find("hunter2") == std::string::npos);
  CHECK(text.find("hunter3") == std::string::npos);
  CHECK(effective(o, "batch-size") == "10");
  CHECK(effective(o, "kafka-property") == "sasl.password=[redacted],linger.ms=7");
  CHECK(effective(o, "db-url").find("host=db") != std::string::npos);
  CHECK(effective(o, "http-addr") == "127.0.0.1:9187");
  CHECK(effective(o, "poll-interval") == "1s");
}

TEST_CASE("precedence: flag > environment > config file > default") {
  TempFile conf(
      "# example\n"
      "db-url = \"postgresql://u@h/d\"\n"
      "kafka-brokers = \"file:9092\"\n"
      "batch-size = 11\n"
      "table = \"file_table\"\n"
      "poll-interval = \"3s\"\n");
  auto o = parse({"--config", conf.path});
  CHECK(o.batch_size == 11);
  CHECK(o.table == "file_table");
  CHECK(o.kafka_brokers == "file:9092");
  CHECK(o.poll_interval == std::chrono::milliseconds(3000));

  setenv("OUTBOX_RELAY_BATCH_SIZE", "22", 1);
  setenv("OUTBOX_RELAY_TABLE", "env_table", 1);
  o = parse({"--config", conf.path});
  CHECK(o.batch_size == 22);              // env beats the file
  CHECK(o.table == "env_table");          // env beats the file
  CHECK(o.kafka_brokers == "file:9092");  // file beats the default
  o = parse({"--config", conf.path, "--batch-size", "33"});
  CHECK(o.batch_size == 33);  // flag beats env and file
  CHECK(o.table == "env_table");
  unsetenv("OUTBOX_RELAY_BATCH_SIZE");
  unsetenv("OUTBOX_RELAY_TABLE");

  // OUTBOX_RELAY_CONFIG names the file when --config is absent.
  setenv("OUTBOX_RELAY_CONFIG", conf.path.c_str(), 1);
  o = parse({});
  CHECK(o.table == "file_table");
  setenv("OUTBOX_RELAY_CONFIG", "/nonexistent/outbox-relay.conf", 1);
  CHECK_THROWS_WITH_AS(parse({}), doctest::Contains("OUTBOX_RELAY_CONFIG"), core::ConfigError);
  unsetenv("OUTBOX_RELAY_CONFIG");
}

TEST_CASE("an unknown key in the config file is a config error") {
  TempFile conf("db-url = \"postgresql://u@h/d\"\nkafka-brokers = \"k:1\"\nbatch-sise = 5\n");
  CHECK_THROWS_AS(parse({"--config", conf.path}), core::ConfigError);
}

TEST_CASE("the shipped example config parses and documents every flag") {
  const std::string example = std::string(OUTBOX_RELAY_SOURCE_DIR) + "/config/outbox-relay.conf.example";
  std::ifstream in(example);
  REQUIRE(in.good());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto o = parse({"--db-url", "postgresql://u@h/d", "--kafka-brokers", "k:1"});
  for (const auto& setting : o.effective) {
    const std::string key = setting.first;
    if (key == "config") continue;
    CAPTURE(key);
    // Each key appears as "key = " (commented out or set) in the example.
    CHECK(text.find(key + " = ") != std::string::npos);
  }
  // As shipped (its active lines), it is a valid config file.
  CHECK_NOTHROW(parse({"--config", example}));
}
