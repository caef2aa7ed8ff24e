// The one quoting scheme (pg/common/sql_text.h) and the text codecs (pg/decode/text_codec.h).
#include <doctest/doctest.h>

#include <string>

#include "pg/common/sql_text.h"
#include "pg/decode/text_codec.h"

namespace pg = outbox_relay::pg;

TEST_CASE("sql text: identifiers are always double-quoted, inner quotes doubled") {
  CHECK(pg::quote_ident("outbox") == "\"outbox\"");
  CHECK(pg::quote_ident("Outbox") == "\"Outbox\"");
  CHECK(pg::quote_ident("a\"b") == "\"a\"\"b\"");
  CHECK(pg::quote_ident("") == "\"\"");
  CHECK(pg::quote_ident("with space; drop") == "\"with space; drop\"");
}

TEST_CASE("sql text: literals double single quotes and nothing else") {
  CHECK(pg::quote_literal("relay") == "'relay'");
  CHECK(pg::quote_literal("it's") == "'it''s'");
  CHECK(pg::quote_literal("back\\slash") == "'back\\slash'");       // standard_conforming_strings
  CHECK(pg::quote_literal(pg::quote_ident("pub")) == "'\"pub\"'");  // START_REPLICATION publication_names
}

TEST_CASE("sql text: a qualified name is split at the first dot, each part quoted") {
  CHECK(pg::quote_qualified("outbox") == "\"outbox\"");
  CHECK(pg::quote_qualified("app.outbox") == "\"app\".\"outbox\"");
  CHECK(pg::quote_qualified("app.out.box") == "\"app\".\"out.box\"");
  CHECK(pg::quote_qualified("a\"b.c") == "\"a\"\"b\".\"c\"");
  // a part written in double quotes is taken without them (a dot inside is part of the name)
  CHECK(pg::quote_qualified("\"public\".\"outbox\"") == "\"public\".\"outbox\"");
  CHECK(pg::quote_qualified("\"my.app\".outbox") == "\"my.app\".\"outbox\"");
  CHECK(pg::quote_qualified("\"Out\"\"box\"") == "\"Out\"\"box\"");
  CHECK(pg::split_qualified("OUTBOX") == std::vector<std::string>{"OUTBOX"});
  CHECK(pg::split_qualified("\"app\".\"a.b\"") == std::vector<std::string>{"app", "a.b"});
}

TEST_CASE("sql text: array literals quote every element and escape quotes and backslashes") {
  CHECK(pg::array_literal({}) == "{}");
  CHECK(pg::array_literal({"1"}) == "{\"1\"}");
  CHECK(pg::array_literal({"1", "22", "333"}) == "{\"1\",\"22\",\"333\"}");
  CHECK(pg::array_literal({"a\"b", "c\\d"}) == "{\"a\\\"b\",\"c\\\\d\"}");
  CHECK(pg::array_literal({"", "NULL", "x,y", "{z}"}) == "{\"\",\"NULL\",\"x,y\",\"{z}\"}");
  CHECK(pg::array_literal({"5d3c0b64-1f3e-4c1a-9a53-7b1d3f0e2c11"}) ==
        "{\"5d3c0b64-1f3e-4c1a-9a53-7b1d3f0e2c11\"}");
}

TEST_CASE("text codec: UTF-8 validity as a text column sees it") {
  CHECK(pg::valid_utf8(""));
  CHECK(pg::valid_utf8("plain ascii"));
  CHECK(pg::valid_utf8("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(pg::valid_utf8(std::string("a\0b", 3)));  // NUL
  CHECK_FALSE(pg::valid_utf8("\xff"));
  CHECK_FALSE(pg::valid_utf8("\xc3"));              // truncated
  CHECK_FALSE(pg::valid_utf8("\xc0\xaf"));          // overlong
  CHECK_FALSE(pg::valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(pg::valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST_CASE("text codec: bytea hex both ways; text_or_hex keeps valid text as it is") {
  CHECK(pg::encode_bytea_hex("") == "\\x");
  CHECK(pg::encode_bytea_hex(std::string("\x00\xff\xab", 3)) == "\\x00ffab");
  CHECK(pg::decode_bytea_hex(pg::encode_bytea_hex(std::string("\x00\x01Hi", 4))) ==
        std::string("\x00\x01Hi", 4));
  CHECK(pg::text_or_hex("{\"n\": 1}") == "{\"n\": 1}");
  CHECK(pg::text_or_hex(std::string("\xff\x00", 2)) == "\\xff00");
}
