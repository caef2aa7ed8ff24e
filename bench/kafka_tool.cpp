// bench_kafka: the Kafka side of the bench, on librdkafka.
//
//   bench_kafka topics  --brokers B [--partitions P] TOPIC...      create topics (existing ones are fine)
//   bench_kafka consume --brokers B --topic T --out FILE [--expect N] [--timeout S]
//        latency probe: assigns every partition at its current end, prints "ready", then records for
//        each record the CLOCK_MONOTONIC time it was handed to the consumer, keyed by the event id in
//        the record key; stops at N records, on SIGTERM/SIGINT, or after S seconds.
//   bench_kafka watch   --brokers B --topic T --expect N [--timeout S] [--interval-ms MS] [--from-zero]
//        progress without consuming: polls the partitions' high watermarks until they add up to N;
//        reports when the first record and the N-th record became visible.
//   bench_kafka produce --brokers B --topic T --count N [--seconds S] [--payload BYTES] [-X key=value]...
//                       [--rate R --commit-log FILE]
//        the raw producer ceiling: N records shaped like the relay's (key, value, id and event_type
//        headers), with the relay's producer properties (kafka::producer_properties, the same -X).
//        With --rate: paced at R records/s, each one's send time logged as the load generator logs its
//        commits, so the latency probe gives the producer's own share (the floor under the relay's).
//   bench_kafka count   --brokers B --topic T                      sum of the high watermarks
// Each prints one JSON line.

#include <librdkafka/rdkafka.h>
#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "kafka/config.h"

namespace {

std::atomic<bool> g_stop{false};

struct RkDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Rk = std::unique_ptr<rd_kafka_t, RkDeleter>;

Rk make_client(rd_kafka_type_t type, const std::vector<outbox_relay::kafka::Property>& props,
               void (*dr)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(k + ": " + err);
    }
  }
  if (dr != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(err);
  }
  return Rk(rk);
}

// Partition ids of `topic`, waiting (up to 30 s) until it exists and every partition has a leader.
std::vector<int32_t> partitions(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const int64_t deadline = bench::now_ns() + 30'000'000'000LL;
  std::vector<int32_t> out;
  while (bench::now_ns() < deadline) {
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      bool ok = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                md->topics[0].partition_cnt > 0;
      if (ok) {
        out.clear();
        for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
          ok = ok && md->topics[0].partitions[i].leader >= 0;
          out.push_back(md->topics[0].partitions[i].id);
        }
      }
      rd_kafka_metadata_destroy(md);
      if (ok) break;
      out.clear();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  rd_kafka_topic_destroy(t);
  if (out.empty()) throw std::runtime_error("topic \"" + topic + "\" has no partitions with a leader");
  return out;
}

int64_t high_watermarks(rd_kafka_t* rk, const std::string& topic, const std::vector<int32_t>& parts) {
  int64_t sum = 0;
  for (auto p : parts) {
    int64_t lo = 0, hi = 0;
    const auto e = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 5000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    sum += hi;
  }
  return sum;
}

std::vector<outbox_relay::kafka::Property> base_props(const bench::Args& a) {
  return {{"bootstrap.servers", a.need("brokers")}, {"client.id", "outbox-relay-bench"}};
}

