// The exactly-once publisher's two producers against librdkafka's mock cluster (transactions included).
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/message.h"
#include "kafka/checkpoint_topic.h"
#include "kafka/config.h"
#include "kafka/transactional_publisher.h"
#include "mock_cluster.h"

using namespace outbox_relay;
using namespace std::chrono_literals;

namespace {

std::vector<core::OutboxMessage> events(int from, int n) {
  std::vector<core::OutboxMessage> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& m = v[static_cast<std::size_t>(i)];
    m.id = std::to_string(from + i);
    m.topic = "events";
    m.key = "k";
    m.value = "v";
  }
  return v;
}

bool all_acked(const std::vector<core::Delivery>& d) {
  for (const auto& x : d) {
    if (x.status != core::DeliveryStatus::kAcked) return false;
  }
  return true;
}

// Both producers of `identity` on `cluster` (one cluster, as on a real one), fenced. (recover() would
// also create the checkpoint topic, which needs a controller the mock lacks.)
std::unique_ptr<kafka::TransactionalPublisher> fenced_publisher(testing::MockCluster& cluster,
                                                                const std::string& identity) {
  kafka::TransactionConfig t;
  t.identity = identity;
  t.checkpoint_topic = "checkpoints";
  t.timeout = 10s;
  auto pub = std::make_unique<kafka::TransactionalPublisher>(
      kafka::producer_properties(cluster.bootstraps(), {{"linger.ms", "0"}, {"message.timeout.ms", "5000"}}),
      t);
  pub->fence();
  return pub;
}

}  // namespace

TEST_CASE(
    "transactional publisher: the next transaction is sent while the previous one commits; commits "
    "close the oldest; abort closes both") {
  testing::MockCluster cluster;
  cluster.create_topic("events", 2);
  const auto owner = fenced_publisher(cluster, "unit.pair");
  auto& pub = *owner;
  REQUIRE(pub.overlapping());

  const auto a = events(1, 3), b = events(4, 3), c = events(7, 2);
  std::vector<core::Delivery> da(a.size()), db(b.size()), dc(c.size());
  pub.begin();
  pub.send(a, da);
  REQUIRE(pub.await(da, 10s));
  CHECK(all_acked(da));
  pub.begin();  // the other producer: both transactions open
  pub.send(b, db);
  core::Checkpoint first;
  first.ids = {"1", "2", "3"};
  CHECK(pub.first().in_transaction());
  pub.commit(first);  // the oldest: a's, on the first producer; b's stays open
  CHECK_FALSE(pub.first().in_transaction());
  REQUIRE(pub.await(db, 10s));
  CHECK(all_acked(db));
  core::Checkpoint second;
  second.ids = {"4", "5", "6"};
  pub.commit(second);
  // Both closed: two more may open, and an abort closes whatever is open.
  pub.begin();
  pub.send(c, dc);
  REQUIRE(pub.await(dc, 10s));
  pub.begin();
  CHECK(pub.first().in_transaction());  // c's (second producer) and this one (first) open
  pub.abort();
  CHECK_FALSE(pub.first().in_transaction());
  pub.begin();
  core::Checkpoint third;
  third.ids = {"9"};
  pub.commit(third);
  // A third open transaction is a dispatcher bug, not something to queue.
  pub.begin();
  pub.begin();
  CHECK_THROWS_AS(pub.begin(), std::logic_error);
  pub.abort();
}

TEST_CASE(
    "transactional publisher: a transaction aborted right after its first records were sent (the "
    "next batch recalled while the previous one commits) leaves both producers usable") {
  testing::MockCluster cluster;
  cluster.create_topic("events", 4);
  const auto owner = fenced_publisher(cluster, "unit.abort");
  auto& pub = *owner;
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    auto a = events(round * 10, 3), b = events(round * 10 + 5, 3);
    for (std::size_t i = 0; i < b.size(); ++i) b[i].key = "k" + std::to_string(i);  // several partitions
    std::vector<core::Delivery> da(a.size()), db(b.size());
    pub.begin();
    pub.send(a, da);
    REQUIRE(pub.await(da, 10s));
    pub.begin();
    pub.send(b, db);  // its partitions are being added to the transaction ...
    core::Checkpoint cp;
    cp.ids = {"x"};
    pub.commit(cp);
    pub.abort();  // ... when it is aborted (the marking of a's rows failed)
    CHECK_FALSE(pub.first().in_transaction());
  }
  // Still usable: a transaction commits.
  auto c = events(1000, 2);
  std::vector<core::Delivery> dc(c.size());
  pub.begin();
  pub.send(c, dc);
  REQUIRE(pub.await(dc, 10s));
  CHECK(all_acked(dc));
  core::Checkpoint cp;
  cp.ids = {"1000", "1001"};
  CHECK_NOTHROW(pub.commit(cp));
}

TEST_CASE(
    "transactional publisher: the expected checkpoint is written once, beside the records; commit writes "
    "it again only when it differs, and the last one is read back") {
  testing::MockCluster cluster;
  cluster.create_topic("events", 2);
  cluster.create_topic("checkpoints", 1);
  const auto owner = fenced_publisher(cluster, "unit.expect");
  auto& pub = *owner;
  auto& first = pub.first();
  const auto a = events(1, 2), b = events(3, 1), c = events(4, 2);
  std::vector<core::Delivery> da(a.size()), db(b.size()), dc(c.size());
  core::Checkpoint ca, cb, cc, cc_settled;
  ca.ids = {"1", "2"};
  cb.ids = {"3"};
  cc.ids = {"4", "5"};
  cc_settled.ids = {"4"};

  pub.begin();  // first producer
  pub.expect(ca);
  pub.send(a, da);
  REQUIRE(pub.await(da, 10s));
  CHECK(first.checkpoint_records() == 1);
  pub.begin();  // second producer: only once a's checkpoint record is acknowledged as well
  CHECK(first.await_checkpoint(0ms));
  pub.expect(cb);
  pub.send(b, db);
  pub.commit(ca);  // as expected: no second record
  CHECK(first.checkpoint_records() == 1);
  REQUIRE(pub.await(db, 10s));
  pub.commit(cb);

  pub.begin();  // first producer again
  pub.expect(cc);
  pub.send(c, dc);
  REQUIRE(pub.await(dc, 10s));
  pub.expect(cc_settled);  // settled otherwise than expected: written again, before ...
  CHECK(first.checkpoint_records() == 3);
  pub.expect(cc_settled);  // (once)
  CHECK(first.checkpoint_records() == 3);
  pub.begin();  // ... the next transaction begins, which waits for it
  CHECK(first.await_checkpoint(0ms));
  pub.commit(cc_settled);
  CHECK(first.checkpoint_records() == 3);
  pub.abort();  // the second producer's, empty

  // commit() with a checkpoint other than the last one written writes it.
  pub.begin();  // the first producer again
  pub.expect(cb);
  pub.commit(cc_settled);
  CHECK(first.checkpoint_records() == 5);

  const auto read = kafka::read_checkpoint(kafka::producer_properties(cluster.bootstraps(), {}),
                                           "checkpoints", "unit.expect", 10s);
  REQUIRE(read.has_value());
  CHECK(read->ids == cc_settled.ids);
}
