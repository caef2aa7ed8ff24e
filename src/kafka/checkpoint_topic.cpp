#include "kafka/checkpoint_topic.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>

#include "core/errors.h"

namespace outbox_relay::kafka {

namespace {

using Clock = std::chrono::steady_clock;

int ms(std::chrono::milliseconds d) { return static_cast<int>(std::max<int64_t>(1, d.count())); }

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
struct ClientDeleter {
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};

// Producer-only properties a consumer would warn about; the rest (brokers, security) carry over.
bool producer_only(const std::string& key) {
  static const std::set<std::string> kKeys = {"acks",
                                              "request.required.acks",
                                              "enable.idempotence",
                                              "linger.ms",
                                              "batch.size",
                                              "batch.num.messages",
                                              "message.timeout.ms",
                                              "queue.buffering.max.messages",
                                              "retry.backoff.ms",
                                              "queue.buffering.max.kbytes",
                                              "transactional.id",
                                              "transaction.timeout.ms",
                                              "max.in.flight.requests.per.connection",
                                              "compression.type",
                                              "compression.codec",
                                              "partitioner",
                                              "enable.gapless.guarantee",
                                              "delivery.timeout.ms",
                                              "retries",
                                              "message.send.max.retries"};
  return kKeys.count(key) > 0;
}

// The result of an admin request on `q`, or core::TransientError naming `what` when there is none in
// time or it failed as a whole.
std::unique_ptr<rd_kafka_event_t, EventDeleter> admin_result(rd_kafka_queue_t* q,
                                                             std::chrono::milliseconds timeout,
                                                             const std::string& what) {
  std::unique_ptr<rd_kafka_event_t, EventDeleter> ev(rd_kafka_queue_poll(q, ms(timeout) + 1000));
  if (!ev) throw core::TransientError(what + ": no answer in time");
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw core::TransientError(what + ": " + rd_kafka_event_error_string(ev.get()));
  return ev;
}

struct ConfigResourceDeleter {
  void operator()(rd_kafka_ConfigResource_t* r) const { rd_kafka_ConfigResource_destroy(r); }
};

// The topic's cleanup.policy as a broker describes it.
std::string cleanup_policy(rd_kafka_t* rk, const std::string& topic, std::chrono::milliseconds timeout) {
  char err[512];
  std::unique_ptr<rd_kafka_ConfigResource_t, ConfigResourceDeleter> res(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> q(rd_kafka_queue_new(rk));
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_AdminOptions_set_request_timeout(opts, ms(timeout), err, sizeof err);
  rd_kafka_ConfigResource_t* resources[] = {res.get()};
  rd_kafka_DescribeConfigs(rk, resources, 1, opts, q.get());
  rd_kafka_AdminOptions_destroy(opts);
  const std::string what = "could not read the configuration of checkpoint topic \"" + topic + "\"";
  const auto ev = admin_result(q.get(), timeout, what);
  size_t n = 0;
  const auto* described =
      rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev.get()), &n);
  if (n != 1) throw core::TransientError(what + ": no answer for it");
  if (const auto code = rd_kafka_ConfigResource_error(described[0]); code != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (code == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
      throw core::ConfigError(what + ": " + rd_kafka_err2str(code) +
                              " (DescribeConfigs on the topic is needed)");
    throw core::TransientError(what + ": " + rd_kafka_err2str(code));
  }
  size_t m = 0;
  const auto* entries = rd_kafka_ConfigResource_configs(described[0], &m);
  for (size_t i = 0; i < m; ++i) {
    if (std::string(rd_kafka_ConfigEntry_name(entries[i])) != "cleanup.policy") continue;
    const char* v = rd_kafka_ConfigEntry_value(entries[i]);
    return v ? v : "";
  }
  throw core::TransientError(what + ": it has no cleanup.policy entry");
}

// An existing checkpoint topic must be compacted: with cleanup.policy=delete the latest checkpoint of
// an identity is deleted after retention.ms (a restart then no longer knows what it published), and
// every start reads the topic's whole history instead of one record per identity. A policy changed a
// moment ago may not have reached the broker that answers yet: asked again for a few seconds.
void require_compacted(rd_kafka_t* rk, const std::string& topic, std::chrono::milliseconds timeout) {
  const auto settle = std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(5));
  const auto deadline = Clock::now() + settle;
  for (;;) {
    const auto policy = cleanup_policy(rk, topic, timeout);
    if (policy.find("compact") != std::string::npos) return;
    if (Clock::now() >= deadline) {
      throw core::ConfigError(
          "checkpoint topic \"" + topic + "\" has cleanup.policy=" + policy +
          ", not compact: its checkpoints would be deleted after retention.ms and each start would read "
          "its whole history; make it compacted (kafka-configs.sh --alter --entity-type topics "
          "--entity-name " +
          topic + " --add-config cleanup.policy=compact) or name a new --checkpoint-topic");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace

void ensure_checkpoint_topic(rd_kafka_s* rk, const std::string& topic, std::chrono::milliseconds timeout) {
  char err[512];
  std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter> nt(
      rd_kafka_NewTopic_new(topic.c_str(), 1, -1, err, sizeof err));
  if (!nt) throw core::ConfigError("--checkpoint-topic \"" + topic + "\": " + err);
  rd_kafka_NewTopic_set_config(nt.get(), "cleanup.policy", "compact");
  // Compaction works on closed segments: keep them small so the read at start stays short.
  rd_kafka_NewTopic_set_config(nt.get(), "segment.bytes", "16777216");
  rd_kafka_NewTopic_set_config(nt.get(), "segment.ms", "3600000");
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> q(rd_kafka_queue_new(rk));
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(opts, ms(timeout), err, sizeof err);
  rd_kafka_NewTopic_t* topics[] = {nt.get()};
  rd_kafka_CreateTopics(rk, topics, 1, opts, q.get());
  rd_kafka_AdminOptions_destroy(opts);
  const auto ev = admin_result(q.get(), timeout, "could not create checkpoint topic \"" + topic + "\"");
  size_t n = 0;
  const auto* res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    const auto code = rd_kafka_topic_result_error(res[i]);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::info("created checkpoint topic \"{}\" (compacted)", topic);
    } else if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      require_compacted(rk, topic, timeout);
    } else {
      const std::string why = rd_kafka_topic_result_error_string(res[i])
                                  ? rd_kafka_topic_result_error_string(res[i])
                                  : rd_kafka_err2str(code);
      if (code == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED || code == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION ||
          code == RD_KAFKA_RESP_ERR_POLICY_VIOLATION || code == RD_KAFKA_RESP_ERR_INVALID_CONFIG) {
        throw core::ConfigError("could not create checkpoint topic \"" + topic + "\": " + why);
      }
      throw core::TransientError("could not create checkpoint topic \"" + topic + "\": " + why);
    }
  }
}

std::optional<core::Checkpoint> read_checkpoint(const std::vector<Property>& properties,
                                                const std::string& topic, const std::string& identity,
                                                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<Property> props;
  for (const auto& p : properties) {
    if (!producer_only(p.first)) props.push_back(p);
  }
  props.emplace_back("enable.auto.commit", "false");
  props.emplace_back("enable.partition.eof", "true");
  props.emplace_back("auto.offset.reset", "earliest");
  // The end of a partition is seen when a fetch comes back short; the broker holds an empty fetch for
  // this long first (500 ms by default, which a start would wait for).
  props.emplace_back("fetch.wait.max.ms", "10");
  props.emplace_back("group.id",
                     "outbox-relay-checkpoint-reader");  // required by librdkafka; never committed
  props.emplace_back("client.id", "outbox-relay-checkpoint");
  auto consumer = [&props](const char* isolation) {
    auto all = props;
    all.emplace_back("isolation.level", isolation);
    rd_kafka_conf_t* conf = new_conf(all);
    rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int level, const char* fac, const char* buf) {
      if (level <= 2)
        spdlog::error("kafka checkpoint reader {}: {}", fac, buf);
      else
        spdlog::debug("kafka checkpoint reader {}: {}", fac, buf);
    });
    char err[512];
    rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (raw == nullptr) {
      rd_kafka_conf_destroy(conf);
      throw core::ConfigError(std::string("kafka checkpoint reader: ") + err);
    }
    return std::unique_ptr<rd_kafka_t, ClientDeleter>(raw);
  };
  auto rk = consumer("read_committed");

  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> rkt(
      rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  // A topic created a moment ago (ensure_checkpoint_topic) may not be known to every broker yet: ask
  // again until it is, within the deadline.
  std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> md(
      nullptr, &rd_kafka_metadata_destroy);
  for (;;) {
    const rd_kafka_metadata_t* raw_md = nullptr;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto merr = rd_kafka_metadata(rk.get(), 0, rkt.get(), &raw_md, ms(left));
    if (merr != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw core::TransientError("could not read checkpoint topic \"" + topic +
                                 "\": " + rd_kafka_err2str(merr));
    }
    md.reset(raw_md);
    const bool known = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                       md->topics[0].partition_cnt > 0;
    if (known) break;
    const bool pending =
        md->topic_cnt == 1 && (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                               md->topics[0].err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    if (!pending || Clock::now() >= deadline) {
      throw core::TransientError("could not read checkpoint topic \"" + topic + "\": " +
                                 (md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "no metadata"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // between metadata requests
  }
  std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter> parts(
      rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt));
  std::set<int32_t> open;
  for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
    const auto p = md->topics[0].partitions[i].id;
    rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    open.insert(p);
  }
  // The end to read to: every record written before this read began, the identity's last checkpoint
  // included. A read_committed consumer reports the end of a partition at its last stable offset,
  // which stays below a transaction still open there (another relay's, sharing the topic): committed
  // records behind it are not read until it ends. Stopping there would return an older checkpoint of
  // ours, and its events would be sent again. So the end is the high watermark, asked by a
  // read_uncommitted client (a read_committed one is told the last stable offset instead).
  std::map<int32_t, int64_t> end;
  const auto ender = consumer("read_uncommitted");
  for (const auto p : open) {
    int64_t lo = 0, hi = 0;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto werr = rd_kafka_query_watermark_offsets(ender.get(), topic.c_str(), p, &lo, &hi, ms(left));
    if (werr != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw core::TransientError("could not read the end of checkpoint topic \"" + topic +
                                 "\": " + rd_kafka_err2str(werr));
    }
    end[p] = hi;
  }
  if (const auto aerr = rd_kafka_assign(rk.get(), parts.get()); aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw core::TransientError("could not read checkpoint topic \"" + topic +
                               "\": " + rd_kafka_err2str(aerr));
  }
  std::optional<std::string> latest;
  std::size_t records = 0;
  bool waiting = false;
  while (!open.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      throw core::TransientError("could not read checkpoint topic \"" + topic + "\" to its end within " +
                                 std::to_string(timeout.count()) +
                                 " ms (a transaction open there all that time?)");
    }
    rd_kafka_message_t* m =
        rd_kafka_consumer_poll(rk.get(), static_cast<int>(std::min<int64_t>(left.count(), 200)));
    if (m == nullptr) continue;
    std::unique_ptr<rd_kafka_message_t, decltype(&rd_kafka_message_destroy)> msg(m,
                                                                                 &rd_kafka_message_destroy);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // m->offset: where this read stands. Below the end: a transaction is open in between.
      if (m->offset >= end[m->partition]) {
        open.erase(m->partition);
      } else if (!waiting) {
        waiting = true;
        spdlog::info("checkpoint topic \"{}\" [{}]: waiting for a transaction open at offset {} to end",
                     topic, m->partition, m->offset);
      }
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw core::TransientError("could not read checkpoint topic \"" + topic +
                                 "\": " + rd_kafka_message_errstr(m));
    }
    ++records;
    const std::string key(static_cast<const char*>(m->key), m->key_len);
    if (key != identity) continue;
    if (m->payload == nullptr) {
      latest.reset();  // a tombstone: the checkpoint was deleted
    } else {
      latest.emplace(static_cast<const char*>(m->payload), m->len);
    }
  }
  spdlog::debug("read {} records of checkpoint topic \"{}\"", records, topic);
  if (!latest) return std::nullopt;
  try {
    auto d = core::decode_checkpoint(*latest);
    if (d.identity != identity) {
      throw std::invalid_argument("it names relay \"" + d.identity + "\"");
    }
    return d.checkpoint;
  } catch (const std::invalid_argument& e) {
    throw core::FatalError("the checkpoint of \"" + identity + "\" in topic \"" + topic +
                           "\" cannot be read (" + e.what() + "); refusing to guess what was published");
  }
}

}  // namespace outbox_relay::kafka
