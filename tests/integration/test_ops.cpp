// Operability against the real PostgreSQL and Kafka: /metrics, /healthz, /readyz, sd_notify, the
// systemd unit, the admin subcommands (status, check, replay, cleanup), --retention, secrets and the
// Debian package.
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "helpers.h"
#include "relay_checks.h"

using namespace outbox_relay::testing;

namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `outbox-relay ARGS...` to completion; returns the exit code, output in `out`.
int relay_command(const std::vector<std::string>& args, std::string& out) {
  std::string cmd = quote(relay_binary());
  for (const auto& a : args) cmd += " " + quote(a);
  return run_command(cmd, &out);
}

// A loopback port nobody listens on right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};

HttpReply http_get(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(std::chrono::seconds(2));
  c.set_read_timeout(std::chrono::seconds(5));
  auto r = c.Get(path.c_str());
  if (!r) return {};
  return {r->status, r->body};
}

// The value of the sample `name_and_labels` (e.g. `x_total{topic="t"}`) in a scrape, if present.
std::optional<double> sample(const std::string& scrape, const std::string& name_and_labels) {
  std::istringstream in(scrape);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
  }
  return std::nullopt;
}

double sample_or(const std::string& scrape, const std::string& name, double fallback) {
  return sample(scrape, name).value_or(fallback);
}

void insert_events(const std::string& url, const std::string& topic, int n, const std::string& key = "k") {
  sql(url, "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) SELECT 'ops', '" +
               key + "' || i, 'created', jsonb_build_object('i', i), '" + topic +
               "' FROM generate_series(1, " + std::to_string(n) + ") i");
}

// Brings the broker back whatever happens inside a test that stops it.
struct KafkaRestarter {
  ~KafkaRestarter() {
    try {
      kafka_start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "test_ops: could not restart kafka: %s\n", e.what());
    }
  }
};

// A login role of the shared cluster, dropped at scope exit (roles are cluster-wide).
struct TempRole {
  std::string name, password, db_url;
  TempRole(const std::string& db_url_, const std::string& prefix) : db_url(db_url_) {
    auto s = unique_suffix();
    for (auto& c : s) c = c == '-' ? '_' : c;
    name = prefix + "_" + s;
    password = "Pw-S3cr3t-" + s;
    sql(pg_url("postgres"), "CREATE ROLE " + name + " LOGIN PASSWORD '" + password + "'");
  }
  ~TempRole() {
    try {
      sql(db_url, "DROP OWNED BY " + name);
      sql(pg_url("postgres"), "DROP ROLE IF EXISTS " + name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "test_ops: could not drop role %s: %s\n", name.c_str(), e.what());
    }
  }
  // The database URL of this role, without a password.
  [[nodiscard]] std::string url_without_password(const std::string& db) const {
    return "postgresql://" + name + "@" + pg_host_port() + "/" + db;
  }
  [[nodiscard]] std::string url_with_password(const std::string& db, const std::string& pw) const {
    return "postgresql://" + name + ":" + pw + "@" + pg_host_port() + "/" + db;
  }
};

// A unix datagram socket standing in for systemd's $NOTIFY_SOCKET.
class NotifySocket {
 public:
  NotifySocket() {
    path_ = "/tmp/outbox-relay-notify-" + unique_suffix() + ".sock";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~NotifySocket() {
    ::close(fd_);
    std::remove(path_.c_str());
  }
  [[nodiscard]] const std::string& path() const { return path_; }
  // Collects datagrams until one contains `needle` or `timeout` passes.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (const auto& m : messages) {
        if (m.find(needle) != std::string::npos) return true;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
        char buf[4096];
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) messages.emplace_back(buf, static_cast<std::size_t>(n));
      }
    }
  }
  std::vector<std::string> messages;

 private:
  std::string path_;
  int fd_ = -1;
};

std::string build_dir() { return std::filesystem::path(relay_binary()).parent_path().string(); }

}  // namespace

