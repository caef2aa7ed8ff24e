#pragma once
// The poll source's settings, apart from the source itself so that options and tests can name them
// without pulling in libpqxx.

#include <chrono>
#include <string>

namespace outbox_relay::pg {

enum class OnSent { kDelete, kMark };

struct PollSourceConfig {
  std::string conninfo;          // may hold a password: never logged
  std::string table = "outbox";  // optionally schema-qualified
  OnSent on_sent = OnSent::kDelete;
  std::string notify_channel = "outbox_relay";
  // High availability: the relay that holds a session advisory lock (keyed by table and shard)
  // publishes; others stand by and retry every standby_interval. Several relays with distinct
  // shards publish side by side: shard i of n takes the keys with hash(key) mod n = i.
  int shard_index = 0;
  int shard_count = 1;
  std::chrono::milliseconds standby_interval{500};
  // Bounds how long the server keeps a claim of a dead or paused relay (its session is ended, its
  // locks and lead released): idle_in_transaction_session_timeout and TCP keepalives.
  std::chrono::milliseconds session_timeout{60000};
  // --on-poison=block: skip keys that have a parked (failed) event.
  bool skip_blocked_keys = false;
  // A second session claims the next batch while the first one's is published (pipeline_depth 2).
  bool pipeline = true;
  // Claim order (commit order per aggregate relies on it); empty = the id column. A Debezium table's
  // uuid id has no order: give it a sequence or timestamp column here, or use WAL mode.
  std::string order_column;
  // A claim order that is not an ordering (a uuid) is refused at open() unless this is set (--unordered).
  bool allow_unordered = false;
  // Watermark (integer id claimed in id order): a claim starts past the ids known to be done, so it
  // does not walk the index entries of sent rows that vacuum cannot remove yet (an old snapshot
  // elsewhere). A claim after an empty one (at most once a second) and one every full_scan_interval
  // start from the head: a row made pending again below the watermark (replay, a resolved block) waits
  // at most that long.
  std::chrono::milliseconds full_scan_interval{10000};
  // The claim-and-mark transactions commit without waiting for their WAL flush (synchronous_commit =
  // off on the relay's sessions): a mark lost in a server crash only makes its rows pending again, to
  // be published again (at-least-once), and the marking no longer waits on an fsync. Not with
  // exactly-once, whose next checkpoint no longer names a batch once its marking has committed.
  bool async_commit = false;
};

}  // namespace outbox_relay::pg
