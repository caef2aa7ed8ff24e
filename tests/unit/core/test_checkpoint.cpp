#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

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
       {"", "not json", "[]", R"({"v":3,"identity":"x","position":"1","ids":[]})",
        R"({"v":1,"identity":"x","position":"1","ids":[["1",2]]})",
        R"({"v":2,"identity":"x","position":"1","ids":[["01",2]]})",
        R"({"v":2,"identity":"x","position":"1","ids":[["1",0]]})",
        R"({"v":2,"identity":"x","position":"1","ids":[["1",-1]]})",
        R"({"v":2,"identity":"x","position":"1","ids":[["1",20000000]]})",
        R"({"v":2,"identity":"x","position":"1","ids":[["999999999999999999",18446744073709551615]]})",
        R"({"v":2,"identity":"x","position":"1","ids":[["1",2,3]]})",
        R"({"identity":"x","position":"1","ids":[]})", R"({"v":1,"position":"1","ids":[]})",
        R"({"v":1,"identity":"x","position":"1x","ids":[]})",
        R"({"v":1,"identity":"x","position":"","ids":[]})", R"({"v":1,"identity":"x","position":1,"ids":[]})",
        R"({"v":1,"identity":"x","position":"1","ids":[1]})", R"({"v":1,"identity":"x","position":"1"})",
        R"({"v":1e999})"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS((void)decode_checkpoint(bad), std::invalid_argument);
  }
}

TEST_CASE("checkpoint: runs of consecutive ids are stored as runs, in order, and read back whole") {
  Checkpoint c;
  for (int i = 100; i < 20100; ++i) c.ids.push_back(std::to_string(i));  // one transaction's claim
  c.ids.insert(c.ids.begin() + 5000, {"7", "007", "x", "8", "9"});       // not part of the run
  c.ids.push_back("20100");                                              // extends the second run
  const auto value = encode_checkpoint(c, "x");
  CHECK(value.size() < 200);
  CHECK(value.find(R"(["100",5000])") != std::string::npos);
  CHECK(value.find(R"(["5100",15001])") != std::string::npos);
  CHECK(value.find(R"("7","007","x","8","9")") != std::string::npos);  // runs shorter than 3 stay single
  CHECK(decode_checkpoint(value).checkpoint == c);
  // Version 1 records (every id single) still read.
  const auto v1 = decode_checkpoint(R"({"v":1,"identity":"x","position":"5","ids":["1","2","3"]})");
  CHECK(v1.checkpoint.ids == std::vector<std::string>{"1", "2", "3"});
  CHECK(v1.checkpoint.position == 5);
}

TEST_CASE("checkpoint: a transaction published in part is named with how many of its records are out") {
  Checkpoint c;
  c.position = 0x1000;
  c.partial_lsn = 0x2000;
  c.partial_records = 30000;
  const auto value = encode_checkpoint(c, "x");
  CHECK(value.find(R"("partial":{"lsn":"8192","records":30000})") != std::string::npos);
  const auto d = decode_checkpoint(value);
  CHECK(d.checkpoint == c);
  CHECK_FALSE(d.checkpoint.empty());
  Checkpoint whole;
  whole.position = 5;
  CHECK(encode_checkpoint(whole, "x").find("partial") == std::string::npos);
  for (const auto* bad :
       {R"({"v":2,"identity":"x","position":"1","ids":[],"partial":{"lsn":"9"}})",
        R"({"v":2,"identity":"x","position":"1","ids":[],"partial":{"lsn":9,"records":1}})",
        R"({"v":2,"identity":"x","position":"1","ids":[],"partial":{"lsn":"9","records":-1}})",
        R"({"v":2,"identity":"x","position":"9","ids":[],"partial":{"lsn":"8","records":1}})",
        R"({"v":2,"identity":"x","position":"1","ids":[],"partial":[]})"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS((void)decode_checkpoint(bad), std::invalid_argument);
  }
  // The transaction's commit record may start right where the checkpoint's position ends.
  const auto adjacent = decode_checkpoint(
      R"({"v":2,"identity":"x","position":"9","ids":[],"partial":{"lsn":"9","records":1}})");
  CHECK(adjacent.checkpoint.partial_lsn == 9);
}
