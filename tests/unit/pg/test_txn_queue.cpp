#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pg/decode/txn_queue.h"

namespace pg = outbox_relay::pg;
namespace core = outbox_relay::core;
using core::DeliveryStatus;

namespace {

// A transaction ending at `end` with `n` records (ids "<end>.<i>") and `rejected` rejected rows.
pg::Transaction txn(uint64_t end, std::size_t n, std::size_t rejected = 0) {
  pg::Transaction t;
  t.end_lsn = end;
  for (std::size_t i = 0; i < n; ++i) {
    core::OutboxMessage m;
    m.id = std::to_string(end) + "." + std::to_string(i);
    m.topic = "t";
    m.position = end;
    t.messages.push_back(m);
  }
  for (std::size_t i = 0; i < rejected; ++i) {
    core::RejectedRow r;
    r.row.id = std::to_string(end) + ".r" + std::to_string(i);
    r.row.position = end;
    r.error = "bad";
    t.rejected.push_back(r);
  }
  t.bytes = 100 * (n + rejected);
  return t;
}

// The plan for a batch's deliveries, settled as the WAL source settles them.
pg::TxnQueue::CommitPlan settled_plan(const pg::TxnQueue& q, const core::Batch& b,
                                      const std::vector<core::Delivery>& d) {
  return q.plan(b, core::settle(b, d, core::Ordering::kPrefix));
}

std::vector<core::Delivery> all(std::size_t n, DeliveryStatus s) {
  std::vector<core::Delivery> d(n);
  for (auto& x : d) x.status = s;
  return d;
}

std::vector<std::string> ids(const core::Batch& b) {
  std::vector<std::string> out;
  for (const auto& m : b.messages) out.push_back(m.id);
  return out;
}

}  // namespace

TEST_CASE("wal queue: batches are whole transactions up to max; a larger one comes alone") {
  pg::TxnQueue q(100);
  CHECK(q.push(txn(110, 2)));
  CHECK(q.push(txn(120, 2)));
  CHECK(q.push(txn(130, 5)));
  CHECK(q.push(txn(140, 1)));
  CHECK(q.ready_records() == 10);
  CHECK(q.ready_bytes() == 1000);

  auto b = q.take(3);  // 2 fit, 2+2 would not
  CHECK(ids(b) == std::vector<std::string>{"110.0", "110.1"});
  CHECK(b.end_position == 110);
  CHECK(q.in_flight());
  CHECK(q.ready_records() == 8);
  auto plan = settled_plan(q, b, all(2, DeliveryStatus::kAcked));
  CHECK(plan.confirm == 110);
  CHECK_FALSE(plan.retry);
  q.finish(plan, b);
  CHECK(q.confirmed() == 110);
  CHECK_FALSE(q.in_flight());

  b = q.take(4);
  CHECK(b.messages.size() == 2);  // 120 (2) + 130 (5) > 4
  q.finish(settled_plan(q, b, all(2, DeliveryStatus::kAcked)), b);

  b = q.take(4);  // 130 alone, larger than max: never split
  CHECK(b.messages.size() == 5);
  CHECK(b.end_position == 130);
  q.finish(settled_plan(q, b, all(5, DeliveryStatus::kAcked)), b);
  CHECK(q.confirmed() == 130);
}

TEST_CASE("wal queue: transactions without records ride along, or are confirmed at once when alone") {
  pg::TxnQueue q(100);
  q.push(txn(110, 0));
  q.push(txn(120, 0));
  auto b = q.take(10);
  CHECK(b.empty());
  CHECK(b.end_position == 120);
  CHECK(q.confirmed() == 120);
  CHECK_FALSE(q.in_flight());
  CHECK(q.idle());

  q.push(txn(130, 1));
  q.push(txn(140, 0));
  q.push(txn(150, 1));
  b = q.take(1);  // 130 (1) + 140 (0) fit; 150 would make 2
  CHECK(b.messages.size() == 1);
  CHECK(b.end_position == 140);
  q.finish(settled_plan(q, b, all(1, DeliveryStatus::kAcked)), b);
  CHECK(q.confirmed() == 140);
}

