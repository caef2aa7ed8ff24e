#include <doctest/doctest.h>

#include "kafka/unknown_topics.h"

using outbox_relay::kafka::UnknownTopics;
using namespace std::chrono_literals;

TEST_CASE("unknown topic: retriable for the grace period from the first failure, then poison") {
  UnknownTopics u(30s);
  const UnknownTopics::Clock::time_point t0{};
  CHECK_FALSE(u.poison("orders", t0));
  CHECK_FALSE(u.poison("orders", t0 + 29s));  // the clock runs from the first failure, not the last
  CHECK(u.poison("orders", t0 + 30s));
  CHECK_FALSE(u.poison("mail", t0 + 30s));  // per topic
  SUBCASE("a delivery that succeeds forgets the topic: a later deletion gets a new grace period") {
    u.delivered("orders");
    CHECK_FALSE(u.poison("orders", t0 + 60s));
    CHECK(u.poison("orders", t0 + 90s));
  }
  SUBCASE("bounded however many topic names rows invent") {
    for (std::size_t i = 0; i < UnknownTopics::kMaxTracked * 3; ++i)
      (void)u.poison("t" + std::to_string(i), t0);
    CHECK(u.tracked() <= UnknownTopics::kMaxTracked);
  }
}
