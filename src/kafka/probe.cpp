#include "kafka/probe.h"

#include <librdkafka/rdkafka.h>

#include <memory>

#include "core/errors.h"

namespace outbox_relay::kafka {

ClusterInfo probe_cluster(const std::vector<Property>& properties, std::chrono::milliseconds timeout) {
  char err[512];
  rd_kafka_conf_t* conf = new_conf(properties);
  // Quiet: the failure is reported once, by the caller, from the metadata error.
  rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int, const char*, const char*) {});
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (raw == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw core::ConfigError(std::string("kafka client: ") + err);
  }
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> rk(raw, &rd_kafka_destroy);
  const struct rd_kafka_metadata* md = nullptr;
  const auto e = rd_kafka_metadata(rk.get(), 1, nullptr, &md, static_cast<int>(timeout.count()));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw core::TransientError(std::string("could not reach kafka: ") + rd_kafka_err2str(e));
  }
  std::unique_ptr<const struct rd_kafka_metadata, decltype(&rd_kafka_metadata_destroy)> guard(
      md, &rd_kafka_metadata_destroy);
  ClusterInfo info;
  info.brokers = md->broker_cnt;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) info.topics.insert(md->topics[i].topic);
  }
  return info;
}

}  // namespace outbox_relay::kafka
