#include "helpers.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>

extern char** environ;

namespace outbox_relay::testing {

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

std::string pg_url(const std::string& db) {
  return env_or("OUTBOX_RELAY_TEST_PG", "postgresql://postgres:postgres@127.0.0.1:54329/") + db;
}
std::string pg_host_port() {
  const auto url = pg_url("");
  const auto at = url.rfind('@');
  const auto from = at == std::string::npos ? url.find("://") + 3 : at + 1;
  return url.substr(from, url.find('/', from) - from);
}
std::string kafka_brokers() { return env_or("OUTBOX_RELAY_TEST_KAFKA", "127.0.0.1:19092"); }
std::string source_dir() { return OUTBOX_RELAY_SOURCE_DIR; }
std::string relay_binary() { return OUTBOX_RELAY_BINARY; }

std::string unique_suffix() {
  static std::atomic<int> n{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count() % 100000000) +
         "-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

pqxx::result sql(const std::string& url, const std::string& query) {
  pqxx::connection c(url);
  pqxx::nontransaction n(c);
  return n.exec(query);
}

long long sql_count(const std::string& url, const std::string& query) {
  return sql(url, query)[0][0].as<long long>();
}

std::string fresh_database(const std::string& name, bool migrate) {
  const auto admin = pg_url("postgres");
  sql(admin, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  sql(admin, "CREATE DATABASE " + name);
  const auto url = pg_url(name);
  if (migrate) {
    std::string out;
    const int rc = run_command(shell_quote(relay_binary()) + " migrate --db-url " + shell_quote(url), &out);
    if (rc != 0) throw std::runtime_error("migrate failed: " + out);
  }
  return url;
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return cond();
    std::this_thread::sleep_for(20ms);
  }
}

int run_command(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  std::string buf;
  char chunk[65536];
  std::size_t n = 0;
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) buf.append(chunk, n);
  const int st = pclose(p);
  if (out != nullptr) *out = std::move(buf);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Process::Process(std::vector<std::string> args, std::map<std::string, std::string> env) {
  static std::atomic<int> seq{0};
  log_path_ = "/tmp/outbox-relay-test-" + std::to_string(getpid()) + "-" + std::to_string(seq++) + ".log";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    if (!env.count(kv.substr(0, kv.find('=')))) envs.push_back(kv);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  // The test process may block signals; the child must start with a clean mask.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  const int rc = posix_spawn(&pid_, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("could not start " + args[0]);
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(10s);
  }
  std::remove(log_path_.c_str());
}

void Process::signal(int sig) const { ::kill(pid_, sig); }

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  wait_until(
      [this] {
        if (status_) return true;
        int st = 0;
        if (waitpid(pid_, &st, WNOHANG) == pid_)
          status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_.has_value();
      },
      timeout);
  return status_;
}

bool Process::running() { return !wait(0ms).has_value(); }

std::string Process::output() const {
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> relay_args(const std::string& url, std::vector<std::string> extra) {
  std::vector<std::string> a = {relay_binary(), "--db-url", url, "--kafka-brokers", kafka_brokers()};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::optional<std::string> Record::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

std::vector<Record> consume_all(const std::string& topic, const std::string& isolation) {
  std::string out;
  const int rc = run_command("kcat -b " + kafka_brokers() + " -C -t " + shell_quote(topic) +
                                 " -e -o beginning -q -J -m 10 -X topic.metadata.refresh.interval.ms=1000" +
                                 " -X isolation.level=" + shell_quote(isolation) + " 2>/dev/null",
                             &out);
  std::vector<Record> records;
  if (rc != 0) return records;  // e.g. the topic does not exist yet
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    Record r;
    r.topic = j.value("topic", "");
    r.partition = j.value("partition", -1);
    r.offset = j.value("offset", -1LL);
    r.timestamp_ms = j.value("ts", 0LL);
    if (j.contains("key") && j["key"].is_string()) r.key = j["key"].get<std::string>();
    if (j.contains("payload") && j["payload"].is_string()) r.value = j["payload"].get<std::string>();
    if (j.contains("headers") && j["headers"].is_array()) {
      const auto& h = j["headers"];
      for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
        r.headers.emplace_back(h[i].get<std::string>(),
                               h[i + 1].is_string() ? h[i + 1].get<std::string>() : "");
      }
    }
    records.push_back(std::move(r));
  }
  return records;
}

std::vector<Record> consume_at_least(const std::string& topic, std::size_t count,
                                     std::chrono::milliseconds timeout) {
  std::vector<Record> records;
  wait_until(
      [&] {
        records = consume_all(topic);
        // distinct events: a re-sent tail must not make up for events still missing
        std::set<std::string> ids;
        std::size_t without_id = 0;
        for (const auto& r : records) {
          if (const auto id = r.header("id")) {
            ids.insert(*id);
          } else {
            ++without_id;
          }
        }
        return ids.size() + without_id >= count;
      },
      timeout);
  return records;
}

