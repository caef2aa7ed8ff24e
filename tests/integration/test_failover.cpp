// WAL mode across a promotion: a primary + streaming standby of their own (scripts/pg.sh pair, the
// PG_VERSION of the run), the relay on the multi-host URL. On 17+ the relay follows the promoted standby
// on its synchronized failover slot; on any version a promoted standby without the slot is refused.
#include <doctest/doctest.h>
#include <signal.h>

#include "helpers.h"
#include "relay_checks.h"
#include "writers.h"

using namespace outbox_relay::testing;

namespace {

// The pair listens on the test server's port + 50 and + 51, under its own state directory. A pair that
// did not start is destroyed (a node left running would hold its port for later runs and suites) and
// tried once more: the port may have been held for a moment by another connection's local end.
class Pair {
 public:
  explicit Pair(const std::string& replication) {
    const auto hp = pg_host_port();
    port_ = std::stoi(hp.substr(hp.rfind(':') + 1)) + 50;
    env_ = "OUTBOX_RELAY_RUN=/tmp/outbox-relay-it-pair PG_PORT=" + std::to_string(port_) + " ";
    std::string out;
    for (int attempt = 0; attempt < 2; ++attempt) {
      script("destroy");
      out.clear();
      if (script("pair " + replication, &out) == 0) return;
    }
    script("destroy");
    FAIL(out);
  }
  ~Pair() { script("destroy"); }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;

  int script(const std::string& args, std::string* out = nullptr) const {
    return run_command(env_ + source_dir() + "/scripts/pg.sh " + args, out);
  }
  [[nodiscard]] std::string node_url(int node, const std::string& db) const {
    return "postgresql://postgres:postgres@127.0.0.1:" + std::to_string(port_ + node - 1) + "/" + db;
  }
  [[nodiscard]] std::string multi_url(const std::string& db) const {
    return "postgresql://postgres:postgres@127.0.0.1:" + std::to_string(port_) +
           ",127.0.0.1:" + std::to_string(port_ + 1) + "/" + db + "?target_session_attrs=read-write";
  }
  // Stops the primary with -m immediate and promotes the standby.
  void fail_over() const {
    std::string out;
    REQUIRE_MESSAGE(script("node 1 kill", &out) == 0, out);
    REQUIRE_MESSAGE(script("node 2 promote", &out) == 0, out);
  }
  [[nodiscard]] int server_version() const {
    return static_cast<int>(
        sql_count(node_url(1, "postgres"), "SELECT current_setting('server_version_num')::int"));
  }

 private:
  int port_ = 0;
  std::string env_;
};

std::string fresh_pair_database(const Pair& pair, const std::string& db) {
  sql(pair.node_url(1, "postgres"), "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
  sql(pair.node_url(1, "postgres"), "CREATE DATABASE " + db);
  const auto url = pair.multi_url(db);
  std::string out;
  REQUIRE_MESSAGE(run_command(relay_binary() + " migrate --db-url '" + url + "'", &out) == 0, out);
  return url;
}

std::vector<std::string> wal(const std::string& slot, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"--mode", "wal", "--slot", slot, "--http-addr", "off"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

}  // namespace

TEST_CASE("wal failover: the relay follows the promoted standby on its synchronized failover slot") {
  Pair pair("sync");
  if (pair.server_version() < 170000) {
    MESSAGE("PostgreSQL before 17 has no failover slots: skipped");
    return;
  }
  const auto url = fresh_pair_database(pair, "itf_follow");
  const std::string slot = "itf_follow";
  const auto topic = "itf.follow." + unique_suffix();
  Process relay(relay_args(url, wal(slot)));
  REQUIRE(wait_until([&] { return relay.output().find("streaming slot") != std::string::npos; }, 60s));
  WriteLoad load;
  load.topic = topic;
  load.writers = 2;
  load.events_per_writer = 300;
  auto committed = write_events(url, load);
  INFO(relay.output());
  REQUIRE(wait_until(
      [&] {
        return sql_count(pair.node_url(2, "postgres"),
                         "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot +
                             "' AND synced AND NOT temporary") == 1;
      },
      90s));
  pair.fail_over();
  load.events_per_writer = 200;
  auto more = write_events(url, load);
  committed.insert(committed.end(), more.begin(), more.end());
  read_stop_verify(relay, topic, committed, 90s);
  CHECK(relay.output().find("following the new primary 127.0.0.1:") != std::string::npos);
}

TEST_CASE("wal failover: a promoted standby without the slot is refused, never restarted from now") {
  Pair pair("async");
  const auto url = fresh_pair_database(pair, "itf_missing");
  const std::string slot = "itf_missing";
  Process relay(relay_args(url, wal(slot, {"--failover-slot", "off"})));
  // Said at start, after the stream began: before 17 (no failover slots), and with --failover-slot off.
  CHECK(wait_until([&] { return relay.output().find("needs operator action") != std::string::npos; }, 60s));
  pair.fail_over();
  const auto rc = relay.wait(90s);
  INFO(relay.output());
  REQUIRE(rc.has_value());
  CHECK(*rc != 0);
  CHECK(relay.output().find("never synchronized to the promoted standby") != std::string::npos);
  CHECK(sql_count(pair.node_url(2, "postgres"),
                  "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == 0);
}