int cmd_topics(const bench::Args& a) {
  auto rk = make_client(RD_KAFKA_PRODUCER, base_props(a));
  const int parts = static_cast<int>(a.num("partitions", 3));
  char err[512];
  std::vector<rd_kafka_NewTopic_t*> topics;
  for (size_t i = 1; i < a.positional().size(); ++i) {
    topics.push_back(rd_kafka_NewTopic_new(a.positional()[i].c_str(), parts, -1, err, sizeof err));
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
  rd_kafka_CreateTopics(rk.get(), topics.data(), topics.size(), nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  int failed = 0;
  if (ev == nullptr) {
    std::fprintf(stderr, "bench_kafka topics: no answer\n");
    failed = 1;
  } else {
    size_t n = 0;
    const auto* res = rd_kafka_event_CreateTopics_result(ev);
    const rd_kafka_topic_result_t** tr = rd_kafka_CreateTopics_result_topics(res, &n);
    for (size_t i = 0; i < n; ++i) {
      const auto e = rd_kafka_topic_result_error(tr[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        std::fprintf(stderr, "bench_kafka topics: %s: %s\n", rd_kafka_topic_result_name(tr[i]),
                     rd_kafka_topic_result_error_string(tr[i]));
        failed = 1;
      }
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_queue_destroy(q);
  for (auto* t : topics) rd_kafka_NewTopic_destroy(t);
  if (failed == 0) {
    for (size_t i = 1; i < a.positional().size(); ++i) partitions(rk.get(), a.positional()[i]);
  }
  std::printf("{\"created\": %zu}\n", topics.size());
  return failed;
}

int cmd_consume(const bench::Args& a) {
  auto props = base_props(a);
  props.emplace_back("group.id", "outbox-relay-bench-probe");
  props.emplace_back("enable.auto.commit", "false");
  props.emplace_back("enable.auto.offset.store", "false");
  props.emplace_back("fetch.wait.max.ms", "100");
  auto rk = make_client(RD_KAFKA_CONSUMER, props);
  const std::string topic = a.need("topic");
  const auto parts = partitions(rk.get(), topic);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(parts.size()));
  for (auto p : parts) {
    int64_t lo = 0, hi = 0;
    if (rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &lo, &hi, 10000) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("could not read the end offsets of \"" + topic + "\"");
    }
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = hi;
  }
  rd_kafka_poll_set_consumer(rk.get());
  if (rd_kafka_assign(rk.get(), list) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("assign failed");
  rd_kafka_topic_partition_list_destroy(list);
  std::printf("ready\n");
  std::fflush(stdout);

  const int64_t expect = a.num("expect", 0);
  const int64_t deadline = bench::now_ns() + static_cast<int64_t>(a.real("timeout", 600) * 1e9);
  std::vector<std::pair<uint64_t, int64_t>> seen;
  seen.reserve(static_cast<size_t>(expect > 0 ? expect : 1 << 20));
  int64_t unparsed = 0, first = 0, last = 0;
  while (!g_stop.load() && bench::now_ns() < deadline &&
         (expect == 0 || static_cast<int64_t>(seen.size()) < expect)) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
    if (m == nullptr) continue;
    const int64_t t = bench::now_ns();
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      uint64_t id = 0;
      if (m->key != nullptr && bench::parse_event_id(static_cast<const char*>(m->key), m->key_len, id)) {
        seen.emplace_back(id, t);
        if (first == 0) first = t;
        last = t;
      } else {
        ++unparsed;
      }
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk.get());
  bench::write_pairs(a.need("out"), seen);
  std::printf("{\"count\": %zu, \"unparsed\": %lld, \"first_ns\": %lld, \"last_ns\": %lld}\n", seen.size(),
              static_cast<long long>(unparsed), static_cast<long long>(first), static_cast<long long>(last));
  return 0;
}

int cmd_watch(const bench::Args& a) {
  auto rk = make_client(RD_KAFKA_PRODUCER, base_props(a));
  const std::string topic = a.need("topic");
  const auto parts = partitions(rk.get(), topic);
  // --from-zero counts every record in the topic; otherwise only those that arrive from now on.
  int64_t base = 0;
  if (!a.flag("from-zero")) {
    const int64_t give_up = bench::now_ns() + 10'000'000'000LL;
    while ((base = high_watermarks(rk.get(), topic, parts)) < 0 && bench::now_ns() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (base < 0) throw std::runtime_error("could not read the end offsets of \"" + topic + "\"");
  }
  const int64_t expect = a.num("expect", 1);
  const auto interval = std::chrono::milliseconds(a.num("interval-ms", 20));
  const int64_t deadline = bench::now_ns() + static_cast<int64_t>(a.real("timeout", 600) * 1e9);
  std::printf("ready\n");
  std::fflush(stdout);
  int64_t first = 0, done = 0, count = 0;
  while (!g_stop.load() && bench::now_ns() < deadline) {
    const int64_t hw = high_watermarks(rk.get(), topic, parts);
    const int64_t t = bench::now_ns();
    if (hw >= 0) {
      count = hw - base;
      if (count > 0 && first == 0) first = t;
      if (count >= expect) {
        done = t;
        break;
      }
    }
    std::this_thread::sleep_for(interval);
  }
  std::printf("{\"count\": %lld, \"first_ns\": %lld, \"done_ns\": %lld, \"timed_out\": %s}\n",
              static_cast<long long>(count), static_cast<long long>(first), static_cast<long long>(done),
              done == 0 ? "true" : "false");
  return 0;
}

std::atomic<int64_t> g_delivered{0}, g_failed{0}, g_last_dr{0};

int cmd_produce(const bench::Args& a) {
  auto props = outbox_relay::kafka::producer_properties(a.need("brokers"),
                                                        outbox_relay::kafka::parse_overrides(a.xprops()));
  auto rk = make_client(RD_KAFKA_PRODUCER, props, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      g_delivered.fetch_add(1);
    } else {
      g_failed.fetch_add(1);
    }
    g_last_dr.store(bench::now_ns());
  });
  const std::string topic = a.need("topic");
  partitions(rk.get(), topic);  // connected and warm, as the relay is before its first batch
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
  int64_t n = a.num("count", 100000);
  const auto bytes = static_cast<size_t>(a.num("payload", 200));
  // --seconds: stop producing after this long (a window shared with another ceiling run at once).
  const auto window_ns = static_cast<int64_t>(a.real("seconds", 0) * 1e9);
  const double rate = a.real("rate", 0);
  std::vector<std::pair<uint64_t, int64_t>> sent;
  rusage ru0{};
  getrusage(RUSAGE_SELF, &ru0);
  const int64_t start = bench::now_ns();
  for (int64_t i = 0; i < n; ++i) {
    if (window_ns > 0 && bench::now_ns() - start >= window_ns) {
      n = i;
      break;
    }
    const uint64_t eid = bench::event_id(0, static_cast<uint64_t>(i));
    if (rate > 0) {
      const int64_t due = start + static_cast<int64_t>(static_cast<double>(i) * 1e9 / rate);
      while (bench::now_ns() < due)
        rd_kafka_poll(rk.get(), static_cast<int>(std::min<int64_t>(1, (due - bench::now_ns()) / 1'000'000)));
      sent.emplace_back(eid, bench::now_ns());
    }
    const std::string key = std::to_string(eid);
    const std::string value = bench::payload(eid, start, bytes);
    const std::string id = std::to_string(i + 1);
    rd_kafka_headers_t* h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "id", 2, id.data(), static_cast<ssize_t>(id.size()));
    rd_kafka_header_add(h, "event_type", 10, "OrderCreated", 12);
    for (;;) {
      const auto e =
          rd_kafka_producev(rk.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                            RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk.get(), 10);
        continue;
      }
      rd_kafka_headers_destroy(h);
      g_failed.fetch_add(1);
      break;
    }
    rd_kafka_poll(rk.get(), 0);
  }
  while (g_delivered.load() + g_failed.load() < n && bench::now_ns() - start < 600'000'000'000LL) {
    rd_kafka_poll(rk.get(), 10);
  }
  const int64_t end = g_last_dr.load();
  if (!a.str("commit-log").empty()) bench::write_pairs(a.str("commit-log"), sent);
  rusage ru1{};
  getrusage(RUSAGE_SELF, &ru1);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  const double cpu = secs(ru1.ru_utime) - secs(ru0.ru_utime) + secs(ru1.ru_stime) - secs(ru0.ru_stime);
  rd_kafka_topic_destroy(rkt);
  const double elapsed = static_cast<double>(end - start) / 1e9;
  std::printf(
      "{\"events\": %lld, \"failed\": %lld, \"elapsed_s\": %.3f, \"rate\": %.1f, \"cpu_s\": %.3f, "
      "\"maxrss_kb\": "
      "%ld}\n",
      static_cast<long long>(g_delivered.load()), static_cast<long long>(g_failed.load()), elapsed,
      static_cast<double>(g_delivered.load()) / elapsed, cpu, ru1.ru_maxrss);
  return g_failed.load() == 0 ? 0 : 1;
}

int cmd_count(const bench::Args& a) {
  auto rk = make_client(RD_KAFKA_PRODUCER, base_props(a));
  const std::string topic = a.need("topic");
  std::printf("{\"count\": %lld}\n",
              static_cast<long long>(high_watermarks(rk.get(), topic, partitions(rk.get(), topic))));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGTERM, [](int) { g_stop.store(true); });
  std::signal(SIGINT, [](int) { g_stop.store(true); });
  try {
    bench::Args a(argc, argv);
    const std::string cmd = a.positional().empty() ? "" : a.positional()[0];
    if (cmd == "topics") return cmd_topics(a);
    if (cmd == "consume") return cmd_consume(a);
    if (cmd == "watch") return cmd_watch(a);
    if (cmd == "produce") return cmd_produce(a);
    if (cmd == "count") return cmd_count(a);
    std::fprintf(stderr, "usage: bench_kafka topics|consume|watch|produce|count ...\n");
    return 64;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kafka: %s\n", e.what());
    return 1;
  }
}
