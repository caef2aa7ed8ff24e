#pragma once
// Waiting for a topic to be writable: after the checkpoint topic is created, before it is read and
// written. A topic is created asynchronously, and a broker's metadata names a partition's leader before
// that broker has taken the partition: a produce request in between fails, and one sent a moment later
// succeeds, and an idempotent producer's first records to the partition then go missing (the broker
// takes the later sequence number as the first, and the retried earlier records count as duplicates,
// reported delivered). Event topics are not waited for this way: see Producer::topic().

#include <chrono>
#include <string>

struct rd_kafka_s;

namespace outbox_relay::kafka {

enum class TopicReadiness {
  kReady,     // a leader for each of its partitions, and each leader answers for its partition
  kRefused,   // the broker refuses it (authorization, an invalid name)
  kTimedOut,  // still unknown or leaderless at the timeout, or no broker answered in it
};

// Asks `rk` (any client handle) for `topic` every 20 ms for up to `timeout` while the broker reports it
// unknown or leaderless, then has every partition's leader answer for it (ListOffsets). A metadata
// request lets a broker that auto-creates topics create it.
TopicReadiness wait_for_leaders(rd_kafka_s* rk, const std::string& topic, std::chrono::milliseconds timeout);

}  // namespace outbox_relay::kafka
