#include <doctest/doctest.h>

#include <stdexcept>

#include "core/checkpoint.h"

using namespace outbox_relay::core;

TEST_CASE("checkpoint: encoded and decoded back whole, a 64-bit position included") {
  Checkpoint c;
  c.position = 0xFFFFFFFFFFFFFFF0ULL;
  c.ids = {"1", "2", "a\"b", "\xc3\xa9"};
  const auto value = encode_checkpoint(c, "poll:db/public.outbox:0/1");
  const auto d = decode_checkpoint(value);
  CHECK(d.identity == "poll:db/public.outbox:0/1");
  CHECK(d.checkpoint == c);
  const auto empty = decode_checkpoint(encode_checkpoint({}, "x"));
  CHECK(empty.checkpoint.empty());
}

TEST_CASE("checkpoint: anything unreadable is an error, never an empty checkpoint") {
  for (const auto* bad :
       {"", "not json", "[]", R"({"v":2,"identity":"x","position":"1","ids":[]})",
        R"({"identity":"x","position":"1","ids":[]})", R"({"v":1,"position":"1","ids":[]})",
        R"({"v":1,"identity":"x","position":"1x","ids":[]})",
        R"({"v":1,"identity":"x","position":"","ids":[]})", R"({"v":1,"identity":"x","position":1,"ids":[]})",
        R"({"v":1,"identity":"x","position":"1","ids":[1]})", R"({"v":1,"identity":"x","position":"1"})",
        R"({"v":1e999})"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS((void)decode_checkpoint(bad), std::invalid_argument);
  }
}
