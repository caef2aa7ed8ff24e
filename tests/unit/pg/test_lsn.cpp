#include <doctest/doctest.h>

#include <stdexcept>

#include "pg/decode/lsn.h"

using outbox_relay::pg::format_lsn;
using outbox_relay::pg::parse_lsn;

TEST_CASE("lsn: parses PostgreSQL's X/Y form") {
  CHECK(parse_lsn("0/0") == 0);
  CHECK(parse_lsn("16/B374D848") == 0x16B374D848ULL);
  CHECK(parse_lsn("16/b374d848") == 0x16B374D848ULL);
  CHECK(parse_lsn("0/1") == 1);
  CHECK(parse_lsn("1/0") == 0x100000000ULL);
  CHECK(parse_lsn("FFFFFFFF/FFFFFFFF") == UINT64_MAX);
  CHECK(parse_lsn("00000016/0B374D84") == 0x160B374D84ULL);
}

TEST_CASE("lsn: formats like PostgreSQL, upper-case without leading zeros") {
  CHECK(format_lsn(0) == "0/0");
  CHECK(format_lsn(0x16B374D848ULL) == "16/B374D848");
  CHECK(format_lsn(0x100000000ULL) == "1/0");
  CHECK(format_lsn(UINT64_MAX) == "FFFFFFFF/FFFFFFFF");
  CHECK(format_lsn(0x1A2B3C8) == "0/1A2B3C8");
}

TEST_CASE("lsn: round trips") {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0xFFFFFFFF}, uint64_t{0x100000000},
                     uint64_t{0x16B374D848}, uint64_t{0xDEADBEEFCAFEBABE}, UINT64_MAX}) {
    CAPTURE(v);
    CHECK(parse_lsn(format_lsn(v)) == v);
  }
  for (const char* s : {"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/0"})
    CHECK(format_lsn(parse_lsn(s)) == s);
}

TEST_CASE("lsn: rejects anything else with invalid_argument") {
  for (const char* bad : {"", "/", "0/", "/0", "16B374D848", "16/B374D848/1", "1FFFFFFFF/0", "0/123456789",
                          "-1/0", "+1/0", " 0/0", "0/0 ", "0x1/0", "G/0", "0/G", "0//0", "1/-1"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS((void)parse_lsn(bad), std::invalid_argument);
  }
  CHECK_THROWS_WITH_AS((void)parse_lsn("nope"), doctest::Contains("\"nope\""), std::invalid_argument);
  using namespace std::string_view_literals;
  CHECK_THROWS_AS((void)parse_lsn("0/0\0"sv), std::invalid_argument);
}
