// Poll mode's statements as text: what each option adds, and what the table's columns decide.
#include <doctest/doctest.h>

#include <string>

#include "core/routing.h"
#include "pg/poll/claim_sql.h"

namespace pg = outbox_relay::pg;
using outbox_relay::core::Layout;

namespace {

// The table sql/001_outbox.sql creates, with the columns given added.
pg::TableShape outbox_table(std::vector<std::pair<std::string, std::string>> extra = {},
                            const std::string& id_type = "bigint") {
  pg::TableShape t;
  t.schema = "public";
  t.name = "outbox";
  t.relkind = "r";
  t.columns = {{"id", id_type},          {"aggregate_type", "text"},
               {"aggregate_id", "text"}, {"event_type", "text"},
               {"payload", "jsonb"},     {"headers", "jsonb"},
               {"topic", "text"},        {"created_at", "timestamp with time zone"}};
  t.columns.insert(t.columns.end(), extra.begin(), extra.end());
  return t;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("claim sql: the default table, integer ids: claim past the watermark, delete when sent") {
  const auto s = pg::claim_statements(Layout::default_layout(), outbox_table(), {});
  CHECK(s.watermark);
  CHECK_FALSE(s.failed_columns);
  CHECK(
      s.claim ==
      "SELECT o.\"id\"::text AS \"id\", o.\"aggregate_id\"::text AS \"aggregate_id\", o.\"payload\"::text AS "
      "\"payload\", o.\"aggregate_type\"::text AS \"aggregate_type\", o.\"event_type\"::text AS "
      "\"event_type\", o.\"topic\"::text AS \"topic\", o.\"headers\"::text AS \"headers\", (extract(epoch "
      "FROM "
      "o.\"created_at\") * 1000)::bigint::text AS \"created_at\" FROM \"public\".\"outbox\" AS o WHERE true "
      "AND "
      "o.\"id\" > $2::bigint ORDER BY o.\"id\" LIMIT $1 FOR UPDATE OF o SKIP LOCKED");
  CHECK(s.snapshot_xmax == "SELECT txid_snapshot_xmax(txid_current_snapshot())::text");
  CHECK(s.advance ==
        "SELECT txid_snapshot_xmin(txid_current_snapshot()) >= $1::bigint, (SELECT min(o.\"id\")::text FROM "
        "\"public\".\"outbox\" AS o WHERE true AND o.\"id\" > $2::bigint AND o.\"id\" <= $3::bigint)");
  CHECK(s.done == "DELETE FROM \"public\".\"outbox\" WHERE \"id\" = ANY($1::bigint[])");
}

TEST_CASE("claim sql: --on-sent=mark stamps sent_at, and the claim skips stamped rows") {
  pg::PollSourceConfig cfg;
  cfg.on_sent = pg::OnSent::kMark;
  const auto s =
      pg::claim_statements(Layout::default_layout(), outbox_table({{"sent_at", "timestamptz"}}), cfg);
  CHECK(s.done == "UPDATE \"public\".\"outbox\" SET sent_at = now() WHERE \"id\" = ANY($1::bigint[])");
  CHECK(has(s.claim, "WHERE true AND o.sent_at IS NULL AND o.\"id\" > $2::bigint"));
  CHECK(has(s.advance, "WHERE true AND o.sent_at IS NULL AND o.\"id\" > $2::bigint"));
}

TEST_CASE("claim sql: with failed_at and error, poison rows are marked failed and skipped by the claim") {
  const auto s = pg::claim_statements(Layout::default_layout(),
                                      outbox_table({{"failed_at", "timestamptz"}, {"error", "text"}}), {});
  CHECK(s.failed_columns);
  CHECK(has(s.claim, "WHERE true AND o.failed_at IS NULL AND"));
  CHECK(s.park == "UPDATE \"public\".\"outbox\" SET failed_at = now(), error = $2 WHERE \"id\" = $1::bigint");
  const auto with_attempts = pg::claim_statements(
      Layout::default_layout(),
      outbox_table({{"failed_at", "timestamptz"}, {"error", "text"}, {"attempts", "integer"}}), {});
  CHECK(with_attempts.park ==
        "UPDATE \"public\".\"outbox\" SET failed_at = now(), error = $2, attempts = attempts + 1 WHERE "
        "\"id\" = "
        "$1::bigint");
  // failed_at alone is not enough: the reason has nowhere to go
  CHECK_FALSE(pg::claim_statements(Layout::default_layout(), outbox_table({{"failed_at", "timestamptz"}}), {})
                  .failed_columns);
}

TEST_CASE(
    "claim sql: without failed columns, parking moves the rows still in the table to outbox_relay_parked") {
  const auto s = pg::claim_statements(Layout::default_layout(), outbox_table(), {});
  CHECK(s.park ==
        "WITH gone AS (DELETE FROM \"public\".\"outbox\" AS o WHERE \"id\" = ANY($1::bigint[]) RETURNING "
        "o.\"id\"::text AS id, to_jsonb(o) AS row) INSERT INTO outbox_relay_parked (id, topic, key, payload, "
        "headers, error, source) SELECT x.id, x.topic, x.key, x.payload, CASE WHEN x.rejected THEN d.row || "
        "x.headers ELSE x.headers END, x.error, x.source FROM jsonb_to_recordset($2::jsonb) AS x(id text, "
        "topic "
        "text, key text, payload text, headers jsonb, error text, source text, rejected boolean) JOIN gone "
        "AS d "
        "ON d.id = x.id");
}

TEST_CASE("claim sql: shards take the keys whose hash falls on them") {
  pg::PollSourceConfig cfg;
  cfg.shard_index = 2;
  cfg.shard_count = 3;
  const auto s = pg::claim_statements(Layout::default_layout(), outbox_table(), cfg);
  const std::string shard = " AND mod(abs(hashtextextended(o.\"aggregate_id\"::text, 0)), 3) = 2";
  CHECK(has(s.claim, shard));
  CHECK(has(s.advance, shard));  // the watermark only passes rows of this shard
  cfg.shard_count = 1;
  CHECK_FALSE(
      has(pg::claim_statements(Layout::default_layout(), outbox_table(), cfg).claim, "hashtextextended"));
}

TEST_CASE("claim sql: skip-blocked-keys passes over keys with an earlier failed row") {
  pg::PollSourceConfig cfg;
  cfg.skip_blocked_keys = true;
  const auto s = pg::claim_statements(Layout::default_layout(),
                                      outbox_table({{"failed_at", "timestamptz"}, {"error", "text"}}), cfg);
  CHECK(has(s.claim,
            " AND NOT EXISTS (SELECT 1 FROM \"public\".\"outbox\" AS f WHERE f.failed_at IS NOT NULL AND "
            "f.\"aggregate_id\" = o.\"aggregate_id\" AND f.\"id\" < o.\"id\")"));
}

TEST_CASE("claim sql: an order column other than the id: ordered by it then the id, no watermark") {
  pg::PollSourceConfig cfg;
  cfg.order_column = "created_at";
  const auto s = pg::claim_statements(Layout::default_layout(), outbox_table(), cfg);
  CHECK_FALSE(s.watermark);
  CHECK(has(s.claim,
            "FROM \"public\".\"outbox\" AS o WHERE true ORDER BY o.\"created_at\", o.\"id\" LIMIT $1"));
  CHECK_FALSE(has(s.claim, "$2"));
  CHECK(s.snapshot_xmax.empty());
  CHECK(s.advance.empty());
}

TEST_CASE("claim sql: a uuid id (Debezium) has no watermark and casts ids to uuid[]") {
  pg::TableShape t;
  t.schema = "app";
  t.name = "Outbox";
  t.columns = {{"id", "uuid"},
               {"aggregatetype", "character varying(255)"},
               {"aggregateid", "character varying(255)"},
               {"type", "character varying(255)"},
               {"payload", "jsonb"}};
  const auto s = pg::claim_statements(Layout::debezium_layout(), t, {});
  CHECK_FALSE(s.watermark);
  CHECK(
      has(s.claim,
          "FROM \"app\".\"Outbox\" AS o WHERE true ORDER BY o.\"id\" LIMIT $1 FOR UPDATE OF o SKIP LOCKED"));
  CHECK(s.done == "DELETE FROM \"app\".\"Outbox\" WHERE \"id\" = ANY($1::uuid[])");
  // optional columns the table lacks are not selected
  CHECK_FALSE(has(s.claim, "created_at"));
  CHECK_FALSE(has(s.claim, "headers"));
}

TEST_CASE("claim sql: identifiers with quotes stay one identifier") {
  Layout layout = Layout::default_layout();
  layout.key_column = "agg\"id";
  auto t = outbox_table();
  t.columns.emplace_back("agg\"id", "text");
  const auto s = pg::claim_statements(layout, t, {});
  CHECK(has(s.claim, "o.\"agg\"\"id\"::text AS \"agg\"\"id\""));
}
