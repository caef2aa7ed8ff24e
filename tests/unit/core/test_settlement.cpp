// The settlement rule (core/settlement.h): what a batch's delivery reports allow to become durable.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/settlement.h"

using namespace outbox_relay::core;

namespace {

constexpr auto kAck = DeliveryStatus::kAcked;
constexpr auto kPoison = DeliveryStatus::kPoison;
constexpr auto kRetry = DeliveryStatus::kRetriable;
constexpr auto kPend = DeliveryStatus::kPending;
constexpr auto kDefer = DeliveryStatus::kDeferred;
constexpr auto kUnparked = DeliveryStatus::kUnparked;

// Messages "0".."n-1"; message i at position positions[i] (WAL: its transaction's end LSN).
Batch batch_at(const std::vector<uint64_t>& positions) {
  Batch b;
  for (std::size_t i = 0; i < positions.size(); ++i) {
    OutboxMessage m;
    m.id = std::to_string(i);
    m.topic = "t";
    m.position = positions[i];
    b.messages.push_back(m);
  }
  if (!positions.empty()) b.end_position = positions.back();
  return b;
}

std::vector<Delivery> reports(const std::vector<DeliveryStatus>& statuses) {
  std::vector<Delivery> d;
  for (const auto s : statuses) d.push_back({s, s == kAck ? "" : "why " + std::to_string(d.size()), -1, -1});
  return d;
}

std::vector<std::size_t> parked_messages(const Settlement& s) {
  std::vector<std::size_t> out;
  for (const auto& p : s.park) {
    if (!p.rejected) out.push_back(p.index);
  }
  return out;
}

std::vector<std::size_t> parked_rows(const Settlement& s) {
  std::vector<std::size_t> out;
  for (const auto& p : s.park) {
    if (p.rejected) out.push_back(p.index);
  }
  return out;
}

using Idx = std::vector<std::size_t>;

}  // namespace

TEST_CASE("finality: only acknowledged and poison deliveries are final") {
  CHECK(is_final(kAck));
  CHECK(is_final(kPoison));
  CHECK_FALSE(is_final(kRetry));
  CHECK_FALSE(is_final(kPend));
  CHECK_FALSE(is_final(kDefer));
  CHECK_FALSE(is_final(kUnparked));
}

TEST_CASE("every delivery acknowledged: all done, nothing parked or retried, in both orderings") {
  const auto b = batch_at({10, 10, 20});
  for (const auto o : {Ordering::kPerMessage, Ordering::kPrefix}) {
    const auto s = settle(b, reports({kAck, kAck, kAck}), o);
    CHECK(s.done == Idx{0, 1, 2});
    CHECK(s.park.empty());
    CHECK(s.retry.empty());
    CHECK(s.complete());
    CHECK_FALSE(s.failed);
    CHECK_FALSE(s.first_open.has_value());
    CHECK(s.durable(20));
    CHECK_FALSE(s.abort);
  }
}

TEST_CASE("poison is final: parked with its reason, the rest done") {
  const auto b = batch_at({10, 20, 30});
  const auto s = settle(b, reports({kAck, kPoison, kAck}), Ordering::kPrefix);
  CHECK(s.done == Idx{0, 2});
  REQUIRE(s.park.size() == 1);
  CHECK(s.park[0].index == 1);
  CHECK_FALSE(s.park[0].rejected);
  CHECK(s.park[0].reason == "why 1");
  CHECK(s.complete());
  CHECK_FALSE(s.failed);
}

TEST_CASE("per message: a retriable delivery holds back only itself") {
  const auto b = batch_at({0, 0, 0, 0});
  const auto s = settle(b, reports({kAck, kRetry, kAck, kPoison}), Ordering::kPerMessage);
  CHECK(s.done == Idx{0, 2});
  CHECK(parked_messages(s) == Idx{3});
  CHECK(s.retry == Idx{1});
  CHECK(s.failed);
  CHECK(s.failure == "why 1");
  CHECK_FALSE(s.first_open.has_value());
}

TEST_CASE("prefix: nothing at or after the first open position becomes durable, acknowledged or poison") {
  // transactions ending at 10 (messages 0, 1), 20 (2, 3), 30 (4)
  const auto b = batch_at({10, 10, 20, 20, 30});
  const auto s = settle(b, reports({kAck, kPoison, kAck, kPend, kPoison}), Ordering::kPrefix);
  REQUIRE(s.first_open.has_value());
  CHECK(*s.first_open == 20);
  CHECK(s.done == Idx{0});
  CHECK(parked_messages(s) == Idx{1});  // in the durable transaction
  CHECK(s.retry == Idx{2, 3, 4});       // 2 acked but in the open transaction; 4 poison but after it
  CHECK(s.failed);
  CHECK(s.failure == "why 3");
  CHECK(s.durable(10));
  CHECK_FALSE(s.durable(20));
  CHECK_FALSE(s.durable(30));
  CHECK_FALSE(s.complete());
}