TEST_CASE("wal queue: two batches in flight are committed oldest first; a retry recalls the later one") {
  pg::TxnQueue q(100);
  q.push(txn(110, 2));
  q.push(txn(120, 0));
  q.push(txn(130, 2));
  q.push(txn(140, 2));
  q.push(txn(150, 0));
  auto a = q.take(3);  // 110 (2) + 120 (0); 130 would make 4
  CHECK(a.end_position == 120);
  auto b = q.take(2);  // behind a: 130
  CHECK(ids(b) == std::vector<std::string>{"130.0", "130.1"});
  CHECK(q.batches_in_flight() == 2);
  CHECK_THROWS_AS((void)q.take(10), std::logic_error);  // two at most
  CHECK_THROWS_AS((void)settled_plan(q, b, all(2, DeliveryStatus::kAcked)),
                  std::logic_error);  // oldest first
  q.finish(settled_plan(q, a, all(2, DeliveryStatus::kAcked)), a);
  CHECK(q.confirmed() == 120);
  CHECK(q.batches_in_flight() == 1);
  CHECK(q.in_flight());
  auto c = q.take(10);  // behind b: 140 and the record-less 150
  CHECK(c.end_position == 150);
  q.finish(settled_plan(q, b, all(2, DeliveryStatus::kAcked)), b);
  q.finish(settled_plan(q, c, all(2, DeliveryStatus::kAcked)), c);
  CHECK(q.confirmed() == 150);
  CHECK(q.idle());

  // Behind a batch in flight, record-less transactions alone are not taken (they would confirm past it).
  q.push(txn(160, 1));
  q.push(txn(170, 0));
  a = q.take(1);
  CHECK(a.end_position == 170);
  q.push(txn(180, 0));
  b = q.take(10);
  CHECK(b.empty());
  CHECK(q.confirmed() == 150);
  CHECK(q.batches_in_flight() == 1);
  q.finish(settled_plan(q, a, all(1, DeliveryStatus::kAcked)), a);
  CHECK(q.confirmed() == 170);

  // The first batch fails part-way: it and the whole second batch go back to ready, in order.
  q.push(txn(190, 2));
  q.push(txn(200, 1));
  a = q.take(3);  // 180 (0) + 190 (2); 200 would make 3 -- fits: 2 + 1 <= 3
  CHECK(a.end_position == 200);
  q.push(txn(210, 1));
  b = q.take(5);
  CHECK(b.end_position == 210);
  auto d = all(3, DeliveryStatus::kAcked);
  d[2].status = DeliveryStatus::kRetriable;  // 200's record
  const auto plan = settled_plan(q, a, d);
  CHECK(plan.retry);
  CHECK(plan.confirm == 190);
  q.finish(plan, a);
  CHECK(q.confirmed() == 190);
  CHECK(q.batches_in_flight() == 1);                    // b: its events must follow 200's
  CHECK_THROWS_AS((void)q.take(10), std::logic_error);  // not before b is abandoned
  q.abandon(b);
  CHECK_FALSE(q.in_flight());
  CHECK(q.batches_in_flight() == 0);
  CHECK(q.ready_records() == 2);
  a = q.take(10);
  CHECK(ids(a) == std::vector<std::string>{"200.0", "210.0"});
}

TEST_CASE(
    "wal queue: transactions at or before the confirmed position are dropped (re-sent after a restart)") {
  pg::TxnQueue q(200);
  CHECK_FALSE(q.push(txn(150, 1)));
  CHECK_FALSE(q.push(txn(200, 1)));
  CHECK(q.push(txn(201, 1)));
  CHECK(q.ready_records() == 1);
}

TEST_CASE(
    "wal queue: a retriable delivery stops the position before its transaction; the tail comes back in "
    "order") {
  pg::TxnQueue q(100);
  q.push(txn(110, 2));
  q.push(txn(120, 2));
  q.push(txn(130, 2));
  q.push(txn(140, 1));
  auto b = q.take(6);
  REQUIRE(b.messages.size() == 6);
  auto d = all(6, DeliveryStatus::kAcked);
  d[3].status = DeliveryStatus::kRetriable;  // second record of txn 120
  d[4].status = DeliveryStatus::kPoison;     // in txn 130: after the failure, not parked yet
  const auto plan = settled_plan(q, b, d);
  CHECK(plan.confirm == 110);
  CHECK(plan.retry);
  CHECK(plan.park_messages.empty());
  q.finish(plan, b);
  CHECK(q.confirmed() == 110);
  CHECK_FALSE(q.in_flight());
  CHECK(q.ready_records() == 5);  // 120, 130 back in front of 140

  b = q.take(100);
  CHECK(ids(b) == std::vector<std::string>{"120.0", "120.1", "130.0", "130.1", "140.0"});
  d = all(5, DeliveryStatus::kAcked);
  d[2].status = DeliveryStatus::kPoison;
  const auto plan2 = settled_plan(q, b, d);
  CHECK(plan2.confirm == 140);
  CHECK(plan2.park_messages == std::vector<std::size_t>{2});
  q.finish(plan2, b);
  CHECK(q.confirmed() == 140);
  CHECK(q.idle());
}

