#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/errors.h"
#include "pg/decode/assembler.h"
#include "pgoutput_fixtures.h"

namespace pg = outbox_relay::pg;
namespace po = outbox_relay::pg::pgoutput;
namespace fx = outbox_relay::pg::fixtures;
namespace core = outbox_relay::core;

namespace {

pg::TransactionAssembler make_assembler(std::vector<std::string>* warnings = nullptr,
                                        core::Layout layout = core::Layout::default_layout(),
                                        std::size_t chunk_bytes = 0) {
  pg::TransactionAssembler::Options o;
  o.chunk_bytes = chunk_bytes;
  o.table_schema = "public";
  o.table_name = "outbox";
  o.message_prefix = "outbox";
  if (warnings != nullptr) o.warn = [warnings](const std::string& w) { warnings->push_back(w); };
  return pg::TransactionAssembler(core::Router(std::move(layout)), std::move(o));
}

std::optional<std::string> header(const core::OutboxMessage& m, const std::string& name) {
  for (const auto& [k, v] : m.headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

po::Relation outbox_relation() { return std::get<po::Relation>(po::decode(fx::outbox_relation())); }

}  // namespace

TEST_CASE("timestamp text to ms: ISO output of timestamptz and timestamp") {
  CHECK(pg::timestamp_text_to_ms("2026-11-22 05:34:36.123456+00") == 1795325676123);
  CHECK(pg::timestamp_text_to_ms("2026-11-22 05:34:36.123+00") == 1795325676123);
  CHECK(pg::timestamp_text_to_ms("2026-11-22 05:34:36.1+00") == 1795325676100);
  CHECK(pg::timestamp_text_to_ms("2026-11-22 05:34:36.123999+00") == 1795325676123);  // floored, not rounded
  CHECK(pg::timestamp_text_to_ms("2026-11-22 05:34:36.123456+05:30") == 1795305876123);
  CHECK(pg::timestamp_text_to_ms("2026-11-22 05:34:36-03:30:15") == 1795338291000);
  CHECK(pg::timestamp_text_to_ms("2026-11-22 05:34:36.123456") == 1795325676123);  // timestamp: read as UTC
  CHECK(pg::timestamp_text_to_ms("2026-11-22T05:34:36.123456Z").has_value() == false);
  CHECK(pg::timestamp_text_to_ms("2026-11-22T05:34:36.123456+00") == 1795325676123);
  CHECK(pg::timestamp_text_to_ms("2000-01-01 00:00:00+00") == 946684800000);
  CHECK(pg::timestamp_text_to_ms("1970-01-01 00:00:00+00") == 0);
  CHECK(pg::timestamp_text_to_ms("1969-12-31 23:59:59.9995+00") == -1);
  CHECK(pg::timestamp_text_to_ms("2024-02-29 00:00:00+00") == 1709164800000);
  CHECK(pg::timestamp_text_to_ms("0001-01-01 00:00:00+00") == -62135596800000);
  CHECK(pg::timestamp_text_to_ms("10000-01-01 00:00:00+00") == 253402300800000);
}

TEST_CASE("timestamp text to ms: anything else is nullopt") {
  for (const char* bad : {"",
                          "infinity",
                          "-infinity",
                          "2026-11-22",
                          "2026-11-22 05:34",
                          "2026-11-22 05:34:36 BC",
                          "0044-03-15 12:00:00+00 BC",
                          "2023-02-29 00:00:00+00",
                          "2026-13-01 00:00:00+00",
                          "2026-00-10 00:00:00+00",
                          "2026-11-31 00:00:00+00",
                          "2026-11-22 25:00:00+00",
                          "2026-11-22 05:60:00+00",
                          "2026-11-22 05:34:36.+00",
                          "2026-11-22 05:34:36.1234567+00",
                          "2026-11-22 05:34:36+16",
                          "2026-11-22 05:34:36+5",
                          "Sun Nov 22 05:34:36 2026 UTC",
                          "11/22/2026 05:34:36 UTC",
                          "2026-11-22 05:34:36+00 ",
                          "1234567-01-01 00:00:00+00"}) {
    CAPTURE(bad);
    CHECK_FALSE(pg::timestamp_text_to_ms(bad).has_value());
  }
}

TEST_CASE("bytea hex output decodes to raw bytes") {
  CHECK(pg::decode_bytea_hex("\\x") == std::string());
  CHECK(pg::decode_bytea_hex("\\x4869") == std::string("Hi"));
  CHECK(pg::decode_bytea_hex("\\x00ffAB") == std::string("\x00\xff\xab", 3));
  CHECK_FALSE(pg::decode_bytea_hex("\\x4").has_value());
  CHECK_FALSE(pg::decode_bytea_hex("\\xzz").has_value());
  CHECK_FALSE(pg::decode_bytea_hex("4869").has_value());
  CHECK_FALSE(pg::decode_bytea_hex("\\110\\151").has_value());  // escape format
}

TEST_CASE("logical message prefix: <prefix>:<topic>[:<key>]") {
  auto route = [](std::string_view prefix) { return pg::route_message_prefix(prefix, "outbox"); };
  const auto r = route("outbox:orders:order-42");
  REQUIRE(r.has_value());
  REQUIRE(r->index() == 0);
  CHECK(std::get<0>(*r).topic == "orders");
  CHECK(std::get<0>(*r).key == "order-42");

  CHECK(std::get<0>(*route("outbox:orders")).key == std::nullopt);
  CHECK(std::get<0>(*route("outbox:orders:")).key == std::nullopt);
  CHECK(std::get<0>(*route("outbox:orders:a:b")).key == "a:b");
  CHECK(std::get<0>(*route("outbox:shop.orders_v1-x:k")).topic == "shop.orders_v1-x");

  // ours but unroutable
  for (const char* bad : {"outbox", "outbox:", "outbox::k", "outbox:bad topic:k", "outbox:..:k"}) {
    CAPTURE(bad);
    const auto e = route(bad);
    REQUIRE(e.has_value());
    CHECK(e->index() == 1);
  }
  CHECK(std::get<1>(*route("outbox")).find("names no topic") != std::string::npos);
  CHECK(std::get<1>(*route("outbox:bad topic")).find("invalid topic name") != std::string::npos);

  // not ours
  CHECK_FALSE(route("outboxes:orders:k").has_value());
  CHECK_FALSE(route("other:orders").has_value());
  CHECK_FALSE(route("").has_value());
  CHECK_FALSE(route("OUTBOX:orders").has_value());
  CHECK_FALSE(pg::route_message_prefix("outbox:orders", "").has_value());  // disabled

  // a configured prefix that ends with ':' already
  CHECK(std::get<0>(*pg::route_message_prefix("app:orders:k", "app:")).topic == "orders");
}

TEST_CASE("logical message to record") {
  po::LogicalMessage m{true, 0x1A2B3C8, "outbox:orders:order-42", std::string("\x00{}", 3)};
  const auto r = pg::map_logical_message(m, "outbox", 1795325676123, 0x99);
  REQUIRE(r.has_value());
  REQUIRE(r->index() == 0);
  const auto& msg = std::get<0>(*r);
  CHECK(msg.id == "0/1A2B3C8");
  CHECK(msg.topic == "orders");
  CHECK(msg.key == "order-42");
  CHECK(msg.value == std::string("\x00{}", 3));
  CHECK(header(msg, "id") == "0/1A2B3C8");
  CHECK(msg.headers.size() == 1);
  CHECK(msg.timestamp_ms == 1795325676123);
  CHECK(msg.position == 0x99);

  m.prefix = "outbox";
  REQUIRE(pg::map_logical_message(m, "outbox", 0, 0).has_value());
  CHECK(pg::map_logical_message(m, "outbox", 0, 0)->index() == 1);
  m.prefix = "app:x";
  CHECK_FALSE(pg::map_logical_message(m, "outbox", 0, 0).has_value());
}

TEST_CASE("tuple to row: names, NULLs, timestamp as ms, id") {
  const auto rel = outbox_relation();
  auto cols = fx::outbox_row("17");
  const auto ins = std::get<po::Insert>(po::decode(fx::insert(fx::kOutboxOid, cols)));
  const auto row = pg::tuple_to_row(rel, ins.new_tuple, core::Layout::default_layout());
  CHECK(row.id == "17");
  CHECK(row.columns.size() == 8);
  REQUIRE(row.find("aggregate_id") != nullptr);
  CHECK(*row.find("aggregate_id") == "order-42");
  REQUIRE(row.find("topic") != nullptr);
  CHECK_FALSE(row.find("topic")->has_value());
  CHECK(*row.find("created_at") == "1795325676123");
  CHECK(row.find("nope") == nullptr);
}

TEST_CASE("tuple to row: bytea payload becomes raw bytes; bigint timestamps pass through; TOAST left out") {
  const auto rel = std::get<po::Relation>(po::decode(fx::relation(5, "public", "outbox",
                                                                  {{true, "id", 2950},
                                                                   {false, "aggregatetype"},
                                                                   {false, "aggregateid"},
                                                                   {false, "type"},
                                                                   {false, "payload", 17},
                                                                   {false, "created_at", 20},
                                                                   {false, "big", 25}})));
  core::Layout layout = core::Layout::debezium_layout();
  layout.timestamp_column = "created_at";
  const po::TupleData tuple{{po::ColumnKind::kText, "5f0c..."},   {po::ColumnKind::kText, "orders"},
                            {po::ColumnKind::kText, "o-1"},       {po::ColumnKind::kText, "Created"},
                            {po::ColumnKind::kText, "\\x00ff"},   {po::ColumnKind::kText, "1700000000000"},
                            {po::ColumnKind::kUnchangedToast, ""}};
  const auto row = pg::tuple_to_row(rel, tuple, layout);
  CHECK(row.id == "5f0c...");
  CHECK(*row.find("payload") == std::string("\x00\xff", 2));
  CHECK(*row.find("created_at") == "1700000000000");
  CHECK(row.find("big") == nullptr);

  // timestamptz that is not a finite ISO value -> NULL (the producer stamps the record)
  auto rel2 = outbox_relation();
  auto cols = fx::outbox_row("1");
  cols[7] = fx::text("infinity");
  const auto ins = std::get<po::Insert>(po::decode(fx::insert(fx::kOutboxOid, cols)));
  const auto row2 = pg::tuple_to_row(rel2, ins.new_tuple, core::Layout::default_layout());
  REQUIRE(row2.find("created_at") != nullptr);
  CHECK_FALSE(row2.find("created_at")->has_value());
}

TEST_CASE("missing columns of a layout") {
  CHECK(pg::missing_columns(outbox_relation(), core::Layout::default_layout()).empty());
  const auto rel = std::get<po::Relation>(po::decode(fx::relation(
      1, "public", "outbox", {{true, "id", 20}, {false, "aggregate_type"}, {false, "payload"}})));
  CHECK(pg::missing_columns(rel, core::Layout::default_layout()) ==
        std::vector<std::string>{"aggregate_id", "event_type"});
}

TEST_CASE("assembler: a transaction of outbox inserts becomes records at commit") {
  auto a = make_assembler();
  CHECK_FALSE(a.feed_bytes(fx::begin(0x200, 0, 900)).has_value());
  CHECK(a.in_transaction());
  CHECK_FALSE(a.feed_bytes(fx::outbox_relation()).has_value());
  CHECK_FALSE(a.feed_bytes(fx::insert(fx::kOutboxOid, fx::outbox_row("1"))).has_value());
  CHECK_FALSE(a.feed_bytes(fx::insert(fx::kOutboxOid, fx::outbox_row("2", "order-43"))).has_value());
  const auto t = a.feed_bytes(fx::commit(0x200, 0x230, 0));
  REQUIRE(t.has_value());
  CHECK_FALSE(a.in_transaction());
  CHECK(t->xid == 900);
  CHECK(t->end_lsn == 0x230);
  REQUIRE(t->messages.size() == 2);
  CHECK(t->rejected.empty());
  CHECK(t->bytes > 0);
  const auto& m = t->messages[0];
  CHECK(m.id == "1");
  CHECK(m.topic == "outbox.orders");
  CHECK(m.key == "order-42");
  CHECK(m.value == R"({"total":42})");
  CHECK(header(m, "id") == "1");
  CHECK(header(m, "event_type") == "OrderCreated");
  CHECK(header(m, "traceparent") == "00-abc-def-01");
  CHECK(m.timestamp_ms == 1795325676123);
  CHECK(m.position == 0x230);
  CHECK(t->messages[1].key == "order-43");
  CHECK(t->messages[1].position == 0x230);
}

TEST_CASE(
    "assembler: updates, deletes, truncates and other tables are skipped; Debezium insert-then-delete "
    "publishes") {
  auto a = make_assembler();
  (void)a.feed_bytes(fx::begin(0x300, 0, 1));
  (void)a.feed_bytes(fx::outbox_relation());
  (void)a.feed_bytes(fx::relation(77, "public", "orders", {{true, "id", 20}, {false, "status"}}));
  (void)a.feed_bytes(fx::relation(78, "audit", "outbox", {{true, "id", 20}}));  // same name, other schema
  (void)a.feed_bytes(fx::insert(77, {fx::text("1"), fx::text("new")}));
  (void)a.feed_bytes(fx::insert(78, {fx::text("9")}));
  (void)a.feed_bytes(fx::insert(fx::kOutboxOid, fx::outbox_row("10")));
  (void)a.feed_bytes(fx::del(
      fx::kOutboxOid, 'K',
      {fx::text("10"), fx::null(), fx::null(), fx::null(), fx::null(), fx::null(), fx::null(), fx::null()}));
  (void)a.feed_bytes(fx::update(77, 0, {}, {fx::text("1"), fx::text("paid")}));
  (void)a.feed_bytes(fx::truncate(0, {77}));
  (void)a.feed_bytes(fx::origin(0x10, "elsewhere"));
  (void)a.feed_bytes(fx::type(9999, "public", "mood"));
  const auto t = a.feed_bytes(fx::commit(0x300, 0x330, 0));
  REQUIRE(t.has_value());
  REQUIRE(t->messages.size() == 1);
  CHECK(t->messages[0].id == "10");
}

TEST_CASE("assembler: a transaction with nothing for us still completes (its position can be confirmed)") {
  auto a = make_assembler();
  (void)a.feed_bytes(fx::begin(0x400, 0, 1));
  (void)a.feed_bytes(fx::message(true, 0x3F0, "other-app:x", "ignored"));
  const auto t = a.feed_bytes(fx::commit(0x400, 0x428, 0));
  REQUIRE(t.has_value());
  CHECK(t->size() == 0);
  CHECK(t->end_lsn == 0x428);
}

TEST_CASE("assembler: logical decoding messages with our prefix become records") {
  std::vector<std::string> warnings;
  auto a = make_assembler(&warnings);
  // non-transactional, ours: skipped with a warning; not ours: silently
  CHECK_FALSE(a.feed_bytes(fx::message(false, 0x100, "outbox:orders:k", "x")).has_value());
  CHECK_FALSE(a.feed_bytes(fx::message(false, 0x101, "app", "x")).has_value());
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("non-transactional") != std::string::npos);

  const int64_t commit_time = 815000000123456;  // us since 2000-01-01
  (void)a.feed_bytes(fx::begin(0x500, commit_time, 2));
  (void)a.feed_bytes(fx::message(true, 0x4E0, "outbox:orders:order-42", R"({"id":42})"));
  (void)a.feed_bytes(fx::message(true, 0x4E8, "outbox", "no topic"));
  const auto t = a.feed_bytes(fx::commit(0x500, 0x528, commit_time));
  REQUIRE(t.has_value());
  REQUIRE(t->messages.size() == 1);
  CHECK(t->messages[0].topic == "orders");
  CHECK(t->messages[0].key == "order-42");
  CHECK(t->messages[0].id == "0/4E0");
  CHECK(t->messages[0].timestamp_ms == pg::pg_time_to_unix_ms(commit_time));
  CHECK(t->messages[0].position == 0x528);
  REQUIRE(t->rejected.size() == 1);
  CHECK(t->rejected[0].row.id == "0/4E8");
  CHECK(t->rejected[0].row.position == 0x528);
  CHECK(*t->rejected[0].row.find("content") == "no topic");
  CHECK(t->rejected[0].error.find("names no topic") != std::string::npos);
}

TEST_CASE("assembler: a row the Router refuses is rejected with its columns") {
  auto a = make_assembler();
  (void)a.feed_bytes(fx::begin(0x600, 0, 3));
  (void)a.feed_bytes(fx::outbox_relation());
  auto cols = fx::outbox_row("5");
  cols[5] = fx::text("[1,2]");  // headers not an object
  (void)a.feed_bytes(fx::insert(fx::kOutboxOid, cols));
  const auto t = a.feed_bytes(fx::commit(0x600, 0x628, 0));
  REQUIRE(t.has_value());
  CHECK(t->messages.empty());
  REQUIRE(t->rejected.size() == 1);
  CHECK(t->rejected[0].row.id == "5");
  CHECK(t->rejected[0].row.position == 0x628);
  CHECK(t->rejected[0].error.find("headers") != std::string::npos);
}

TEST_CASE("assembler: a Relation of the outbox table without a required column is fatal, naming it") {
  auto a = make_assembler();
  CHECK_THROWS_WITH_AS(
      (void)a.feed_bytes(fx::relation(
          fx::kOutboxOid, "public", "outbox",
          {{true, "id", 20}, {false, "aggregate_type"}, {false, "event_type"}, {false, "payload"}})),
      doctest::Contains("no column \"aggregate_id\""), core::FatalError);
  // the same shape for another table is fine
  CHECK_NOTHROW((void)a.feed_bytes(fx::relation(5, "public", "orders", {{true, "id", 20}})));
}

TEST_CASE("assembler: protocol order violations throw DecodeError") {
  auto a = make_assembler();
  CHECK_THROWS_AS((void)a.feed_bytes(fx::commit(1, 2, 0)), pg::DecodeError);
  (void)a.feed_bytes(fx::outbox_relation());
  CHECK_THROWS_WITH_AS((void)a.feed_bytes(fx::insert(fx::kOutboxOid, fx::outbox_row("1"))),
                       doctest::Contains("outside a transaction"), pg::DecodeError);
  CHECK_THROWS_AS((void)a.feed_bytes(fx::message(true, 1, "outbox:t", "x")), pg::DecodeError);
  (void)a.feed_bytes(fx::begin(0x700, 0, 4));
  CHECK_THROWS_WITH_AS((void)a.feed_bytes(fx::begin(0x800, 0, 5)),
                       doctest::Contains("inside the transaction"), pg::DecodeError);
  CHECK_THROWS_WITH_AS((void)a.feed_bytes(fx::insert(999, {fx::text("1")})),
                       doctest::Contains("before its Relation"), pg::DecodeError);
  CHECK_THROWS_AS((void)a.feed_bytes(fx::insert(fx::kOutboxOid, {fx::text("1")})),
                  pg::DecodeError);  // 1 of 8 cols
  CHECK_THROWS_WITH_AS((void)a.feed_bytes(fx::commit(0x701, 0x720, 0)), doctest::Contains("began with"),
                       pg::DecodeError);
  a.reset();
  CHECK_FALSE(a.in_transaction());
  CHECK(a.relations().size() == 0);
}

TEST_CASE("assembler: a transaction larger than the chunk size comes out in chunks, then its end") {
  const std::string payload = "\"" + std::string(3000, 'x') + "\"";  // each record ~3.5 KB in memory
  auto a = make_assembler(nullptr, core::Layout::default_layout(), 8192);
  (void)a.feed_bytes(fx::begin(0x500, 0, 7));
  (void)a.feed_bytes(fx::outbox_relation());
  std::vector<pg::Transaction> out;
  for (int i = 1; i <= 7; ++i) {
    if (auto t = a.feed_bytes(fx::insert(fx::kOutboxOid, fx::outbox_row(std::to_string(i), "k", payload))))
      out.push_back(std::move(*t));
  }
  auto end = a.feed_bytes(fx::commit(0x500, 0x530, 0));
  REQUIRE(end.has_value());
  out.push_back(std::move(*end));
  // 3 records reach 8 KiB: two chunks of 3, then the end with the last one.
  REQUIRE(out.size() == 3);
  std::vector<std::string> ids;
  for (std::size_t c = 0; c < out.size(); ++c) {
    CAPTURE(c);
    const bool last = c + 1 == out.size();
    CHECK(out[c].complete == last);
    CHECK(out[c].xid == 7);
    CHECK(out[c].commit_lsn == 0x500);
    CHECK(out[c].end_lsn == (last ? 0x530u : 0x501u));  // a chunk's position: after the commit's start
    CHECK(out[c].messages.size() == (last ? 1u : 3u));
    for (const auto& m : out[c].messages) {
      CHECK(m.position == out[c].end_lsn);
      ids.push_back(m.id);
    }
    if (!last) CHECK(out[c].bytes >= 8192);
  }
  CHECK(ids == std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7"});
  CHECK_FALSE(a.in_transaction());

  // Exactly-once recovery: the first 4 records of that transaction are in Kafka; it streams in again.
  a.skip_records(0x500, 4);
  (void)a.feed_bytes(fx::begin(0x400, 0, 6));  // an earlier transaction is not the one
  auto other = a.feed_bytes(fx::insert(fx::kOutboxOid, fx::outbox_row("0", "k")));
  CHECK_FALSE(other.has_value());
  other = a.feed_bytes(fx::commit(0x400, 0x420, 0));
  REQUIRE(other.has_value());
  CHECK(other->messages.size() == 1);
  (void)a.feed_bytes(fx::begin(0x500, 0, 7));
  ids.clear();
  CHECK(a.take_skipped_rejected().empty());
  for (int i = 1; i <= 7; ++i) {
    auto row = fx::outbox_row(std::to_string(i), "k", payload);
    if (i == 3) row[5] = fx::text("[1,2]");  // malformed (headers not an object): dropped with the rest
    if (auto t = a.feed_bytes(fx::insert(fx::kOutboxOid, row)))
      for (const auto& m : t->messages) ids.push_back(m.id);
  }
  end = a.feed_bytes(fx::commit(0x500, 0x530, 0));
  for (const auto& m : end->messages) ids.push_back(m.id);
  CHECK(ids == std::vector<std::string>{"5", "6", "7"});
  // ... but handed over to be parked: it was to be parked when the transaction was confirmed.
  const auto skipped = a.take_skipped_rejected();
  REQUIRE(skipped.size() == 1);
  CHECK(skipped[0].row.id == "3");
  CHECK(skipped[0].error.find("headers") != std::string::npos);
  CHECK(a.take_skipped_rejected().empty());
  // Once only: the next time it is whole again.
  (void)a.feed_bytes(fx::begin(0x500, 0, 7));
  (void)a.feed_bytes(fx::insert(fx::kOutboxOid, fx::outbox_row("1", "k")));
  CHECK(a.feed_bytes(fx::commit(0x500, 0x530, 0))->messages.size() == 1);
}
