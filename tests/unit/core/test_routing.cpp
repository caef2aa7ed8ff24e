#include <doctest/doctest.h>

#include <algorithm>

#include "core/errors.h"
#include "core/routing.h"

using namespace outbox_relay::core;

namespace {

OutboxRow default_row(std::optional<std::string> headers = std::nullopt,
                      std::optional<std::string> topic = std::nullopt) {
  OutboxRow r;
  r.id = "42";
  r.columns = {{"id", "42"},
               {"aggregate_id", "order-7"},
               {"payload", R"({"total": 10})"},
               {"aggregate_type", "order"},
               {"event_type", "order-created"},
               {"topic", topic},
               {"headers", headers},
               {"created_at", "1700000000123"}};
  return r;
}

const OutboxMessage& ok(const Router::Result& r) {
  REQUIRE_MESSAGE(r.index() == 0, (r.index() == 1 ? std::get<1>(r) : ""));
  return std::get<0>(r);
}

}  // namespace

TEST_CASE("default layout maps key, value, topic, headers and timestamp") {
  Router router(Layout::default_layout());
  const auto res = router.map(default_row(R"({"traceparent": "00-abc-01", "n": 5, "z": null})"));
  const auto& m = ok(res);
  CHECK(m.id == "42");
  CHECK(m.topic == "outbox.order");
  CHECK(m.key == std::optional<std::string>("order-7"));
  CHECK(m.value == std::optional<std::string>(R"({"total": 10})"));
  CHECK(m.timestamp_ms == 1700000000123);
  REQUIRE(m.headers.size() == 5);
  CHECK(m.headers[0] == Header{"id", "42"});
  CHECK(m.headers[1] == Header{"event_type", "order-created"});
  CHECK(m.headers[2] == Header{"traceparent", "00-abc-01"});
  CHECK(m.headers[3] == Header{"n", "5"});
  CHECK(m.headers[4] == Header{"z", ""});
}

TEST_CASE("the topic column overrides the template; an empty one does not") {
  Router router(Layout::default_layout());
  CHECK(ok(router.map(default_row(std::nullopt, "payments.v1"))).topic == "payments.v1");
  CHECK(ok(router.map(default_row(std::nullopt, ""))).topic == "outbox.order");
}

TEST_CASE("invalid headers are poison with a reason") {
  Router router(Layout::default_layout());
  auto r = router.map(default_row("[1,2]"));
  REQUIRE(r.index() == 1);
  CHECK(std::get<1>(r).find("JSON object") != std::string::npos);
  r = router.map(default_row("{not json"));
  REQUIRE(r.index() == 1);
  CHECK(std::get<1>(r).find("not valid JSON") != std::string::npos);
}

TEST_CASE("an invalid topic name is poison") {
  Router router(Layout::default_layout());
  auto r = router.map(default_row(std::nullopt, "bad topic!"));
  REQUIRE(r.index() == 1);
  CHECK(std::get<1>(r).find("invalid topic name") != std::string::npos);
  CHECK(valid_topic_name(std::string(249, 'a')));
  CHECK_FALSE(valid_topic_name(std::string(250, 'a')));
  CHECK_FALSE(valid_topic_name(".."));
  CHECK(valid_topic_name("a-b_c.D9"));
}

TEST_CASE("a NULL placeholder column is poison, a NULL payload is a tombstone") {
  Router router(Layout::default_layout());
  auto row = default_row();
  row.columns[3].value.reset();  // aggregate_type
  auto r = router.map(row);
  REQUIRE(r.index() == 1);
  CHECK(std::get<1>(r).find("aggregate_type") != std::string::npos);

  row = default_row();
  row.columns[2].value.reset();  // payload
  CHECK_FALSE(ok(router.map(row)).value.has_value());
}

TEST_CASE("debezium layout follows the Outbox Event Router defaults") {
  Router router(Layout::debezium_layout());
  OutboxRow r;
  r.id = "5d3c0b64-1f3e-4c1a-9a53-7b1d3f0e2c11";
  r.columns = {{"id", r.id},
               {"aggregatetype", "Order"},
               {"aggregateid", "o-1"},
               {"type", "OrderCreated"},
               {"payload", "{}"}};
  const auto res = router.map(r);
  const auto& m = ok(res);
  CHECK(m.topic == "outbox.event.Order");
  CHECK(m.key == std::optional<std::string>("o-1"));
  CHECK(m.headers[0] == Header{"id", r.id});
  CHECK(m.headers[1] == Header{"type", "OrderCreated"});
  CHECK(Layout::debezium_layout().required_columns() ==
        std::vector<std::string>{"id", "aggregateid", "payload", "aggregatetype", "type"});
}