TEST_CASE(
    "wal queue: a pending delivery counts as not final; a failure in the first transaction confirms "
    "nothing") {
  pg::TxnQueue q(100);
  q.push(txn(110, 1));
  q.push(txn(120, 1));
  auto b = q.take(10);
  auto d = all(2, DeliveryStatus::kAcked);
  d[0].status = DeliveryStatus::kPending;
  const auto plan = settled_plan(q, b, d);
  CHECK(plan.confirm == 100);
  CHECK(plan.retry);
  q.finish(plan, b);
  CHECK(q.confirmed() == 100);
  CHECK(q.ready_records() == 2);
}

TEST_CASE("wal queue: rejected rows are parked with their transaction's confirmation only") {
  pg::TxnQueue q(100);
  q.push(txn(110, 1, 1));
  q.push(txn(120, 1, 2));
  auto b = q.take(10);
  REQUIRE(b.rejected.size() == 3);
  auto d = all(2, DeliveryStatus::kAcked);
  d[1].status = DeliveryStatus::kRetriable;
  auto plan = settled_plan(q, b, d);
  CHECK(plan.confirm == 110);
  CHECK(plan.park_rejected == std::vector<std::size_t>{0});
  q.finish(plan, b);
  b = q.take(10);
  CHECK(b.rejected.size() == 2);
  plan = settled_plan(q, b, all(1, DeliveryStatus::kAcked));
  CHECK(plan.park_rejected == std::vector<std::size_t>{0, 1});
  CHECK(plan.confirm == 120);
}

TEST_CASE("wal queue: a batch of rejected rows only is confirmed by commit") {
  pg::TxnQueue q(100);
  q.push(txn(110, 0, 2));
  auto b = q.take(10);
  CHECK_FALSE(b.empty());
  CHECK(q.confirmed() == 100);
  const auto plan = settled_plan(q, b, {});
  CHECK(plan.confirm == 110);
  CHECK(plan.park_rejected.size() == 2);
}

TEST_CASE("wal queue: abandon puts the whole batch back in front") {
  pg::TxnQueue q(100);
  q.push(txn(110, 1));
  q.push(txn(120, 1));
  auto b = q.take(1);
  q.push(txn(130, 1));  // arrived while 110 was in flight
  q.abandon(b);
  CHECK(q.confirmed() == 100);
  CHECK_FALSE(q.in_flight());
  CHECK(q.ready_records() == 3);
  b = q.take(10);
  CHECK(ids(b) == std::vector<std::string>{"110.0", "120.0", "130.0"});
  q.abandon(b);
  q.abandon(b);  // idempotent
  CHECK(q.ready_records() == 3);
  // Two batches abandoned in either order come back in stream order.
  auto first = q.take(1);
  auto second = q.take(1);
  q.abandon(first);
  q.abandon(second);
  CHECK(ids(q.take(10)) == std::vector<std::string>{"110.0", "120.0", "130.0"});
}

TEST_CASE("wal queue: the idle position moves confirmed only when nothing is ready or in flight") {
  pg::TxnQueue q(100);
  CHECK(q.advance_idle(150));
  CHECK(q.confirmed() == 150);
  CHECK_FALSE(q.advance_idle(140));  // never backwards
  q.push(txn(160, 1));
  CHECK_FALSE(q.advance_idle(170));
  auto b = q.take(10);
  CHECK_FALSE(q.advance_idle(170));
  q.finish(settled_plan(q, b, all(1, DeliveryStatus::kAcked)), b);
  CHECK(q.advance_idle(170));
  CHECK(q.confirmed() == 170);
}

TEST_CASE("wal queue: commit of something that is not the batch in flight is refused") {
  pg::TxnQueue q(100);
  q.push(txn(110, 1));
  core::Batch other;
  other.end_position = 110;
  other.messages.resize(1);
  CHECK_THROWS_AS((void)settled_plan(q, other, all(1, DeliveryStatus::kAcked)),
                  std::logic_error);  // nothing in flight
  auto b = q.take(10);
  CHECK_THROWS_AS((void)settled_plan(q, b, all(2, DeliveryStatus::kAcked)), std::invalid_argument);
  other.source_tag = b.source_tag + 1;  // a batch the queue did not hand out
  CHECK_THROWS_AS((void)settled_plan(q, other, all(1, DeliveryStatus::kAcked)), std::logic_error);
}