TEST_CASE("ops: /metrics counts events and latency while they flow; /healthz and /readyz answer") {
  const auto url = fresh_database("it_ops_metrics");
  const auto topic = "it.ops.metrics." + unique_suffix();
  insert_events(url, topic, 20);
  const int port = free_port();
  Process relay(relay_args(url, {"--on-sent", "mark", "--http-addr", "127.0.0.1:" + std::to_string(port),
                                 "--stats-interval", "300ms"}));
  const std::string published = "outbox_relay_events_published_total{topic=\"" + topic + "\"}";
  std::string scrape;
  REQUIRE_MESSAGE(wait_until(
                      [&] {
                        scrape = http_get(port, "/metrics").body;
                        return sample_or(scrape, published, 0) >= 20;
                      },
                      60s),
                  relay.output());
  CHECK(sample_or(scrape, "outbox_relay_end_to_end_latency_seconds_count", 0) >= 20);
  CHECK(sample_or(scrape, "outbox_relay_end_to_end_latency_seconds_sum", -1) > 0);
  CHECK(sample_or(scrape, "outbox_relay_batches_total", 0) >= 1);
  CHECK(sample_or(scrape, "outbox_relay_batch_size_count", 0) >= 1);
  CHECK(sample(scrape, "outbox_relay_build_info{version=\"" OUTBOX_RELAY_VERSION "\",mode=\"poll\"}") == 1);
  CHECK(sample(scrape, "outbox_relay_source_connected") == 1);
  CHECK(sample(scrape, "outbox_relay_leader") == 1);

  // The counter keeps moving; the backlog gauge, from its own query, drains to zero.
  insert_events(url, topic, 7, "m");
  CHECK(wait_until(
      [&] {
        scrape = http_get(port, "/metrics").body;
        return sample_or(scrape, published, 0) >= 27 &&
               sample_or(scrape, "outbox_relay_backlog_rows", -1) == 0;
      },
      60s));
  CHECK(sample(scrape, published) == 27);
  CHECK(sample(scrape, "outbox_relay_failed_rows") == 0);
  CHECK(sample(scrape, "outbox_relay_oldest_unsent_age_seconds") == 0);
  CHECK(sample(scrape, "outbox_relay_publisher_connected") == 1);
  CHECK(scrape.find("# TYPE outbox_relay_end_to_end_latency_seconds histogram") != std::string::npos);

  // The backlog gauge sees rows nobody relays (failed ones are not backlog).
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic, failed_at, error) "
      "VALUES ('ops', 'f', 'created', '{}', '" +
          topic + "', now(), 'test')");
  CHECK(wait_until(
      [&] { return sample_or(http_get(port, "/metrics").body, "outbox_relay_failed_rows", -1) == 1; }, 30s));

  const auto health = http_get(port, "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body.rfind("ok", 0) == 0);
  const auto ready = http_get(port, "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready: leader\n");
  CHECK(http_get(port, "/nope").status == 404);
  stop_relay(relay);
}

TEST_CASE("ops: WAL mode exports the slot's lag and confirmed LSN") {
  const auto url = fresh_database("it_ops_wal");
  auto slot = "it_ops_wal_" + unique_suffix();
  for (auto& c : slot) c = c == '-' ? '_' : c;
  const auto topic = "it.ops.wal." + unique_suffix();
  const int port = free_port();
  {
    Process relay(relay_args(url, {"--mode", "wal", "--slot", slot, "--http-addr",
                                   "127.0.0.1:" + std::to_string(port), "--stats-interval", "300ms"}));
    REQUIRE_MESSAGE(wait_until([&] { return http_get(port, "/readyz").status == 200; }, 60s), relay.output());
    insert_events(url, topic, 3);
    std::string scrape;
    CHECK_MESSAGE(wait_until(
                      [&] {
                        scrape = http_get(port, "/metrics").body;
                        return sample_or(scrape,
                                         "outbox_relay_events_published_total{topic=\"" + topic + "\"}",
                                         0) >= 3 &&
                               sample_or(scrape, "outbox_relay_slot_confirmed_lsn", 0) > 0 &&
                               sample_or(scrape, "outbox_relay_slot_lag_bytes", -1) >= 0;
                      },
                      60s),
                  relay.output());
    CHECK(sample(scrape, "outbox_relay_build_info{version=\"" OUTBOX_RELAY_VERSION "\",mode=\"wal\"}") == 1);
    CHECK_FALSE(sample(scrape, "outbox_relay_backlog_rows").has_value());  // a poll-mode gauge
    stop_relay(relay);
  }
  std::string out;
  CHECK(relay_command({"status", "--mode", "wal", "--slot", slot, "--db-url", url}, out) == 0);
  CHECK(out.find("slot \"" + slot + "\": inactive, plugin pgoutput") != std::string::npos);
  sql(url, "SELECT pg_drop_replication_slot('" + slot + "')");
}

