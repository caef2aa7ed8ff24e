#include <doctest/doctest.h>

#include "core/errors.h"
#include "http/probes.h"
#include "http/prometheus.h"
#include "http/server.h"

using namespace outbox_relay;

namespace {

http::ExpositionInfo info() { return {"1.2.3", "poll", 1'700'000'000'000}; }

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("prometheus: counters, labels and build info") {
  core::Metrics m;
  m.add_published({{"outbox.order", 3}, {"outbox.payment", 2}});
  m.add_published({{"outbox.order", 1}});
  m.add_failure("transient", 2);
  m.add_failure("poison");
  m.parked.store(1);
  m.retries.store(2);
  m.reconnects.store(1);
  m.dead_lettered.store(4);
  const auto text = http::render_prometheus(m, info());
  CHECK(has_line(text, R"(outbox_relay_build_info{version="1.2.3",mode="poll"} 1)"));
  CHECK(has_line(text, R"(outbox_relay_events_published_total{topic="outbox.order"} 4)"));
  CHECK(has_line(text, R"(outbox_relay_events_published_total{topic="outbox.payment"} 2)"));
  CHECK(has_line(text, R"(outbox_relay_failures_total{reason="transient"} 2)"));
  CHECK(has_line(text, R"(outbox_relay_failures_total{reason="poison"} 1)"));
  CHECK(has_line(text, "outbox_relay_events_parked_total 1"));
  CHECK(has_line(text, "outbox_relay_events_dead_lettered_total 4"));
  CHECK(has_line(text, "outbox_relay_retries_total 2"));
  CHECK(has_line(text, "outbox_relay_reconnects_total 1"));
  CHECK(has_line(text, "# TYPE outbox_relay_events_published_total counter"));
  CHECK(has_line(text, "outbox_relay_start_time_seconds 1700000000"));
  // Every sample line is "name{labels} value" or "name value"; every metric has HELP and TYPE.
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    REQUIRE(end != std::string::npos);  // ends with a newline
    const auto line = text.substr(start, end - start);
    if (line.rfind("# ", 0) != 0) {
      const auto name = line.substr(0, line.find_first_of("{ "));
      const auto family =
          name.substr(0, name.rfind("_bucket") == name.size() - 7 ? name.size() - 7 : name.size());
      CAPTURE(line);
      CHECK(line.find(' ') != std::string::npos);
      CHECK((text.find("# TYPE " + name + " ") != std::string::npos ||
             text.find("# TYPE " + family + " ") != std::string::npos ||
             text.find("# TYPE " + name.substr(0, name.rfind('_')) + " ") != std::string::npos));
    }
    start = end + 1;
  }
}

TEST_CASE("prometheus: histograms are cumulative with +Inf, sum and count") {
  core::Metrics m;
  m.latency_seconds.observe(0.004);
  m.latency_seconds.observe(0.2);
  m.latency_seconds.observe(100);
  m.batch_size.observe(7);
  const auto text = http::render_prometheus(m, info());
  CHECK(has_line(text, "# TYPE outbox_relay_end_to_end_latency_seconds histogram"));
  CHECK(has_line(text, R"(outbox_relay_end_to_end_latency_seconds_bucket{le="0.001"} 0)"));
  CHECK(has_line(text, R"(outbox_relay_end_to_end_latency_seconds_bucket{le="0.005"} 1)"));
  CHECK(has_line(text, R"(outbox_relay_end_to_end_latency_seconds_bucket{le="0.25"} 2)"));
  CHECK(has_line(text, R"(outbox_relay_end_to_end_latency_seconds_bucket{le="60"} 2)"));
  CHECK(has_line(text, R"(outbox_relay_end_to_end_latency_seconds_bucket{le="+Inf"} 3)"));
  CHECK(has_line(text, "outbox_relay_end_to_end_latency_seconds_count 3"));
  CHECK(has_line(text, "outbox_relay_end_to_end_latency_seconds_sum 100.204"));
  CHECK(has_line(text, R"(outbox_relay_batch_size_bucket{le="10"} 1)"));
  CHECK(has_line(text, "outbox_relay_batch_size_count 1"));
}

TEST_CASE("prometheus: unknown gauges are left out, known ones exported") {
  core::Metrics m;
  auto text = http::render_prometheus(m, info());
  CHECK(text.find("outbox_relay_backlog_rows") == std::string::npos);
  CHECK(text.find("outbox_relay_slot_lag_bytes") == std::string::npos);
  CHECK(text.find("outbox_relay_slot_confirmed_lsn") == std::string::npos);
  CHECK(has_line(text, "outbox_relay_publisher_connected 0"));
  CHECK(has_line(text, "outbox_relay_leader 1"));
  m.backlog_rows.store(12);
  m.oldest_unsent_age_ms.store(2500);
  m.failed_rows.store(0);
  m.slot_lag_bytes.store(4096);
  m.confirmed_lsn.store(0x16B3748);
  m.producer_queue_depth.store(5);
  m.source_connected.store(true);
  m.publisher_connected.store(true);
  m.leader.store(false);
  text = http::render_prometheus(m, info());
  CHECK(has_line(text, "outbox_relay_backlog_rows 12"));
  CHECK(has_line(text, "outbox_relay_oldest_unsent_age_seconds 2.5"));
  CHECK(has_line(text, "outbox_relay_failed_rows 0"));
  CHECK(has_line(text, "outbox_relay_slot_lag_bytes 4096"));
  CHECK(has_line(text, "outbox_relay_slot_confirmed_lsn 23803720"));
  CHECK(has_line(text, "outbox_relay_producer_queue_depth 5"));
  CHECK(has_line(text, "outbox_relay_source_connected 1"));
  CHECK(has_line(text, "outbox_relay_publisher_connected 1"));
  CHECK(has_line(text, "outbox_relay_leader 0"));
}