namespace {

struct AdminClient {
  rd_kafka_t* rk = nullptr;
  rd_kafka_queue_t* q = nullptr;
  AdminClient() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", kafka_brokers().c_str(), err, sizeof err) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(err);
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == nullptr) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(err);
    }
    q = rd_kafka_queue_new(rk);
  }
  ~AdminClient() {
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
  }
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;
  rd_kafka_event_t* result() {
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 60000);
    if (ev == nullptr) throw std::runtime_error("kafka admin: no answer in 60 s");
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const std::string e = rd_kafka_event_error_string(ev);
      rd_kafka_event_destroy(ev);
      throw std::runtime_error("kafka admin: " + e);
    }
    return ev;
  }
};

}  // namespace

void create_topic(const std::string& topic, int partitions,
                  const std::vector<std::pair<std::string, std::string>>& configs) {
  AdminClient admin;
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, err, sizeof err);
  if (nt == nullptr) throw std::runtime_error(err);
  for (const auto& [k, v] : configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
  rd_kafka_CreateTopics(admin.rk, &nt, 1, nullptr, admin.q);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_event_t* ev = admin.result();
  size_t n = 0;
  const auto* res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
  const auto code = n == 1 ? rd_kafka_topic_result_error(res[0]) : RD_KAFKA_RESP_ERR__FAIL;
  rd_kafka_event_destroy(ev);
  if (code != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("create topic " + topic + ": " + rd_kafka_err2str(code));
}

std::optional<std::string> topic_config(const std::string& topic, const std::string& name) {
  AdminClient admin;
  rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  rd_kafka_DescribeConfigs(admin.rk, &res, 1, nullptr, admin.q);
  rd_kafka_ConfigResource_destroy(res);
  rd_kafka_event_t* ev = admin.result();
  std::optional<std::string> value;
  size_t n = 0;
  const auto* described =
      rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
  if (n == 1 && rd_kafka_ConfigResource_error(described[0]) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    size_t m = 0;
    const auto* entries = rd_kafka_ConfigResource_configs(described[0], &m);
    for (size_t i = 0; i < m; ++i) {
      if (name == rd_kafka_ConfigEntry_name(entries[i]) && rd_kafka_ConfigEntry_value(entries[i]) != nullptr)
        value = rd_kafka_ConfigEntry_value(entries[i]);
    }
  }
  rd_kafka_event_destroy(ev);
  return value;
}

int topic_partitions(const std::string& topic) {
  std::string out;
  // kcat, an independent client, without asking the broker to create the topic.
  if (run_command("kcat -b " + kafka_brokers() + " -L -J -t " + shell_quote(topic) +
                      " -X allow.auto.create.topics=false 2>/dev/null",
                  &out) != 0)
    return 0;
  const auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.contains("topics")) return 0;
  for (const auto& t : j["topics"]) {
    if (t.value("topic", "") == topic && !t.contains("error") && t.contains("partitions"))
      return static_cast<int>(t["partitions"].size());
  }
  return 0;
}

void kafka_stop() { run_command(shell_quote(source_dir() + "/scripts/kafka.sh") + " stop"); }
void kafka_start() {
  std::string out;
  if (run_command(shell_quote(source_dir() + "/scripts/kafka.sh") + " start 1", &out) != 0) {
    throw std::runtime_error("kafka did not start: " + out);
  }
}
void pg_restart() {
  std::string out;
  if (run_command(shell_quote(source_dir() + "/scripts/pg.sh") + " restart", &out) != 0) {
    throw std::runtime_error("postgres did not restart: " + out);
  }
}

std::string Verdict::summary() const {
  std::string s = "missing=" + std::to_string(missing) + " phantom=" + std::to_string(phantom) +
                  " duplicates=" + std::to_string(duplicates) + " reordered=" + std::to_string(reordered);
  for (const auto& e : examples) s += "; " + e;
  return s;
}

Verdict verify(const std::vector<std::pair<std::string, std::string>>& committed,
               const std::vector<Record>& records) {
  Verdict v;
  auto example = [&v](std::string e) {
    if (v.examples.size() < 5) v.examples.push_back(std::move(e));
  };
  // position of each committed id within its key's sequence
  std::unordered_map<std::string, std::pair<std::string, std::size_t>> expected;
  std::unordered_map<std::string, std::size_t> per_key;
  for (const auto& [id, key] : committed) expected[id] = {key, per_key[key]++};
  std::set<std::string> seen;
  std::unordered_map<std::string, long long> last_pos;  // key -> last first-occurrence position
  for (const auto& r : records) {
    const auto id = r.header("id").value_or("");
    auto it = expected.find(id);
    if (it == expected.end()) {
      ++v.phantom;
      example("phantom id " + id);
      continue;
    }
    if (!seen.insert(id).second) {
      ++v.duplicates;
      continue;
    }
    const auto& [key, pos] = it->second;
    if (r.key != key) {
      ++v.reordered;
      example("id " + id + " has key " + r.key.value_or("<null>") + ", expected " + key);
    }
    auto lp = last_pos.find(key);
    if (lp != last_pos.end() && static_cast<long long>(pos) < lp->second) {
      ++v.reordered;
      example("id " + id + " of key " + key + " arrived after a later event");
    }
    last_pos[key] = std::max<long long>(lp == last_pos.end() ? -1 : lp->second, static_cast<long long>(pos));
  }
  for (const auto& [id, kp] : expected) {
    if (!seen.count(id)) {
      ++v.missing;
      example("missing id " + id);
    }
  }
  return v;
}

}  // namespace outbox_relay::testing