TEST_CASE("ops: /readyz turns 503 while the broker is down and 200 when it is back") {
  const auto url = fresh_database("it_ops_ready");
  const int port = free_port();
  Process relay(
      relay_args(url, {"--http-addr", "127.0.0.1:" + std::to_string(port), "--stats-interval", "500ms"}));
  REQUIRE_MESSAGE(wait_until([&] { return http_get(port, "/readyz").status == 200; }, 60s), relay.output());
  {
    KafkaRestarter restart;
    kafka_stop();
    HttpReply r;
    CHECK_MESSAGE(wait_until(
                      [&] {
                        r = http_get(port, "/readyz");
                        return r.status == 503;
                      },
                      60s),
                  relay.output());
    CHECK(r.body.find("kafka not reachable") != std::string::npos);
    CHECK(sample(http_get(port, "/metrics").body, "outbox_relay_publisher_connected") == 0);
    // Liveness is not readiness: the loop still runs.
    CHECK(http_get(port, "/healthz").status == 200);
  }
  CHECK_MESSAGE(wait_until([&] { return http_get(port, "/readyz").status == 200; }, 90s), relay.output());
  stop_relay(relay);
}

TEST_CASE("ops: the daemon reports READY=1, WATCHDOG=1 and STOPPING=1 to $NOTIFY_SOCKET") {
  const auto url = fresh_database("it_ops_notify");
  NotifySocket sock;
  Process relay(relay_args(url, {"--http-addr", "off", "--stats-interval", "500ms"}),
                {{"NOTIFY_SOCKET", sock.path()}, {"WATCHDOG_USEC", "900000"}});
  CHECK_MESSAGE(sock.wait_for("READY=1", 60s), relay.output());
  CHECK(sock.wait_for("WATCHDOG=1", 10s));
  relay.signal(SIGTERM);
  CHECK(sock.wait_for("STOPPING=1", 30s));
  const auto rc = relay.wait(30s);
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
}

