#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "pg/decode/pgoutput.h"
#include "pgoutput_fixtures.h"

namespace pg = outbox_relay::pg;
namespace po = outbox_relay::pg::pgoutput;
namespace fx = outbox_relay::pg::fixtures;

namespace {

template <typename T>
T decode_as(const std::string& bytes) {
  auto m = po::decode(bytes);
  REQUIRE(std::holds_alternative<T>(m));
  return std::get<T>(std::move(m));
}

// Every fixture used below; each must throw DecodeError (never crash) when cut short anywhere.
std::vector<std::string> all_fixtures() {
  return {
      fx::begin(0x16B374D848, 123456789, 742),
      fx::commit(0x16B374D848, 0x16B374D878, 123456789),
      fx::origin(0x1234, "node_a"),
      fx::outbox_relation(),
      fx::type(16500, "public", "mood"),
      fx::insert(fx::kOutboxOid, fx::outbox_row("1")),
      fx::insert(7, {fx::null(), fx::unchanged(), fx::text("x"), fx::binary(std::string("\0\1", 2))}),
      fx::update(7, 'K', {fx::text("1")}, {fx::text("1"), fx::unchanged()}),
      fx::update(7, 0, {}, {fx::text("1")}),
      fx::del(7, 'O', {fx::text("1"), fx::null()}),
      fx::truncate(3, {7, 8, 9}),
      fx::message(true, 0x1A2B3C8, "outbox:orders:order-42", R"({"a":1})"),
  };
}

}  // namespace

TEST_CASE("pgoutput: Begin and Commit") {
  const auto b = decode_as<po::Begin>(fx::begin(0x16B374D848, -5, 742));
  CHECK(b.final_lsn == 0x16B374D848);
  CHECK(b.commit_time == -5);
  CHECK(b.xid == 742);

  const auto c = decode_as<po::Commit>(fx::commit(0x16B374D848, 0x16B374D878, 815000000123456));
  CHECK(c.flags == 0);
  CHECK(c.commit_lsn == 0x16B374D848);
  CHECK(c.end_lsn == 0x16B374D878);
  CHECK(c.commit_time == 815000000123456);
  CHECK(po::tag(po::decode(fx::commit(1, 2, 3))) == 'C');
}

TEST_CASE("pgoutput: Origin and Type") {
  const auto o = decode_as<po::Origin>(fx::origin(0xABCDEF, "node_a"));
  CHECK(o.commit_lsn == 0xABCDEF);
  CHECK(o.name == "node_a");

  const auto t = decode_as<po::Type>(fx::type(16500, "public", "mood"));
  CHECK(t.oid == 16500);
  CHECK(t.nspname == "public");
  CHECK(t.name == "mood");
}

TEST_CASE("pgoutput: Relation with key flags, type oids and modifiers") {
  const auto r = decode_as<po::Relation>(
      fx::relation(16390, "shop", "outbox", {{true, "id", 2950}, {false, "name", 1043, 68}}, 'f'));
  CHECK(r.oid == 16390);
  CHECK(r.nspname == "shop");
  CHECK(r.relname == "outbox");
  CHECK(r.replica_identity == 'f');
  REQUIRE(r.columns.size() == 2);
  CHECK(r.columns[0].key);
  CHECK(r.columns[0].name == "id");
  CHECK(r.columns[0].type_oid == 2950);
  CHECK(r.columns[0].type_modifier == -1);
  CHECK_FALSE(r.columns[1].key);
  CHECK(r.columns[1].type_oid == 1043);
  CHECK(r.columns[1].type_modifier == 68);

  const auto empty = decode_as<po::Relation>(fx::relation(1, "s", "t", {}));
  CHECK(empty.columns.empty());
}

TEST_CASE("pgoutput: Insert with text, NULL, unchanged-TOAST and binary columns") {
  const std::string bin("\x00\xff\x01", 3);
  const auto i = decode_as<po::Insert>(
      fx::insert(42, {fx::text("hello"), fx::null(), fx::unchanged(), fx::text(""), fx::binary(bin)}));
  CHECK(i.relation_oid == 42);
  REQUIRE(i.new_tuple.size() == 5);
  CHECK(i.new_tuple[0].kind == po::ColumnKind::kText);
  CHECK(i.new_tuple[0].value == "hello");
  CHECK(i.new_tuple[1].kind == po::ColumnKind::kNull);
  CHECK(i.new_tuple[2].kind == po::ColumnKind::kUnchangedToast);
  CHECK(i.new_tuple[3].kind == po::ColumnKind::kText);
  CHECK(i.new_tuple[3].value.empty());
  CHECK(i.new_tuple[4].kind == po::ColumnKind::kBinary);
  CHECK(i.new_tuple[4].value == bin);
}

