#pragma once
// Concurrent application writers for integration tests: each transaction inserts an order row and its
// outbox event, some roll back. Returns what committed, per key in commit order.

#include <atomic>
#include <string>
#include <utility>
#include <vector>

namespace outbox_relay::testing {

struct WriteLoad {
  int writers = 4;
  int events_per_writer = 500;
  int rollback_every = 7;  // every Nth transaction of a writer rolls back (0 = never)
  int aggregates_per_writer = 3;
  std::string topic;                        // written into the topic column
  std::string payload_padding;              // appended to each payload
  const std::atomic<bool>* stop = nullptr;  // ends the load early when set
};

// Creates the orders table if needed. (id, key) of committed events, per key in commit order; keys
// are owned by one writer each, so a writer's commit order is the key's commit order. Writers retry
// a transaction whose connection broke (the PostgreSQL-restart test) and count it only if it committed.
std::vector<std::pair<std::string, std::string>> write_events(const std::string& url, const WriteLoad& load);

}  // namespace outbox_relay::testing