TEST_CASE("prefix: the first message open makes nothing durable") {
  const auto b = batch_at({10, 20});
  const auto s = settle(b, reports({kRetry, kAck}), Ordering::kPrefix);
  CHECK(*s.first_open == 10);
  CHECK(s.done.empty());
  CHECK(s.retry == Idx{0, 1});
}

TEST_CASE("malformed rows follow the position rule: parked when durable, sent again with their transaction") {
  auto b = batch_at({10, 30});
  b.rejected.push_back({OutboxRow{"r10", {}, 10}, "bad headers", std::nullopt, 1});
  b.rejected.push_back({OutboxRow{"r20", {}, 20}, "bad topic", std::nullopt, 1});
  b.rejected.push_back({OutboxRow{"r30", {}, 30}, "bad key", std::nullopt, 2});
  SUBCASE("all final: every row parked with its reason") {
    const auto s = settle(b, reports({kAck, kAck}), Ordering::kPrefix);
    CHECK(parked_rows(s) == Idx{0, 1, 2});
    CHECK(s.park[1].reason == "bad topic");
  }
  SUBCASE("open at 30: rows before it parked, the one in its transaction not") {
    const auto s = settle(b, reports({kAck, kRetry}), Ordering::kPrefix);
    CHECK(parked_rows(s) == Idx{0, 1});
    CHECK(s.done == Idx{0});
  }
  SUBCASE("per message: every row parked whatever else failed") {
    const auto s = settle(b, reports({kRetry, kRetry}), Ordering::kPerMessage);
    CHECK(parked_rows(s) == Idx{0, 1, 2});
  }
}

TEST_CASE(
    "a poison event whose dead-letter copy failed is neither parked nor done, and recalls only by position") {
  SUBCASE("per message: it alone goes back; the events behind need not follow it") {
    const auto s = settle(batch_at({0, 0, 0}), reports({kAck, kUnparked, kPoison}), Ordering::kPerMessage);
    CHECK(s.done == Idx{0});
    CHECK(parked_messages(s) == Idx{2});
    CHECK(s.retry == Idx{1});
    CHECK(s.failed);  // backs off
    CHECK(s.failure == "why 1");
    CHECK_FALSE(s.recall);
    const auto mixed = settle(batch_at({0, 0}), reports({kUnparked, kRetry}), Ordering::kPerMessage);
    CHECK(mixed.recall);  // a failed delivery to its own topic: its key's later events must follow it
  }
  SUBCASE("prefix: nothing from its position on is durable, and the batch behind is recalled") {
    const auto s = settle(batch_at({10, 20, 30}), reports({kAck, kUnparked, kAck}), Ordering::kPrefix);
    CHECK(*s.first_open == 20);
    CHECK(s.done == Idx{0});
    CHECK(s.retry == Idx{1, 2});
    CHECK(s.recall);
  }
}

TEST_CASE(
    "malformed rows' dead-letter copies: parked with that reason, or (not accepted) held back like a "
    "message") {
  auto b = batch_at({10, 30});
  b.rejected.push_back({OutboxRow{"r10", {}, 10}, "bad headers", std::nullopt, 1});
  b.rejected.push_back({OutboxRow{"r20", {}, 20}, "bad topic", std::nullopt, 1});
  const std::vector<Delivery> copies{{kPoison, "dead-lettered to \"dlq\": bad headers", -1, -1},
                                     {kUnparked, "dead-letter topic \"dlq\" did not accept it", -1, -1}};
  SUBCASE(
      "per message: the accepted one parked with its dead-letter reason, the other not; the messages done") {
    const auto s = settle(b, reports({kAck, kAck}), Ordering::kPerMessage, Atomicity::kPerRecord, copies);
    CHECK(parked_rows(s) == Idx{0});
    CHECK(s.park[0].reason == "dead-lettered to \"dlq\": bad headers");
    CHECK(s.done == Idx{0, 1});
    CHECK(s.retry.empty());
    CHECK(s.failed);
    CHECK(s.failure == "dead-letter topic \"dlq\" did not accept it");
    CHECK_FALSE(s.recall);
  }
  SUBCASE("prefix: open from the row's position (20): the message at 30 goes back with it") {
    const auto s = settle(b, reports({kAck, kAck}), Ordering::kPrefix, Atomicity::kPerRecord, copies);
    CHECK(*s.first_open == 20);
    CHECK(parked_rows(s) == Idx{0});
    CHECK(s.done == Idx{0});
    CHECK(s.retry == Idx{1});
    CHECK(s.recall);
  }
  SUBCASE("a transaction is aborted by it") {
    const auto s = settle(b, reports({kAck, kAck}), Ordering::kPrefix, Atomicity::kTransaction, copies);
    CHECK(s.abort);
    CHECK(s.done.empty());
  }
  SUBCASE("one copy per row, or none") {
    CHECK_THROWS_AS((void)settle(b, reports({kAck, kAck}), Ordering::kPrefix, Atomicity::kPerRecord,
                                 std::span<const Delivery>(copies).first(1)),
                    std::invalid_argument);
  }
}

