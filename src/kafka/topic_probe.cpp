#include "kafka/topic_probe.h"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <thread>

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

TopicReadiness wait_for_leaders(rd_kafka_s* rk, const std::string& topic, std::chrono::milliseconds timeout) {
  std::unique_ptr<rd_kafka_topic_t, void (*)(rd_kafka_topic_t*)> rkt(
      rd_kafka_topic_new(rk, topic.c_str(), nullptr), rd_kafka_topic_destroy);
  if (!rkt) return TopicReadiness::kRefused;  // an invalid name
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return TopicReadiness::kTimedOut;
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk, 0, rkt.get(), &md, static_cast<int>(left.count())) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return TopicReadiness::kTimedOut;  // no broker answered in time
    }
    auto r = readiness(*md);
    const int partitions = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
    rd_kafka_metadata_destroy(md);
    if (r == Readiness::kRefused) return TopicReadiness::kRefused;
    // Metadata names a partition's leader before that broker has taken the partition (see the header):
    // ready only once every partition's leader answers for it (ListOffsets asks what a produce does).
    for (int p = 0; r == Readiness::kReady && p < partitions; ++p) {
      int64_t low = 0, high = 0;
      const auto left_now =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left_now.count() <= 0) return TopicReadiness::kTimedOut;
      if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high,
                                           static_cast<int>(left_now.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
        r = Readiness::kNotYet;
    }
    if (r == Readiness::kReady) return TopicReadiness::kReady;
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds(20), left));
  }
}

}  // namespace outbox_relay::kafka