TEST_CASE("wal queue: reset drops everything") {
  pg::TxnQueue q(100);
  q.push(txn(110, 1));
  (void)q.take(10);
  q.push(txn(120, 1));
  q.reset(105);
  CHECK(q.idle());
  CHECK(q.confirmed() == 105);
  CHECK(q.ready_records() == 0);
  CHECK(q.ready_bytes() == 0);
}

TEST_CASE("skip_through: an exactly-once checkpoint confirms and drops what Kafka holds already") {
  pg::TxnQueue q(100);
  q.push(txn(110, 1, 1));
  q.push(txn(120, 2));
  q.push(txn(130, 1, 1));
  const auto rows = q.skip_through(120);
  REQUIRE(rows.size() == 1);  // the malformed row of the dropped transaction, for the source to park
  CHECK(rows[0].row.id == "110.r0");
  CHECK(q.confirmed() == 120);
  CHECK(q.ready_records() == 2);     // 130: a record and a malformed row
  CHECK_FALSE(q.push(txn(115, 1)));  // re-sent by the server: dropped
  const auto b = q.take(10);
  REQUIRE(b.messages.size() == 1);
  CHECK(b.messages[0].id == "130.0");
  CHECK(b.rejected.size() == 1);      // kept: after the checkpoint
  CHECK(q.skip_through(50).empty());  // behind: nothing moves
  CHECK(q.confirmed() == 120);
}

namespace {

// A chunk of the transaction whose commit record starts at `commit` (its records sit at commit + 1).
pg::Transaction chunk(uint64_t commit, std::size_t n, const std::string& tag) {
  auto t = txn(commit + 1, n);
  for (auto& m : t.messages) m.id = tag + m.id.substr(m.id.find('.'));
  t.commit_lsn = commit;
  t.complete = false;
  return t;
}

}  // namespace

TEST_CASE("wal queue: a chunked transaction settles chunk by chunk; only its end confirms it") {
  pg::TxnQueue q(100);
  q.push(txn(110, 1));
  q.push(chunk(200, 2, "a"));
  q.push(chunk(200, 2, "b"));
  auto end = txn(230, 1);
  end.commit_lsn = 200;
  q.push(end);
  q.push(txn(240, 1));

  auto b1 = q.take(3);  // 110 and chunk a
  CHECK(b1.messages.size() == 3);
  auto b2 = q.take(2);  // chunk b behind it
  CHECK(ids(b2) == std::vector<std::string>{"b.0", "b.1"});
  auto p1 = settled_plan(q, b1, all(3, DeliveryStatus::kAcked));
  CHECK(p1.confirm == 110);  // not into the chunked transaction
  CHECK(p1.partial == pg::PartialTransaction{200, 2});
  CHECK_FALSE(p1.retry);
  q.finish(p1, b1);
  CHECK(q.partial() == pg::PartialTransaction{200, 2});
  // Chunk b fails: it comes back, chunk a does not.
  auto d = all(2, DeliveryStatus::kAcked);
  d[1].status = DeliveryStatus::kRetriable;
  auto p2 = settled_plan(q, b2, d);
  CHECK(p2.retry);
  CHECK(p2.partial == pg::PartialTransaction{200, 2});
  q.finish(p2, b2);
  CHECK(q.confirmed() == 110);
  b2 = q.take(10);
  CHECK(ids(b2) == std::vector<std::string>{"b.0", "b.1", "230.0", "240.0"});
  auto p3 = settled_plan(q, b2, all(4, DeliveryStatus::kAcked));
  CHECK(p3.confirm == 240);
  CHECK(p3.partial == pg::PartialTransaction{});
  q.finish(p3, b2);
  CHECK(q.confirmed() == 240);
  CHECK(q.idle());

  // Two chunks of one transaction in one batch, the end in the next: the count adds up.
  q.push(chunk(300, 2, "c"));
  q.push(chunk(300, 3, "d"));
  end = txn(330, 1);
  end.commit_lsn = 300;
  q.push(end);
  auto b = q.take(5);
  CHECK(b.messages.size() == 5);
  auto p = settled_plan(q, b, all(5, DeliveryStatus::kAcked));
  CHECK(p.partial == pg::PartialTransaction{300, 5});
  q.finish(p, b);
  CHECK(q.confirmed() == 240);
  b = q.take(10);
  p = settled_plan(q, b, all(1, DeliveryStatus::kAcked));
  CHECK(p.partial == pg::PartialTransaction{});
  CHECK(p.confirm == 330);
}

