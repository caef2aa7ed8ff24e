// Parking (pg/common/parking.h): what a parked event keeps, and where the table's DDL comes from.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/routing.h"
#include "core/settlement.h"
#include "pg/common/parking.h"

namespace pg = outbox_relay::pg;
namespace core = outbox_relay::core;

namespace {

core::Batch batch_with_poison_and_rejected() {
  core::Batch b;
  core::OutboxMessage m;
  m.id = "7";
  m.topic = "orders";
  m.key = "order-1";
  m.value = std::string("\x00\xff{bin}", 7);  // a bytea payload: not text
  m.headers = {{"id", "7"}, {"event_type", "created"}};
  b.messages.push_back(m);
  core::RejectedRow r;
  r.row.id = "8";
  r.row.columns = {{"id", "8"},
                   {"aggregate_type", "order"},
                   {"aggregate_id", "order-2"},
                   {"payload", "{\"n\":8}"},
                   {"headers", "[1,2]"},
                   {"topic", std::nullopt}};
  r.error = "headers must be a JSON object";
  b.rejected.push_back(r);
  return b;
}

// The one parked row of `park` as JSON.
nlohmann::json parked_row(const core::Settlement::Park& park, const std::string& source) {
  const auto b = batch_with_poison_and_rejected();
  core::Settlement s;
  s.park = {park};
  const auto rows = nlohmann::json::parse(pg::parked_rows_json(b, s, core::Layout::default_layout(), source));
  REQUIRE(rows.size() == 1);
  CHECK(pg::parked_id(b, park) == rows[0]["id"].get<std::string>());
  return rows[0];
}

}  // namespace

TEST_CASE("parking: a poison message keeps its record; bytes that are not text are hex, never cut at NUL") {
  const auto row = parked_row({0, false, "message too large"}, "table outbox");
  CHECK(row["id"] == "7");
  CHECK(row["topic"] == "orders");
  CHECK(row["key"] == "order-1");
  CHECK(row["payload"] == "\\x00ff7b62696e7d");
  CHECK(row["headers"] == nlohmann::json({{"id", "7"}, {"event_type", "created"}}));
  CHECK(row["error"] == "message too large");
  CHECK(row["source"] == "table outbox");
  CHECK(row["rejected"] == false);
}

TEST_CASE("parking: a rejected row keeps every column (in headers), and its key, topic and payload") {
  const auto row = parked_row({0, true, "headers must be a JSON object"}, "wal slot s");
  CHECK(row["id"] == "8");
  CHECK(row["key"] == "order-2");
  CHECK(row["payload"] == "{\"n\":8}");
  CHECK(row["topic"].is_null());
  CHECK(row["headers"]["aggregate_type"] == "order");
  CHECK(row["headers"]["headers"] == "[1,2]");
  CHECK(row["headers"]["topic"].is_null());
  CHECK(row["headers"].size() == 6);
  CHECK(row["error"] == "headers must be a JSON object");
  CHECK(row["source"] == "wal slot s");
  CHECK(row["rejected"] == true);  // poll mode adds the columns it did not read (insert_parked_sql)
}

TEST_CASE("parking: the table's DDL is migration 003's text, run only where the table is missing") {
  const auto& ddl = pg::parked_table_ddl();
  CHECK(ddl.find("CREATE TABLE IF NOT EXISTS outbox_relay_parked") != std::string::npos);
  CHECK(ddl.find("CREATE INDEX IF NOT EXISTS outbox_relay_parked_at_idx") != std::string::npos);

  std::vector<std::string> ran;
  auto query_with = [&ran](const std::string& exists) -> pg::TextQuery {
    return [&ran, exists](const std::string& sql, const std::vector<std::string>&) {
      ran.push_back(sql);
      return pg::TextRows{{std::optional<std::string>(exists)}};
    };
  };
  pg::ensure_parked_table(query_with("t"));
  CHECK(ran.size() == 1);
  ran.clear();
  pg::ensure_parked_table(query_with("f"));
  REQUIRE(ran.size() == 2);
  CHECK(ran[1] == ddl);
}

TEST_CASE("parking: the insert reads the rows from one JSON parameter") {
  CHECK(pg::insert_parked_sql(1).find("FROM jsonb_to_recordset($1::jsonb) AS x(id text,") !=
        std::string::npos);
  CHECK(pg::insert_parked_sql(2).find("$2::jsonb") != std::string::npos);
}