TEST_CASE("ops: systemd-analyze verify accepts the unit") {
  std::string out;
  REQUIRE_MESSAGE(run_command("command -v systemd-analyze", &out) == 0,
                  "systemd-analyze is missing (apt-get install systemd; scripts/deps.sh installs it)");
  const auto dir = std::filesystem::temp_directory_path() / ("outbox-relay-unit-" + unique_suffix());
  std::filesystem::create_directories(dir);
  std::ifstream in(source_dir() + "/systemd/outbox-relay.service");
  REQUIRE(in.good());
  std::string unit((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // verify checks that ExecStart's binary exists: point it at the one just built.
  const std::string exec = "ExecStart=/usr/bin/outbox-relay";
  const auto at = unit.find(exec);
  REQUIRE(at != std::string::npos);
  unit.replace(at, exec.size(), "ExecStart=" + relay_binary());
  std::ofstream(dir / "outbox-relay.service") << unit;
  const int rc =
      run_command("systemd-analyze verify " + quote((dir / "outbox-relay.service").string()), &out);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("outbox-relay.service") == std::string::npos);  // no complaint names the unit
  for (const auto* key : {"Type=notify", "WatchdogSec=", "Restart=on-failure", "DynamicUser=yes",
                          "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                          "EnvironmentFile=-/etc/outbox-relay/outbox-relay.env", "TimeoutStopSec=45s"}) {
    CHECK_MESSAGE(unit.find(key) != std::string::npos, key);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("ops: status shows backlog, oldest age, failed and parked rows, and the slot") {
  const auto url = fresh_database("it_ops_status");
  insert_events(url, "it.ops.status", 5);
  sql(url, "UPDATE outbox SET failed_at = now(), error = 'x' WHERE id IN (1, 2)");
  sql(url, "UPDATE outbox SET created_at = now() - interval '2 hours' WHERE id = 3");
  sql(url,
      "INSERT INTO outbox_relay_parked (id, topic, error, source) VALUES ('9', 't', 'too large', 'test')");
  auto slot = "it_ops_status_" + unique_suffix();
  for (auto& c : slot) c = c == '-' ? '_' : c;
  sql(url, "SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')");
  std::string out;
  const int rc = relay_command({"status", "--db-url", url, "--slot", slot}, out);
  sql(url, "SELECT pg_drop_replication_slot('" + slot + "')");
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("backlog rows        3") != std::string::npos);
  CHECK(out.find("oldest unsent age   2h00m") != std::string::npos);
  CHECK(out.find("failed rows         2") != std::string::npos);
  CHECK(out.find("parked rows         1 (outbox_relay_parked)") != std::string::npos);
  CHECK(out.find("slot \"" + slot + "\"") != std::string::npos);
  CHECK(out.find("inactive, plugin pgoutput") != std::string::npos);
  CHECK(out.find("postgres:postgres") == std::string::npos);
}

TEST_CASE("ops: check names a missing table, a missing grant, an unreachable broker; passes with the role") {
  const auto url = fresh_database("it_ops_check", false);
  std::string out;
  int rc = relay_command({"check", "--db-url", url, "--kafka-brokers", kafka_brokers()}, out);
  INFO(out);
  CHECK(rc == 1);
  CHECK(out.find("FAIL  table \"outbox\" does not exist") != std::string::npos);
  CHECK(out.find("ok    kafka: 1 broker(s)") != std::string::npos);

  REQUIRE(relay_command({"migrate", "--db-url", url}, out) == 0);
  TempRole role(url, "it_ops_check");
  sql(url, "GRANT SELECT ON outbox TO " + role.name);
  const auto role_url = role.url_with_password("it_ops_check", role.password);
  rc = relay_command({"check", "--db-url", role_url, "--kafka-brokers", kafka_brokers()}, out);
  CHECK(rc == 1);
  CHECK(out.find("FAIL  role \"" + role.name + "\" lacks UPDATE on table \"outbox\"") != std::string::npos);
  CHECK(out.find("lacks DELETE") != std::string::npos);  // --on-sent=delete (the default)
  CHECK(out.find("lacks SELECT") == std::string::npos);
  CHECK(out.find(role.password) == std::string::npos);

  // The least-privilege role from sql/006_roles.sql is exactly enough.
  sql(url, "GRANT outbox_relay TO " + role.name);
  rc = relay_command({"check", "--db-url", role_url, "--kafka-brokers", kafka_brokers()}, out);
  CHECK(rc == 0);
  CHECK(out.find("check passed") != std::string::npos);
  // WAL mode: wal_level is logical on the test server (the failing case is unit-tested:
  // tests/unit/test_admin.cpp); the role lacks REPLICATION, which check names.
  rc = relay_command({"check", "--mode", "wal", "--db-url", role_url, "--kafka-brokers", kafka_brokers()},
                     out);
  CHECK(rc == 1);
  CHECK(out.find("ok    wal_level is logical") != std::string::npos);
  CHECK(out.find("lacks the REPLICATION attribute") != std::string::npos);

  // A broker nobody answers at.
  rc = relay_command({"check", "--db-url", url, "--kafka-brokers", "127.0.0.1:1"}, out);
  CHECK(rc == 1);
  CHECK(out.find("FAIL  kafka: could not reach kafka") != std::string::npos);
  // A wrong password: the reason, never the password.
  rc = relay_command({"check", "--db-url", role.url_with_password("it_ops_check", "Wr0ng-Pw-zz"),
                      "--kafka-brokers", kafka_brokers()},
                     out);
  CHECK(rc == 1);
  CHECK(out.find("FAIL  postgresql: could not connect") != std::string::npos);
  CHECK(out.find("Wr0ng-Pw-zz") == std::string::npos);
}

TEST_CASE("ops: replay re-publishes exactly the chosen range, and failed rows by id") {
  const auto url = fresh_database("it_ops_replay");
  const auto topic = "it.ops.replay." + unique_suffix();
  insert_events(url, topic, 10);
  std::string out;
  Process first(relay_args(url, {"--on-sent", "mark", "--exit-when-idle", "--http-addr", "off"}));
  REQUIRE(first.wait(60s) == 0);
  REQUIRE(consume_at_least(topic, 10, 60s).size() == 10);

  int rc = relay_command({"replay", "--from", "3", "--to", "6", "--db-url", url}, out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("replay: 4 sent row(s)") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 4);

  // Two failed rows, replayed by id; a sent id in the same list is left alone.
  insert_events(url, topic, 2, "f");
  sql(url, "UPDATE outbox SET failed_at = now(), error = 'poison' WHERE id IN (11, 12)");
  rc = relay_command({"replay", "--ids", "11,12,1", "--failed", "--db-url", url}, out);
  REQUIRE(rc == 0);
  CHECK(out.find("replay: 2 failed row(s)") != std::string::npos);
  CHECK(out.find("left alone: \"1\"") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL OR error IS NOT NULL") == 0);

  Process second(relay_args(url, {"--on-sent", "mark", "--exit-when-idle", "--http-addr", "off"}));
  REQUIRE_MESSAGE(second.wait(60s) == 0, second.output());
  const auto records = consume_at_least(topic, 16, 60s);
  REQUIRE(records.size() == 16);
  std::multiset<std::string> ids;
  for (const auto& r : records) ids.insert(r.header("id").value_or("?"));
  for (int id = 1; id <= 12; ++id) {
    const auto expect = (id >= 3 && id <= 6) ? 2u : 1u;
    CHECK_MESSAGE(ids.count(std::to_string(id)) == expect, "id ", id);
  }
  CHECK(sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0);
}

TEST_CASE("ops: cleanup deletes only old sent rows; --retention does it while running") {
  const auto url = fresh_database("it_ops_cleanup");
  insert_events(url, "it.ops.cleanup", 12);
  // 1-4: sent 10 days ago; 5-6: sent an hour ago; 7-8: failed 10 days ago; 9-12: unsent.
  sql(url, "UPDATE outbox SET sent_at = now() - interval '10 days' WHERE id BETWEEN 1 AND 4");
  sql(url, "UPDATE outbox SET sent_at = now() - interval '1 hour' WHERE id IN (5, 6)");
  sql(url, "UPDATE outbox SET failed_at = now() - interval '10 days', error = 'x' WHERE id IN (7, 8)");
  std::string out;
  const int rc = relay_command({"cleanup", "--retention", "7d", "--db-url", url}, out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("cleanup: deleted 4 row(s)") != std::string::npos);
  std::set<long long> left;
  for (const auto& r : sql(url, "SELECT id FROM outbox")) left.insert(r[0].as<long long>());
  CHECK(left == std::set<long long>{5, 6, 7, 8, 9, 10, 11, 12});

  // The daemon flag: more than a batch of old rows, removed by the side thread while the relay runs.
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, sent_at) SELECT 'ops', 'o' || "
      "i, "
      "'created', '{}', now() - interval '8 days' FROM generate_series(1, 2500) i");
  sql(url, "UPDATE outbox SET sent_at = now() - interval '8 days' WHERE id IN (5, 6)");
  sql(url, "DELETE FROM outbox WHERE id BETWEEN 9 AND 12");
  Process relay(relay_args(url, {"--on-sent", "mark", "--retention", "7d", "--http-addr", "off"}));
  CHECK_MESSAGE(
      wait_until([&] { return sql_count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") == 0; },
                 60s),
      relay.output());
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 2);  // the failed rows stay
  stop_relay(relay);
  CHECK(relay.output().find("retention: deleted 2502 rows") != std::string::npos);
}

TEST_CASE("ops: secrets stay out of argv, logs, /metrics and errors; JSON logs are valid JSON") {
  const auto url = fresh_database("it_ops_secrets");
  TempRole role(url, "it_ops_secret");
  sql(url, "GRANT outbox_relay TO " + role.name);
  const auto kafka_secret = "Kafka-S3cr3t-" + unique_suffix();
  const auto dir = std::filesystem::temp_directory_path() / ("outbox-relay-secrets-" + unique_suffix());
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "db") << role.password << "\n";
  std::ofstream(dir / "kafka") << kafka_secret << "\n";
  const auto topic = "it.ops.secrets." + unique_suffix();
  insert_events(url, topic, 3);
  const int port = free_port();
  Process relay({relay_binary(), "--db-url", role.url_without_password("it_ops_secrets"), "--kafka-brokers",
                 kafka_brokers(), "--db-password-file", (dir / "db").string(), "--kafka-sasl-password-file",
                 (dir / "kafka").string(), "-X", "sasl.username=relay", "--http-addr",
                 "127.0.0.1:" + std::to_string(port), "--log-level", "debug", "--log-format", "json",
                 "--stats-interval", "300ms"});
  const std::string published = "outbox_relay_events_published_total{topic=\"" + topic + "\"}";
  std::string scrape;
  REQUIRE_MESSAGE(wait_until(
                      [&] {
                        scrape = http_get(port, "/metrics").body;
                        return sample_or(scrape, published, 0) >= 3;
                      },
                      60s),
                  relay.output());
  std::ifstream cmdline("/proc/" + std::to_string(relay.pid()) + "/cmdline");
  const std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  const auto ready = http_get(port, "/readyz").body + http_get(port, "/healthz").body;
  stop_relay(relay);
  const auto log = relay.output();
  for (const auto& secret : {role.password, kafka_secret}) {
    CHECK_MESSAGE(log.find(secret) == std::string::npos, secret);
    CHECK(scrape.find(secret) == std::string::npos);
    CHECK(ready.find(secret) == std::string::npos);
    CHECK(args.find(secret) == std::string::npos);
  }
  CHECK(log.find("effective config:") != std::string::npos);
  CHECK(log.find("sasl.password=[redacted]") != std::string::npos);
  // Every line is one JSON object with time, level and msg.
  std::istringstream lines(log);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    CAPTURE(line);
    nlohmann::json j;
    CHECK_NOTHROW(j = nlohmann::json::parse(line));
    CHECK(j.contains("time"));
    CHECK(j.contains("level"));
    CHECK(j.contains("msg"));
    ++n;
  }
  CHECK(n > 3);

  // Errors: a wrong password file content shows in no output either.
  std::ofstream(dir / "wrong") << "Wr0ng-" << role.password << "\n";
  std::string out;
  const int rc = relay_command({"status", "--db-url", role.url_without_password("it_ops_secrets"),
                                "--db-password-file", (dir / "wrong").string()},
                               out);
  CHECK(rc == 1);
  CHECK(out.find("password authentication failed") != std::string::npos);
  CHECK(out.find(role.password) == std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("ops: cpack builds a .deb with the binary, SQL, unit, example config and dashboard") {
  std::string out;
  const int rc = run_command(quote(source_dir() + "/scripts/check-deb.sh") + " " + quote(build_dir()), &out);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("package ok") != std::string::npos);
}