TEST_CASE("wal queue: a batch stays within max_bytes (its first transaction always goes)") {
  pg::TxnQueue q(100);
  q.push(txn(110, 3));  // 300 bytes each, as txn() counts 100 a record
  q.push(txn(120, 3));
  q.push(txn(130, 1));
  auto b = q.take(100, 500);
  CHECK(b.end_position == 110);
  q.finish(settled_plan(q, b, all(3, DeliveryStatus::kAcked)), b);
  b = q.take(100, 400);  // 300 + 100
  CHECK(b.end_position == 130);
  CHECK(q.ready_bytes() == 0);
}

TEST_CASE("skip_through: a partial checkpoint is kept, so the count goes on from it") {
  pg::TxnQueue q(100);
  q.skip_through(150, {200, 4});
  CHECK(q.confirmed() == 150);
  CHECK(q.partial() == pg::PartialTransaction{200, 4});
  q.push(chunk(200, 2, "e"));
  auto b = q.take(10);
  auto p = settled_plan(q, b, all(2, DeliveryStatus::kAcked));
  CHECK(p.partial == pg::PartialTransaction{200, 6});
  CHECK(p.confirm == 150);
}

TEST_CASE("skip_through: a partial checkpoint for a transaction the slot is past already is dropped") {
  pg::TxnQueue q(300);  // the slot is past the transaction committed at 200
  q.skip_through(150, {200, 4});
  CHECK(q.partial() == pg::PartialTransaction{});
  pg::TxnQueue r(150);
  r.skip_through(150, {150, 4});  // adjacent: the commit record starts where the position ends
  CHECK(r.partial() == pg::PartialTransaction{150, 4});
  CHECK(r.advance_idle(400));  // the slot moved past it with nothing for us: the partial is done
  CHECK(r.partial() == pg::PartialTransaction{});
}

TEST_CASE(
    "settled_through: a batch's checkpoint known before it is sent equals its plan once it and the "
    "batch before it settled in full") {
  pg::TxnQueue q(100);
  q.push(txn(110, 1));
  q.push(chunk(200, 2, "a"));
  q.push(chunk(200, 2, "b"));
  auto end = txn(230, 1);
  end.commit_lsn = 200;
  q.push(end);
  q.push(txn(240, 0));
  q.push(txn(250, 2));

  auto b1 = q.take(3);  // 110 and chunk a
  auto b2 = q.take(2);  // chunk b behind it, still in flight with b1
  const auto e1 = q.settled_through(b1);
  const auto e2 = q.settled_through(b2);
  CHECK(e1 == std::pair<uint64_t, pg::PartialTransaction>{110, {200, 2}});
  CHECK(e2 == std::pair<uint64_t, pg::PartialTransaction>{110, {200, 4}});
  auto p1 = settled_plan(q, b1, all(3, DeliveryStatus::kAcked));
  CHECK(std::make_pair(p1.confirm, p1.partial) == e1);
  q.finish(p1, b1);
  auto p2 = settled_plan(q, b2, all(2, DeliveryStatus::kAcked));
  CHECK(std::make_pair(p2.confirm, p2.partial) == e2);
  q.finish(p2, b2);
  CHECK_THROWS_AS((void)q.settled_through(b2), std::logic_error);  // not in flight any more
  auto b3 = q.take(10);  // the end of 200, the record-less 240 and 250
  const auto e3 = q.settled_through(b3);
  CHECK(e3 == std::pair<uint64_t, pg::PartialTransaction>{250, {}});
  auto p3 = settled_plan(q, b3, all(3, DeliveryStatus::kAcked));
  CHECK(std::make_pair(p3.confirm, p3.partial) == e3);
  q.finish(p3, b3);
  // A batch that settles short plans less than expected: the checkpoint is written again at commit.
  q.push(txn(260, 1));
  q.push(txn(270, 1));
  auto b4 = q.take(10);
  const auto e4 = q.settled_through(b4);
  auto d = all(2, DeliveryStatus::kAcked);
  d[1].status = DeliveryStatus::kRetriable;
  auto p4 = settled_plan(q, b4, d);
  CHECK(e4.first == 270);
  CHECK(p4.confirm == 260);
}