TEST_CASE("prometheus: label values are escaped") {
  CHECK(http::escape_label_value(R"(a"b\c)") == R"(a\"b\\c)");
  CHECK(http::escape_label_value("x\ny") == R"(x\ny)");
  core::Metrics m;
  m.add_failure("odd \"reason\"\n");
  const auto text = http::render_prometheus(m, info());
  CHECK(has_line(text, R"(outbox_relay_failures_total{reason="odd \"reason\"\n"} 1)"));
}

TEST_CASE("healthz: healthy while the loop heartbeat is within the stall limit") {
  core::DispatcherConfig c;
  c.poll_interval = std::chrono::milliseconds(1000);
  c.delivery_timeout = std::chrono::milliseconds(60000);
  c.backoff_max = std::chrono::milliseconds(10000);
  const auto limit = http::stall_limit(c);
  // A pass may block for the poll interval plus a whole delivery wait plus a backoff.
  CHECK(limit >= c.poll_interval + c.delivery_timeout + c.backoff_max);
  core::Metrics m;
  const int64_t start = 1'000'000;
  // Before the first pass, the start time stands in for the heartbeat.
  CHECK(http::health(m, start + 1000, start, limit).status == 200);
  CHECK(http::health(m, start + limit.count() + 1, start, limit).status == 503);
  m.last_loop_unix_ms.store(start + 500'000);
  const auto ok = http::health(m, start + 500'000 + limit.count(), start, limit);
  CHECK(ok.status == 200);
  CHECK(ok.body.find("ok") == 0);
  const auto stalled = http::health(m, start + 500'000 + limit.count() + 1, start, limit);
  CHECK(stalled.status == 503);
  CHECK(stalled.body.find("stalled") == 0);
}

TEST_CASE("readyz: needs PostgreSQL and Kafka; the body names the role and the cause") {
  core::Metrics m;
  auto r = http::readiness(m);
  CHECK(r.status == 503);
  CHECK(r.body.find("postgresql not connected") != std::string::npos);
  CHECK(r.body.find("kafka not reachable") != std::string::npos);
  m.source_connected.store(true);
  r = http::readiness(m);
  CHECK(r.status == 503);
  CHECK(r.body.find("postgresql") == std::string::npos);
  m.publisher_connected.store(true);
  r = http::readiness(m);
  CHECK(r.status == 200);
  CHECK(r.body == "ready: leader\n");
  m.leader.store(false);
  CHECK(http::readiness(m).body == "ready: standby\n");
}

TEST_CASE("--http-addr forms") {
  auto a = http::parse_listen_address("127.0.0.1:9187");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 9187);
  a = http::parse_listen_address(":9000");
  REQUIRE(a);
  CHECK(a->host == "0.0.0.0");
  a = http::parse_listen_address("[::1]:80");
  REQUIRE(a);
  CHECK(a->host == "::1");
  CHECK_FALSE(http::parse_listen_address("off"));
  CHECK_FALSE(http::parse_listen_address(""));
  CHECK_THROWS_AS((void)http::parse_listen_address("localhost"), core::ConfigError);
  CHECK_THROWS_AS((void)http::parse_listen_address("h:99999"), core::ConfigError);
  CHECK_THROWS_AS((void)http::parse_listen_address("::1:80"), core::ConfigError);
  CHECK_THROWS_WITH_AS((void)http::parse_listen_address("h:x"), doctest::Contains("--http-addr"),
                       core::ConfigError);
}

TEST_CASE("prometheus: transaction metrics only with exactly-once") {
  core::Metrics m;
  CHECK(http::render_prometheus(m, info()).find("outbox_relay_transactions_total") == std::string::npos);
  m.exactly_once.store(true);
  m.transactions_committed.store(7);
  m.transactions_aborted.store(2);
  m.transaction_seconds.observe(0.02);
  const auto text = http::render_prometheus(m, info());
  CHECK(has_line(text, "outbox_relay_transactions_total{outcome=\"committed\"} 7"));
  CHECK(has_line(text, "outbox_relay_transactions_total{outcome=\"aborted\"} 2"));
  CHECK(has_line(text, "outbox_relay_transaction_duration_seconds_count 1"));
}
