#pragma once
// Shared helpers for integration tests: a fresh database per test, the relay binary as a child
// process, an independent consumer (kcat), and waiting on conditions with deadlines (never sleeps as
// synchronisation). The servers are the real PostgreSQL and Kafka started by scripts/ (tests/run).

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

namespace outbox_relay::testing {

using namespace std::chrono_literals;

// postgresql://postgres:postgres@127.0.0.1:54329/<db> (override the base with OUTBOX_RELAY_TEST_PG).
std::string pg_url(const std::string& db = "postgres");
// host:port of the test server (from OUTBOX_RELAY_TEST_PG), for URLs with another role.
std::string pg_host_port();
// 127.0.0.1:19092 (override with OUTBOX_RELAY_TEST_KAFKA).
std::string kafka_brokers();
std::string source_dir();
std::string relay_binary();

// Drops and creates database `name`; returns its URL. With `migrate`, runs `outbox-relay migrate`.
std::string fresh_database(const std::string& name, bool migrate = true);

// A unique suffix for topic names so reruns never see old records.
std::string unique_suffix();

// Runs SQL on its own connection, autocommit.
pqxx::result sql(const std::string& url, const std::string& query);
long long sql_count(const std::string& url, const std::string& query);

// Polls `cond` every 20 ms until it is true or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

// Runs a shell command, returns its exit code; output to `out` if given.
int run_command(const std::string& cmd, std::string* out = nullptr);

// The relay (or any program) as a child process with stdout+stderr captured to a file.
class Process {
 public:
  Process(std::vector<std::string> args, std::map<std::string, std::string> env = {});
  ~Process();  // SIGKILLs a child still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] int pid() const { return pid_; }
  void signal(int sig) const;
  // Exit code (128+signal for a signal death), or nullopt if still running at the deadline.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] bool running();
  [[nodiscard]] std::string output() const;

 private:
  int pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// The relay binary with --db-url/--kafka-brokers filled in.
std::vector<std::string> relay_args(const std::string& url, std::vector<std::string> extra);

struct Record {
  std::string topic;
  int partition = -1;
  long long offset = -1;
  long long timestamp_ms = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<std::pair<std::string, std::string>> headers;
  [[nodiscard]] std::optional<std::string> header(const std::string& name) const;
};

// Everything in `topic` from the beginning, read with kcat (an independent client), with
// isolation.level `isolation` (read_committed, librdkafka's default, or read_uncommitted).
std::vector<Record> consume_all(const std::string& topic, const std::string& isolation = "read_committed");
// Reads until at least `count` distinct events (by `id` header) are there or `timeout` passes.
std::vector<Record> consume_at_least(const std::string& topic, std::size_t count,
                                     std::chrono::milliseconds timeout);

// Creates `topic` with `partitions` and topic `configs` (librdkafka's admin API); throws on failure.
void create_topic(const std::string& topic, int partitions,
                  const std::vector<std::pair<std::string, std::string>>& configs = {});
// The value of topic config `name` of `topic` as the broker describes it; nullopt when not there.
std::optional<std::string> topic_config(const std::string& topic, const std::string& name);
// The number of partitions of `topic`, 0 when it does not exist.
int topic_partitions(const std::string& topic);

// Stops/starts the shared services through scripts/ (tests that inject faults).
void kafka_stop();
void kafka_start();
void pg_restart();

// Checks delivery promises on consumed records: every id in `committed` present, nothing else, and
// for each key the first occurrences of ids arrive in `committed` order. Returns a list of problems.
struct Verdict {
  std::size_t missing = 0, phantom = 0, duplicates = 0, reordered = 0;
  std::vector<std::string> examples;
  [[nodiscard]] bool ok() const { return missing == 0 && phantom == 0 && reordered == 0; }
  [[nodiscard]] std::string summary() const;
};
// `committed`: (id, key) in commit order per key.
Verdict verify(const std::vector<std::pair<std::string, std::string>>& committed,
               const std::vector<Record>& records);

}  // namespace outbox_relay::testing
