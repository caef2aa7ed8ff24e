#pragma once
// A metadata-only librdkafka handle beside a producer. librdkafka (2.0) asks for the metadata of a topic
// it has not seen when the topic's handle is made; if the broker does not know the topic yet (it has
// just begun to auto-create it, or a new topic has not reached this broker), librdkafka asks again only
// at its once-a-second topic scan, and the first records into the topic wait that second. The probe asks
// on its own handle until the topic has a leader for every partition, so the producer's own first query
// finds it ready; the producer's metadata and queues are never touched by it.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "kafka/config.h"

struct rd_kafka_s;

namespace outbox_relay::kafka {

class TopicProbe {
 public:
  // `properties`: the producer's (connection and security); the probe is a plain producer that never
  // produces. Nothing connects before the first wait.
  explicit TopicProbe(std::vector<Property> properties);
  ~TopicProbe();
  TopicProbe(const TopicProbe&) = delete;
  TopicProbe& operator=(const TopicProbe&) = delete;

  enum class Result {
    kReady,     // a leader for each of its partitions, and each leader answers for its partition
    kRefused,   // the broker refuses it (authorization, an invalid name) or no probe could be made
    kTimedOut,  // still unknown or leaderless at the timeout, or no broker answered in it
  };
  // Asks for `topic` every 20 ms for up to `timeout` while the broker reports it unknown or leaderless
  // (a metadata request lets the broker auto-create it, when the cluster allows that).
  Result wait_for_leaders(const std::string& topic, std::chrono::milliseconds timeout);

 private:
  struct Deleter {
    void operator()(rd_kafka_s* rk) const;
  };
  std::vector<Property> properties_;
  std::unique_ptr<rd_kafka_s, Deleter> rk_;
  bool unavailable_ = false;  // the handle could not be made: every wait returns false at once
};

}  // namespace outbox_relay::kafka