TEST_CASE("deferred (block policy) is not final but is no failure: no backoff, no recall") {
  const auto b = batch_at({0, 0, 0});
  const auto s = settle(b, reports({kAck, kDefer, kDefer}), Ordering::kPerMessage);
  CHECK(s.retry == Idx{1, 2});
  CHECK(s.deferred == Idx{1, 2});
  CHECK_FALSE(s.failed);
  CHECK(s.failure.empty());
  const auto mixed = settle(b, reports({kDefer, kRetry, kAck}), Ordering::kPerMessage);
  CHECK(mixed.failed);
  CHECK(mixed.failure == "why 1");
  CHECK(mixed.deferred == Idx{0});
}

TEST_CASE("pending deliveries (given up on) count as failed, with no error text") {
  const auto b = batch_at({5});
  std::vector<Delivery> d(1);  // kPending, error ""
  const auto s = settle(b, d, Ordering::kPrefix);
  CHECK(s.failed);
  CHECK(s.failure.empty());
  CHECK(s.retry == Idx{0});
}

TEST_CASE("a transaction is all or nothing: any record not acknowledged voids every acknowledgement") {
  const auto b = batch_at({10, 20, 30});
  SUBCASE("all acknowledged: committed") {
    const auto s = settle(b, reports({kAck, kAck, kAck}), Ordering::kPrefix, Atomicity::kTransaction);
    CHECK_FALSE(s.abort);
    CHECK(s.done == Idx{0, 1, 2});
  }
  SUBCASE("a retriable record: aborted, nothing done, everything again") {
    const auto s = settle(b, reports({kAck, kRetry, kAck}), Ordering::kPerMessage, Atomicity::kTransaction);
    CHECK(s.abort);
    CHECK(s.failed);
    CHECK(s.done.empty());
    CHECK(s.retry == Idx{0, 1, 2});
  }
  SUBCASE("poison: aborted, poison parked, the rest again without backoff") {
    const auto s = settle(b, reports({kAck, kPoison, kAck}), Ordering::kPerMessage, Atomicity::kTransaction);
    CHECK(s.abort);
    CHECK_FALSE(s.failed);
    CHECK(s.done.empty());
    CHECK(parked_messages(s) == Idx{1});
    CHECK(s.retry == Idx{0, 2});
  }
  SUBCASE("poison with ordered positions: the durable position stops at the first voided record") {
    const auto s = settle(b, reports({kPoison, kAck, kAck}), Ordering::kPrefix, Atomicity::kTransaction);
    CHECK(s.abort);
    REQUIRE(s.first_open.has_value());
    CHECK(*s.first_open == 20);
    CHECK(parked_messages(s) == Idx{0});
    CHECK(s.retry == Idx{1, 2});
  }
}

TEST_CASE("deliveries must be parallel to the batch's messages") {
  const auto b = batch_at({1, 2});
  CHECK_THROWS_AS((void)settle(b, reports({kAck}), Ordering::kPrefix), std::invalid_argument);
  const Batch empty;
  CHECK(settle(empty, {}, Ordering::kPrefix).complete());
}

TEST_CASE("dead letters: parked once the DLQ has it or refuses it for good, retried otherwise") {
  const Delivery poison{kPoison, "Broker: Message size too large", 0, -1};
  SUBCASE("acknowledged by the DLQ") {
    const auto d = after_dead_letter(poison, {kAck, "", 0, 7}, "relay.dlq");
    CHECK(d.status == kPoison);
    CHECK(d.error == "dead-lettered to \"relay.dlq\": Broker: Message size too large");
  }
  SUBCASE("refused by the DLQ for good too: parked with both reasons, not retried forever") {
    const auto d = after_dead_letter(poison, {kPoison, "too large for the DLQ", -1, -1}, "relay.dlq");
    CHECK(d.status == kPoison);
    CHECK(d.error ==
          "dead-letter topic \"relay.dlq\" refused it too (too large for the DLQ): "
          "Broker: Message size too large");
  }
  SUBCASE("not acknowledged for now: unparked, never marked done before it is somewhere durable") {
    for (const auto st : {kRetry, kPend}) {
      const auto d = after_dead_letter(poison, {st, "broker down", -1, -1}, "relay.dlq");
      CHECK(d.status == kUnparked);
      CHECK(d.error == "dead-letter topic \"relay.dlq\" did not accept it: broker down");
      const auto b = batch_at({0});
      CHECK(settle(b, std::vector<Delivery>{d}, Ordering::kPerMessage).retry == Idx{0});
    }
  }
}
