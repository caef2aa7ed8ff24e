// bench_loadgen: writes outbox events the way an application does. Each transaction inserts one
// `orders` row and one outbox row per event (K events per transaction when --per-txn K), from several
// connections, at a target rate (open loop: a writer that falls behind catches up without sleeping).
// Records, per event, the CLOCK_MONOTONIC time at which its COMMIT returned (--commit-log), which the
// latency probe compares with the time the record became visible in Kafka.
//
//   bench_loadgen --db-url URL [--layout default|debezium] [--table T] [--connections C] [--per-txn K]
//                 [--payload BYTES] [--rate EVENTS_PER_S (0 = as fast as possible)]
//                 (--count N | --duration SECONDS) [--commit-log FILE] [--writer-base B]
// Prints one JSON line: events, transactions, elapsed seconds, achieved rate, commit latency.

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

namespace {

struct Config {
  std::string url;
  bool debezium = false;
  std::string table;
  unsigned connections = 2;
  int64_t per_txn = 1;
  std::size_t payload = 200;
  double rate = 0;  // events/s over all connections; 0 = unthrottled
  int64_t count = 0;
  double duration = 0;
  unsigned writer_base = 0;
};

struct WriterResult {
  std::vector<std::pair<uint64_t, int64_t>> commits;  // (event id, commit-returned ns)
  std::vector<int64_t> txn_ns;                        // commit round trip of each transaction
  int64_t events = 0;
  std::string error;
};

std::string build_txn(const Config& c, unsigned writer, uint64_t first_seq, int64_t n) {
  const int64_t ts = bench::now_ns();
  std::string sql = "BEGIN;INSERT INTO orders (customer, amount) VALUES ";
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0) sql += ',';
    sql += "('c" + std::to_string(writer) + "'," +
           std::to_string(10 + (first_seq + static_cast<uint64_t>(i)) % 90) + ".50)";
  }
  if (c.debezium) {
    sql += ";INSERT INTO " + c.table + " (id, aggregatetype, aggregateid, type, payload) VALUES ";
  } else {
    sql += ";INSERT INTO " + c.table + " (aggregate_type, aggregate_id, event_type, payload) VALUES ";
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t eid = bench::event_id(writer, first_seq + static_cast<uint64_t>(i));
    if (i > 0) sql += ',';
    sql += c.debezium ? "(gen_random_uuid(),'order','" : "('order','";
    sql += std::to_string(eid) + "','OrderCreated','" + bench::payload(eid, ts, c.payload) + "')";
  }
  sql += ";COMMIT";
  return sql;
}

void writer_loop(const Config& c, unsigned idx, int64_t quota, int64_t start_ns, WriterResult& out) {
  const unsigned writer = c.writer_base + idx;
  PGconn* conn = PQconnectdb(c.url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    out.error = std::string("connect: ") + PQerrorMessage(conn);
    PQfinish(conn);
    return;
  }
  const double txn_interval_ns =
      c.rate > 0 ? 1e9 * static_cast<double>(c.per_txn) * c.connections / c.rate : 0.0;
  // Stagger the writers so their transactions interleave evenly.
  const double offset_ns = txn_interval_ns * idx / c.connections;
  const int64_t deadline = c.duration > 0 ? start_ns + static_cast<int64_t>(c.duration * 1e9) : INT64_MAX;
  uint64_t seq = 0;
  for (int64_t txn = 0;; ++txn) {
    const int64_t n = quota > 0 ? std::min<int64_t>(c.per_txn, quota - out.events) : c.per_txn;
    if (n <= 0) break;
    if (txn_interval_ns > 0) {
      const auto due =
          start_ns + static_cast<int64_t>(offset_ns + txn_interval_ns * static_cast<double>(txn));
      if (due >= deadline || bench::now_ns() >= deadline) break;  // late writers do not run over
      const int64_t wait = due - bench::now_ns();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    } else if (bench::now_ns() >= deadline) {
      break;
    }
    const std::string sql = build_txn(c, writer, seq, n);
    const int64_t t0 = bench::now_ns();
    PGresult* r = PQexec(conn, sql.c_str());
    const int64_t t1 = bench::now_ns();
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) out.error = PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) break;
    out.txn_ns.push_back(t1 - t0);
    for (int64_t i = 0; i < n; ++i)
      out.commits.emplace_back(bench::event_id(writer, seq + static_cast<uint64_t>(i)), t1);
    seq += static_cast<uint64_t>(n);
    out.events += n;
  }
  PQfinish(conn);
}

double percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  return static_cast<double>(v[i]);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::Args a(argc, argv);
    Config c;
    c.url = a.need("db-url");
    c.debezium = a.str("layout", "default") == "debezium";
    c.table = a.str("table", c.debezium ? "dbz_outbox" : "outbox");
    c.connections = static_cast<unsigned>(std::max<int64_t>(1, a.num("connections", 2)));
    c.per_txn = std::max<int64_t>(1, a.num("per-txn", 1));
    c.payload = static_cast<std::size_t>(a.num("payload", 200));
    c.rate = a.real("rate", 0);
    c.count = a.num("count", 0);
    c.duration = a.real("duration", 0);
    c.writer_base = static_cast<unsigned>(a.num("writer-base", 0));
    if (c.count <= 0 && c.duration <= 0) throw std::invalid_argument("give --count or --duration");

    std::vector<WriterResult> results(c.connections);
    std::vector<std::thread> threads;
    const int64_t start = bench::now_ns() + 20'000'000;  // let every writer connect first
    for (unsigned i = 0; i < c.connections; ++i) {
      int64_t quota = 0;
      if (c.count > 0)
        quota = c.count / c.connections + (i < static_cast<unsigned>(c.count % c.connections) ? 1 : 0);
      threads.emplace_back([&, i, quota] { writer_loop(c, i, quota, start, results[i]); });
    }
    for (auto& t : threads) t.join();
    const int64_t end = bench::now_ns();

    std::vector<std::pair<uint64_t, int64_t>> commits;
    std::vector<int64_t> txn_ns;
    int64_t events = 0;
    std::string error;
    for (auto& r : results) {
      commits.insert(commits.end(), r.commits.begin(), r.commits.end());
      txn_ns.insert(txn_ns.end(), r.txn_ns.begin(), r.txn_ns.end());
      events += r.events;
      if (!r.error.empty() && error.empty()) error = r.error;
    }
    if (!a.str("commit-log").empty()) bench::write_pairs(a.str("commit-log"), commits);
    const double elapsed = static_cast<double>(end - start) / 1e9;
    std::printf(
        "{\"events\": %lld, \"transactions\": %zu, \"elapsed_s\": %.3f, \"rate\": %.1f, "
        "\"commit_ms_p50\": %.3f, \"commit_ms_p99\": %.3f, \"start_ns\": %lld, \"end_ns\": %lld}\n",
        static_cast<long long>(events), txn_ns.size(), elapsed, static_cast<double>(events) / elapsed,
        percentile(txn_ns, 0.5) / 1e6, percentile(txn_ns, 0.99) / 1e6, static_cast<long long>(start),
        static_cast<long long>(end));
    if (!error.empty()) {
      std::fprintf(stderr, "bench_loadgen: %s\n", error.c_str());
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_loadgen: %s\n", e.what());
    return 64;
  }
}
