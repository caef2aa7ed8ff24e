#include "kafka/topic_probe.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "core/errors.h"

namespace outbox_relay::kafka {

namespace {

enum class Readiness { kReady, kNotYet, kRefused };

Readiness readiness(const rd_kafka_metadata_t& md) {
  if (md.topic_cnt != 1) return Readiness::kNotYet;
  const auto& t = md.topics[0];
  switch (t.err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      break;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
      return Readiness::kNotYet;  // being created, or not yet on this broker
    default:
      return Readiness::kRefused;
  }
  if (t.partition_cnt <= 0) return Readiness::kNotYet;
  for (int i = 0; i < t.partition_cnt; ++i) {
    if (t.partitions[i].leader < 0) return Readiness::kNotYet;
  }
  return Readiness::kReady;
}

}  // namespace

void TopicProbe::Deleter::operator()(rd_kafka_s* rk) const { rd_kafka_destroy(rk); }

TopicProbe::TopicProbe(std::vector<Property> properties) : properties_(std::move(properties)) {}

TopicProbe::~TopicProbe() = default;

TopicProbe::Result TopicProbe::wait_for_leaders(const std::string& topic, std::chrono::milliseconds timeout) {
  if (!rk_ && !unavailable_) {
    auto props = properties_;
    props.emplace_back("enable.idempotence", "false");  // never produces: no producer id to ask for
    props.emplace_back("client.id", "outbox-relay-topic-probe");
    char err[512];
    rd_kafka_conf_t* conf = nullptr;
    try {
      conf = new_conf(props);
    } catch (const core::ConfigError& e) {
      spdlog::debug("no topic probe: {}", e.what());
      unavailable_ = true;
      return Result::kRefused;
    }
    rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int level, const char* fac, const char* buf) {
      if (level <= 3) spdlog::debug("kafka topic probe {}: {}", fac, buf);
    });
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == nullptr) {
      rd_kafka_conf_destroy(conf);
      spdlog::debug("no topic probe: {}", err);
      unavailable_ = true;
      return Result::kRefused;
    }
    rk_.reset(rk);
  }
  if (!rk_) return Result::kRefused;
  std::unique_ptr<rd_kafka_topic_t, void (*)(rd_kafka_topic_t*)> rkt(
      rd_kafka_topic_new(rk_.get(), topic.c_str(), nullptr), rd_kafka_topic_destroy);
  if (!rkt) return Result::kRefused;  // an invalid name
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Result::kTimedOut;
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk_.get(), 0, rkt.get(), &md, static_cast<int>(left.count())) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Result::kTimedOut;  // no broker answered in time
    }
    auto r = readiness(*md);
    const int partitions = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
    rd_kafka_metadata_destroy(md);
    if (r == Readiness::kRefused) return Result::kRefused;
    // Metadata names a partition's leader before that broker has made itself leader of it. A produce
    // request in between fails, and one sent just after it succeeds: an idempotent producer's first
    // records to the partition then go missing (the broker takes the later sequence as the first, and
    // the retried earlier ones count as duplicates, reported delivered). So the topic is ready only
    // once every partition's leader answers for it (ListOffsets, which asks the same of the broker).
    for (int p = 0; r == Readiness::kReady && p < partitions; ++p) {
      int64_t low = 0, high = 0;
      const auto left_now =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left_now.count() <= 0) return Result::kTimedOut;
      if (rd_kafka_query_watermark_offsets(rk_.get(), topic.c_str(), p, &low, &high,
                                           static_cast<int>(left_now.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
        r = Readiness::kNotYet;
    }
    if (r == Readiness::kReady) return Result::kReady;
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds(20), left));
  }
}

}  // namespace outbox_relay::kafka