TEST_CASE("template placeholders name any column; the route-by alias follows the layout") {
  auto layout = Layout::default_layout();
  layout.topic_template = "{event_type}.${routedByValue}.v1";
  Router router(layout);
  CHECK(ok(router.map(default_row())).topic == "order-created.order.v1");
  const auto cols = layout.columns();
  CHECK(std::find(cols.begin(), cols.end(), "event_type") != cols.end());
}

TEST_CASE("a row's headers may not name a header the relay sets (id, event_type): poison, with the reason") {
  const Router router(Layout::default_layout());
  for (const auto* json : {R"({"id": "999"})", R"({"traceparent": "x", "event_type": "order-cancelled"})"}) {
    const auto r = router.map(default_row(std::string(json)));
    REQUIRE(r.index() == 1);
    CHECK(std::get<1>(r).find("is reserved") != std::string::npos);
  }
  // Other names, including other cases of the same letters, pass through.
  const auto mapped = router.map(default_row(std::string(R"({"ID": "x", "trace": "t"})")));
  const auto& m = ok(mapped);
  CHECK(m.headers.size() == 4);
  CHECK(m.headers[0] == Header{"id", "42"});
  const Router dbz(Layout::debezium_layout());
  CHECK(Layout::debezium_layout().reserved_headers() == std::vector<std::string>{"id", "type"});
}

TEST_CASE("layout validation: a topic template that can route no row is refused at start, naming the flag") {
  auto with_template = [](const std::string& t) {
    auto l = Layout::default_layout();
    l.topic_template = t;
    return l;
  };
  auto refusal = [](const Layout& l) -> std::string {
    try {
      l.validate();
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(refusal(with_template("outbox.{aggregate_type")) ==
        "--topic-template: \"outbox.{aggregate_type\" has a '{' that is never closed");
  CHECK(refusal(with_template("outbox. {aggregate_type}"))
            .find("character no Kafka topic name may hold: ' '") != std::string::npos);
  CHECK(refusal(with_template("outbox.{}")).find("empty or nested placeholder") != std::string::npos);
  CHECK(refusal(with_template("outbox.aggregate_type}")).find("'}' without its '{'") != std::string::npos);
  CHECK(refusal(with_template("outbox.$aggregate_type")).find("'$' not followed by '{'") !=
        std::string::npos);
  auto no_route = with_template("outbox.${routedByValue}");
  no_route.route_by_column.clear();
  CHECK(refusal(no_route).find("no --route-by column") != std::string::npos);
  auto no_topic = with_template("");
  no_topic.topic_column.clear();
  CHECK(refusal(no_topic).find("is empty") != std::string::npos);
  // Valid forms.
  CHECK(refusal(Layout::default_layout()) == "");
  CHECK(refusal(Layout::debezium_layout()) == "");
  CHECK(refusal(with_template("fixed-topic_1.v2")) == "");
  CHECK(refusal(with_template("{aggregate_type}.${routedByValue}.events")) == "");
  CHECK_THROWS_AS(Router(with_template("bad topic")), ConfigError);
}

TEST_CASE("layout validation: a header placement may not reuse a reserved or taken header name") {
  auto l = Layout::default_layout();
  l.header_placements.push_back({"payload", "id"});
  CHECK_THROWS_WITH_AS(
      l.validate(), "--header-column: header \"id\" is set already (the relay sends the outbox id as \"id\")",
      ConfigError);
  auto twice = Layout::default_layout();
  twice.header_placements.push_back({"aggregate_type", "event_type"});
  CHECK_THROWS_AS(twice.validate(), ConfigError);
  auto extra = Layout::default_layout();
  extra.header_placements.push_back({"aggregate_type", "aggregate-type"});
  CHECK_NOTHROW(extra.validate());
}

TEST_CASE("headers holding a number beyond a double are poison with a reason, not an exception") {
  // jsonb accepts it (numeric); found by the decoder fuzzer, where it ended the process.
  const Router router(Layout::default_layout());
  const auto r = router.map(default_row(std::string(R"({"n": 2021666E666})")));
  REQUIRE(r.index() == 1);
  CHECK(std::get<1>(r).find("headers cannot be read") == 0);
}
