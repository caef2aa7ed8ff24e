// --exactly-once and its flags: what the guarantee needs of the others is refused at start.
#include <doctest/doctest.h>

#include <string>

#include "app/cli.h"
#include "app/options.h"
#include "core/errors.h"

using namespace outbox_relay;

namespace {

app::RawOptions eos() {
  app::RawOptions r;
  r.db_url = "postgresql://relay@h/shop";
  r.kafka_brokers = "k:9092";
  r.exactly_once = true;
  return r;
}

std::string no_secret(const std::string&, const std::string&) { return ""; }

std::string error_of(const app::RawOptions& r) {
  try {
    (void)app::validate(r, no_secret);
  } catch (const core::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("exactly-once: off by default; on, the identity is derived from database and table or slot") {
  auto plain = eos();
  plain.exactly_once = false;
  CHECK_FALSE(app::validate(plain, no_secret).transactions.has_value());

  const auto o = app::validate(eos(), no_secret);
  REQUIRE(o.transactions.has_value());
  CHECK(o.transactions->identity == "outbox-relay.poll.shop.public.outbox.0of1");
  CHECK(o.transactions->checkpoint_topic == "outbox-relay.checkpoints");
  CHECK(o.transactions->timeout == std::chrono::seconds(60));

  // The same relay however the table is spelled; another shard is another relay.
  auto spelled = eos();
  spelled.table = "public.Outbox";
  CHECK(app::validate(spelled, no_secret).transactions->identity ==
        "outbox-relay.poll.shop.public.outbox.0of1");
  auto shard = eos();
  shard.shard = "1/2";
  CHECK(app::validate(shard, no_secret).transactions->identity ==
        "outbox-relay.poll.shop.public.outbox.1of2");

  auto wal = eos();
  wal.mode = "wal";
  wal.slot = "orders_slot";
  CHECK(app::validate(wal, no_secret).transactions->identity == "outbox-relay.wal.shop.orders_slot");

  auto given = eos();
  given.transactional_id = "orders-relay";
  given.checkpoint_topic = "relay.progress";
  given.transaction_timeout = "2m";
  const auto g = app::validate(given, no_secret);
  CHECK(g.transactions->identity == "orders-relay");
  CHECK(g.transactions->checkpoint_topic == "relay.progress");
  CHECK(g.transactions->timeout == std::chrono::minutes(2));
}

TEST_CASE("exactly-once: refused with a poison policy the transaction cannot hold, and bad settings") {
  auto dlq = eos();
  dlq.on_poison = "dlq";
  dlq.dlq_topic = "dead";
  CHECK(error_of(dlq).find("--exactly-once works with --on-poison=park only") == 0);
  auto block = eos();
  block.on_poison = "block";
  CHECK(error_of(block).find("--exactly-once works with --on-poison=park only") == 0);
  auto topic = eos();
  topic.checkpoint_topic = "bad topic";
  CHECK(error_of(topic) == "--checkpoint-topic: \"bad topic\" is not a valid Kafka topic name");
  auto timeout = eos();
  timeout.kafka_properties = {"message.timeout.ms=90000"};
  CHECK(error_of(timeout) == "-X message.timeout.ms=90000 exceeds --transaction-timeout (60000 ms)");
  auto short_timeout = eos();
  short_timeout.transaction_timeout = "10ms";
  CHECK(error_of(short_timeout).find("--transaction-timeout") == 0);
}