TEST_CASE("pgoutput: multi-byte UTF-8 text comes back byte for byte") {
  const std::string utf8 = "Zürich → 東京 🚀 \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7";
  const auto i = decode_as<po::Insert>(fx::insert(1, {fx::text(utf8)}));
  CHECK(i.new_tuple[0].value == utf8);
  const auto r = decode_as<po::Relation>(fx::relation(1, "схема", "таблица", {{false, "колонка"}}));
  CHECK(r.nspname == "схема");
  CHECK(r.columns[0].name == "колонка");
}

TEST_CASE("pgoutput: a 1 MB value") {
  std::string big(1 << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  const auto i = decode_as<po::Insert>(fx::insert(1, {fx::text(big), fx::null()}));
  CHECK(i.new_tuple[0].value == big);
  const auto m = decode_as<po::LogicalMessage>(fx::message(true, 9, "p", big));
  CHECK(m.content == big);
  // and cut by one byte
  auto cut = fx::insert(1, {fx::text(big)});
  cut.pop_back();
  CHECK_THROWS_AS((void)po::decode(cut), pg::DecodeError);
}

TEST_CASE("pgoutput: Update with and without the old tuple") {
  const auto k = decode_as<po::Update>(
      fx::update(7, 'K', {fx::text("1"), fx::null()}, {fx::text("1"), fx::unchanged()}));
  CHECK(k.relation_oid == 7);
  CHECK(k.old_kind == 'K');
  REQUIRE(k.old_tuple.has_value());
  CHECK(k.old_tuple->size() == 2);
  CHECK(k.new_tuple[1].kind == po::ColumnKind::kUnchangedToast);

  const auto o = decode_as<po::Update>(fx::update(7, 'O', {fx::text("old")}, {fx::text("new")}));
  CHECK(o.old_kind == 'O');
  CHECK((*o.old_tuple)[0].value == "old");

  const auto n = decode_as<po::Update>(fx::update(7, 0, {}, {fx::text("new")}));
  CHECK(n.old_kind == 0);
  CHECK_FALSE(n.old_tuple.has_value());
  CHECK(n.new_tuple[0].value == "new");
}

TEST_CASE("pgoutput: Delete, Truncate") {
  const auto d = decode_as<po::Delete>(fx::del(7, 'K', {fx::text("1")}));
  CHECK(d.relation_oid == 7);
  CHECK(d.old_kind == 'K');
  CHECK(d.old_tuple[0].value == "1");
  CHECK(decode_as<po::Delete>(fx::del(7, 'O', {fx::null()})).old_kind == 'O');

  const auto t =
      decode_as<po::Truncate>(fx::truncate(po::Truncate::kCascade | po::Truncate::kRestartIdentity, {7, 8}));
  CHECK(t.options == 3);
  CHECK(t.relation_oids == std::vector<uint32_t>{7, 8});
  CHECK(decode_as<po::Truncate>(fx::truncate(0, {})).relation_oids.empty());
}

TEST_CASE("pgoutput: logical decoding Message") {
  const auto m =
      decode_as<po::LogicalMessage>(fx::message(true, 0x1A2B3C8, "outbox:orders:order-42", "{\"a\":1}"));
  CHECK(m.transactional);
  CHECK(m.lsn == 0x1A2B3C8);
  CHECK(m.prefix == "outbox:orders:order-42");
  CHECK(m.content == "{\"a\":1}");
  const std::string bin("\0a\0", 3);
  const auto n = decode_as<po::LogicalMessage>(fx::message(false, 1, "", bin));
  CHECK_FALSE(n.transactional);
  CHECK(n.prefix.empty());
  CHECK(n.content == bin);
}

TEST_CASE("pgoutput: every truncated fixture throws DecodeError") {
  for (const auto& full : all_fixtures()) {
    CHECK_NOTHROW((void)po::decode(full));
    for (std::size_t n = 0; n < full.size(); ++n) {
      CAPTURE(full[0]);
      CAPTURE(n);
      CHECK_THROWS_AS((void)po::decode(std::string_view(full).substr(0, n)), pg::DecodeError);
    }
  }
}

TEST_CASE("pgoutput: trailing bytes are an error") {
  for (const auto& full : all_fixtures()) {
    CAPTURE(full[0]);
    CHECK_THROWS_WITH_AS((void)po::decode(full + "x"), doctest::Contains("trailing"), pg::DecodeError);
  }
}

TEST_CASE("pgoutput: malformed inputs name the problem") {
  CHECK_THROWS_WITH_AS((void)po::decode(""), doctest::Contains("empty"), pg::DecodeError);
  CHECK_THROWS_WITH_AS((void)po::decode("Z"), doctest::Contains("unknown type 0x5a"), pg::DecodeError);
  CHECK_THROWS_AS((void)po::decode("S"), pg::DecodeError);  // stream start: not protocol 1

  // unknown tuple column kind
  auto bad_kind = fx::Bytes('I').u32(1).ch('N').u16(1).ch('x').bytes();
  CHECK_THROWS_WITH_AS((void)po::decode(bad_kind), doctest::Contains("unknown tuple column kind 0x78"),
                       pg::DecodeError);
  // missing 'N'
  CHECK_THROWS_WITH_AS((void)po::decode(fx::Bytes('I').u32(1).ch('K').u16(0).bytes()),
                       doctest::Contains("'N'"), pg::DecodeError);
  CHECK_THROWS_AS((void)po::decode(fx::Bytes('D').u32(1).ch('N').u16(0).bytes()), pg::DecodeError);
  CHECK_THROWS_AS((void)po::decode(fx::Bytes('U').u32(1).ch('K').u16(0).ch('X').u16(0).bytes()),
                  pg::DecodeError);
  // negative and oversized lengths
  CHECK_THROWS_WITH_AS((void)po::decode(fx::Bytes('I').u32(1).ch('N').u16(1).ch('t').i32(-1).bytes()),
                       doctest::Contains("negative"), pg::DecodeError);
  CHECK_THROWS_AS(
      (void)po::decode(fx::Bytes('I').u32(1).ch('N').u16(1).ch('t').i32(INT32_MAX).raw("abc").bytes()),
      pg::DecodeError);
  CHECK_THROWS_AS((void)po::decode(fx::Bytes('M').u8(1).u64(1).str("p").i32(-7).bytes()), pg::DecodeError);
  CHECK_THROWS_AS((void)po::decode(fx::Bytes('M').u8(1).u64(1).str("p").i32(10).raw("short").bytes()),
                  pg::DecodeError);
  // counts that the remaining bytes cannot hold are refused before allocating
  CHECK_THROWS_WITH_AS((void)po::decode(fx::Bytes('I').u32(1).ch('N').u16(65535).ch('n').bytes()),
                       doctest::Contains("exceeds"), pg::DecodeError);
  CHECK_THROWS_WITH_AS((void)po::decode(fx::Bytes('T').u32(0xFFFFFFFF).u8(0).u32(1).bytes()),
                       doctest::Contains("exceeds"), pg::DecodeError);
  CHECK_THROWS_AS((void)po::decode(fx::Bytes('R').u32(1).str("s").str("t").ch('d').u16(500).bytes()),
                  pg::DecodeError);
  // unterminated strings
  CHECK_THROWS_WITH_AS((void)po::decode(fx::Bytes('O').u64(1).raw("no-nul").bytes()),
                       doctest::Contains("unterminated"), pg::DecodeError);
  CHECK_THROWS_AS((void)po::decode(fx::Bytes('Y').u32(1).str("s").raw("t").bytes()), pg::DecodeError);
}

TEST_CASE("pgoutput: RelationCache maps tuples to relations") {
  po::RelationCache cache;
  CHECK(cache.find(7) == nullptr);
  cache.apply(decode_as<po::Relation>(fx::relation(7, "public", "t", {{true, "id"}, {false, "v"}})));
  REQUIRE(cache.find(7) != nullptr);
  CHECK(cache.find(7)->relname == "t");
  const po::TupleData two{{po::ColumnKind::kText, "1"}, {po::ColumnKind::kNull, {}}};
  CHECK(cache.require(7, two).columns[1].name == "v");
  CHECK_THROWS_WITH_AS((void)cache.require(7, po::TupleData(3)),
                       doctest::Contains("has 2 columns but the tuple has 3"), pg::DecodeError);
  CHECK_THROWS_WITH_AS((void)cache.require(8, two), doctest::Contains("before its Relation"),
                       pg::DecodeError);
  // a later Relation (ALTER TABLE) replaces the earlier one
  cache.apply(
      decode_as<po::Relation>(fx::relation(7, "public", "t", {{true, "id"}, {false, "v"}, {false, "w"}})));
  CHECK(cache.size() == 1);
  CHECK(cache.find(7)->columns.size() == 3);
  cache.clear();
  CHECK(cache.find(7) == nullptr);
}

TEST_CASE("replication: XLogData and primary keepalive") {
  const auto payload = fx::begin(1, 2, 3);
  const auto bytes = fx::xlog_data(0x10, 0x20, 77, payload);  // the payload view points into it
  const auto w = pg::decode_copy_data(bytes);
  REQUIRE(std::holds_alternative<pg::XLogData>(w));
  const auto& x = std::get<pg::XLogData>(w);
  CHECK(x.start_lsn == 0x10);
  CHECK(x.end_lsn == 0x20);
  CHECK(x.send_time == 77);
  CHECK(x.payload == payload);
  const auto empty = fx::xlog_data(1, 1, 1, "");
  CHECK(std::get<pg::XLogData>(pg::decode_copy_data(empty)).payload.empty());

  const auto k = pg::decode_copy_data(fx::keepalive(0x16B374D848, 99, true));
  REQUIRE(std::holds_alternative<pg::PrimaryKeepalive>(k));
  CHECK(std::get<pg::PrimaryKeepalive>(k).end_lsn == 0x16B374D848);
  CHECK(std::get<pg::PrimaryKeepalive>(k).send_time == 99);
  CHECK(std::get<pg::PrimaryKeepalive>(k).reply_requested);
  CHECK_FALSE(
      std::get<pg::PrimaryKeepalive>(pg::decode_copy_data(fx::keepalive(1, 1, false))).reply_requested);
}

TEST_CASE("replication: malformed CopyData throws DecodeError") {
  CHECK_THROWS_AS((void)pg::decode_copy_data(""), pg::DecodeError);
  CHECK_THROWS_WITH_AS((void)pg::decode_copy_data("r"), doctest::Contains("unknown type 0x72"),
                       pg::DecodeError);
  const auto w = fx::xlog_data(1, 2, 3, "");
  const auto k = fx::keepalive(1, 2, true);
  for (std::size_t n = 1; n < w.size(); ++n)
    CHECK_THROWS_AS((void)pg::decode_copy_data(w.substr(0, n)), pg::DecodeError);
  for (std::size_t n = 1; n < k.size(); ++n)
    CHECK_THROWS_AS((void)pg::decode_copy_data(k.substr(0, n)), pg::DecodeError);
  CHECK_THROWS_AS((void)pg::decode_copy_data(k + "x"), pg::DecodeError);
  CHECK_THROWS_AS((void)pg::decode_copy_data(fx::Bytes('k').u64(1).i64(1).u8(2).bytes()), pg::DecodeError);
}

TEST_CASE("replication: standby status update bytes") {
  const auto s =
      pg::encode_standby_status(0x0102030405060708, 0x1112131415161718, 0x2122232425262728, -2, true);
  const auto want =
      fx::Bytes('r').u64(0x0102030405060708).u64(0x1112131415161718).u64(0x2122232425262728).i64(-2).u8(1);
  CHECK(s.size() == 34);
  CHECK(s == want.bytes());
  CHECK(pg::encode_standby_status(0, 0, 0, 0, false).back() == 0);
}

TEST_CASE("timestamps: PostgreSQL epoch conversions") {
  CHECK(pg::pg_time_to_unix_ms(0) == 946684800000);
  CHECK(pg::pg_time_to_unix_ms(1999) == 946684800001);
  CHECK(pg::pg_time_to_unix_ms(-1) == 946684799999);  // floored
  CHECK(pg::pg_time_to_unix_ms(-1000) == 946684799999);
  CHECK(pg::pg_time_to_unix_ms(-1001) == 946684799998);
  CHECK(pg::unix_us_to_pg_time(946684800000000) == 0);
  CHECK(pg::unix_us_to_pg_time(0) == -946684800000000);
}
