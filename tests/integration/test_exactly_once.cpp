// --exactly-once against the real PostgreSQL and Kafka broker: the relay is killed (SIGKILL, by its
// test hook OUTBOX_RELAY_TEST_KILL_AT) at each step of a batch's life and restarted; a read_committed
// consumer must then see every committed event exactly once. A read_uncommitted consumer, reading
// aborted records too, shows that the crash really left a re-sent batch behind.
#include <doctest/doctest.h>
#include <signal.h>
#include <algorithm>

#include <future>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/errors.h"
#include "helpers.h"
#include "kafka/checkpoint_topic.h"
#include "kafka/config.h"
#include "kafka/producer.h"
#include "relay_checks.h"

using namespace outbox_relay::testing;

namespace {

// `n` events on 20 keys, each its own committed row (poll) or, in `txns` transactions (WAL).
std::vector<std::pair<std::string, std::string>> write(const std::string& url, const std::string& topic,
                                                       int n, int txns = 1) {
  for (int t = 0; t < txns; ++t) {
    const int from = t * n / txns + 1, to = (t + 1) * n / txns;
    sql(url,
        "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) SELECT 'order', 'k' "
        "|| (i % 20), 'order-created', jsonb_build_object('seq', i), '" +
            topic + "' FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") i");
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : sql(url, "SELECT id::text, aggregate_id FROM outbox ORDER BY outbox.id")) {
    out.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  return out;
}

// Runs the relay until it kills itself at `kill_at` (POINT:N); returns its output.
std::string run_until_killed(const std::vector<std::string>& args, const std::string& kill_at) {
  Process relay(args, {{"OUTBOX_RELAY_TEST_KILL_AT", kill_at}});
  const auto rc = relay.wait(90s);
  INFO(relay.output());
  REQUIRE(rc == std::optional<int>(128 + SIGKILL));
  REQUIRE(relay.output().find("test hook: killing the relay") != std::string::npos);
  return relay.output();
}

std::string run_until_idle(const std::vector<std::string>& args) {
  Process relay(args);
  const auto rc = relay.wait(120s);
  INFO(relay.output());
  REQUIRE(rc == std::optional<int>(0));
  return relay.output();
}

// How many records of each id in [from, to] `records` hold (header id).
std::map<long, int> copies(const std::vector<Record>& records, long from, long to) {
  std::map<long, int> n;
  for (long id = from; id <= to; ++id) n[id] = 0;
  for (const auto& r : records) {
    const long id = std::stol(r.header("id").value_or("0"));
    if (id >= from && id <= to) ++n[id];
  }
  return n;
}

// True when every id in [from, to] is in `records` exactly once: not sent again after a restart.
bool sent_once(const std::vector<Record>& records, long from, long to) {
  for (const auto& [id, n] : copies(records, from, to)) {
    if (n != 1) return false;
  }
  return true;
}

std::size_t duplicates(const std::vector<Record>& records) {
  std::map<std::string, int> seen;
  std::size_t dup = 0;
  for (const auto& r : records) dup += seen[r.header("id").value_or("")]++ > 0 ? 1 : 0;
  return dup;
}

// Every committed event exactly once, in per-key order, for a read_committed consumer.
void require_exactly_once(const std::string& topic,
                          const std::vector<std::pair<std::string, std::string>>& committed) {
  const auto records = consume_all(topic);
  const auto v = verify(committed, records);
  INFO(v.summary());
  CHECK(v.ok());
  CHECK(duplicates(records) == 0);
  CHECK(records.size() == committed.size());
}

// One checkpoint topic for the whole run, shared as relays share it on a real cluster (each test's
// database gives its relay an identity of its own).
std::vector<std::string> eos_args(const std::string& url, std::vector<std::string> extra) {
  static const std::string checkpoints = "it.checkpoints." + unique_suffix();
  // One batch per transaction (no growth under the backlog): kill points fall on known batches. Every
  // batch 100 events, the first too (its size not known yet, a first claim assumes 64 KiB events: 8 MiB
  // is 128 of them), unless the test bounds batches by size itself.
  std::vector<std::string> a = {
      "--exactly-once",     "--batch-size", "100", "--http-addr", "off", "--transaction-batches", "1",
      "--checkpoint-topic", checkpoints};
  if (std::find(extra.begin(), extra.end(), "--batch-bytes") == extra.end())
    a.insert(a.end(), {"--memory-budget", "32MiB", "--batch-bytes", "8MiB"});
  a.insert(a.end(), extra.begin(), extra.end());
  return relay_args(url, a);
}

// A WAL-mode relay on `slot` that exits once idle, with eos_args.
std::vector<std::string> wal_eos_args(const std::string& url, const std::string& slot,
                                      std::vector<std::string> extra = {}) {
  extra.insert(extra.end(), {"--exit-when-idle", "--mode", "wal", "--slot", slot});
  return eos_args(url, extra);
}

}  // namespace

TEST_CASE(
    "exactly-once poll: killed between the Kafka commit and the marking, the restart sends nothing twice") {
  const auto url = fresh_database("ite_poll_published");
  const auto topic = "ite.poll.published." + unique_suffix();
  const auto committed = write(url, topic, 600);
  const auto args = eos_args(url, {"--exit-when-idle"});
  run_until_killed(args, "published:3");
  // Two batches were marked; the third is in Kafka (committed) but its rows are still pending.
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 400);
  const auto out = run_until_idle(args);
  CHECK(out.find("exactly-once checkpoint applied: 100 of 100 rows") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 0);
  require_exactly_once(topic, committed);
  // Not even sent again: the third batch (ids 201-300) is in the topic once, aborted copies included.
  // (The fourth may have been sent in a transaction of its own, opened while the third committed, and
  // aborted by the restart: read_uncommitted consumers see those records twice.)
  CHECK(sent_once(consume_all(topic, "read_uncommitted"), 201, 300));
}

TEST_CASE(
    "exactly-once poll: killed with a transaction open, its records never reach read_committed consumers") {
  const auto url = fresh_database("ite_poll_sent");
  const auto topic = "ite.poll.sent." + unique_suffix();
  const auto committed = write(url, topic, 600);
  const auto args = eos_args(url, {"--exit-when-idle"});
  run_until_killed(args, "delivered:3");
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 400);
  run_until_idle(args);
  require_exactly_once(topic, committed);
  // The killed relay's third batch reached the broker and was aborted when the restart fenced it:
  // at-least-once consumers would have seen it twice.
  const auto raw = consume_all(topic, "read_uncommitted");
  CHECK(raw.size() > committed.size());
  CHECK(duplicates(raw) > 0);
}

TEST_CASE(
    "exactly-once poll: claims grow under a backlog; killed after a grown one's commit, the restart "
    "applies its checkpoint (one run of ids) and sends nothing twice") {
  const auto url = fresh_database("ite_poll_grown");
  const auto topic = "ite.poll.grown." + unique_suffix();
  const auto committed = write(url, topic, 3000);
  auto args = eos_args(url, {"--exit-when-idle"});
  const auto flag = std::find(args.begin(), args.end(), "--transaction-batches");
  REQUIRE(flag != args.end());
  *std::next(flag) = "4";  // the default: claims may grow to 4 batches
  run_until_killed(args, "published:3");
  // Claims of 100, 200 and 400 rows (each came back full); the first two were marked (deleted), the
  // third is committed in Kafka with its rows still pending.
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 2700);
  const auto out = run_until_idle(args);
  CHECK(out.find("exactly-once checkpoint applied: 400 of 400 rows") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox") == 0);
  require_exactly_once(topic, committed);
  CHECK(sent_once(consume_all(topic, "read_uncommitted"), 301, 700));  // the 400-row claim: not sent again
}

TEST_CASE("exactly-once poll: killed right after the marking, and again mid-stream: every event once") {
  const auto url = fresh_database("ite_poll_committed");
  const auto topic = "ite.poll.committed." + unique_suffix();
  const auto committed = write(url, topic, 600);
  const auto args = eos_args(url, {"--exit-when-idle"});
  run_until_killed(args, "committed:2");
  run_until_killed(args, "published:1");
  run_until_killed(args, "delivered:2");
  run_until_idle(args);
  require_exactly_once(topic, committed);
}

TEST_CASE(
    "exactly-once wal: killed between the Kafka commit and the slot confirmation, the restart skips it") {
  const auto url = fresh_database("ite_wal_published");
  const std::string slot = "ite_wal_published";
  const auto topic = "ite.wal.published." + unique_suffix();
  const auto args = wal_eos_args(url, slot);
  run_until_idle(args);  // creates slot and publication
  const auto committed = write(url, topic, 600, 6);
  run_until_killed(args, "published:3");
  // The third batch's transaction is in Kafka, its slot confirmation was never sent: the restart
  // confirms it from the checkpoint and is then killed with the fourth batch's transaction open.
  const auto second = run_until_killed(args, "delivered:1");
  CHECK(second.find("exactly-once checkpoint applied") != std::string::npos);
  run_until_idle(args);
  require_exactly_once(topic, committed);
  CHECK(consume_all(topic, "read_uncommitted").size() > committed.size());  // the aborted batch
}

TEST_CASE(
    "exactly-once wal: a malformed row in a batch committed to Kafka before the crash is parked by the "
    "restart, once") {
  const auto url = fresh_database("ite_wal_rejected");
  const std::string slot = "ite_wal_rejected";
  const auto topic = "ite.wal.rejected." + unique_suffix();
  const auto args = wal_eos_args(url, slot);
  run_until_idle(args);
  // Six transactions of 100 events (a batch each); the third also holds a row whose headers are not
  // a JSON object.
  for (int t = 0; t < 6; ++t) {
    std::string q =
        "BEGIN; INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) SELECT "
        "'order', 'k' || (i % 20), 'order-created', jsonb_build_object('seq', i), '" +
        topic + "' FROM generate_series(" + std::to_string(t * 100 + 1) + ", " +
        std::to_string(t * 100 + 100) + ") i;";
    if (t == 2)
      q += "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, headers, topic) VALUES "
           "('order', 'bad', 'e', '{}', '[1,2]', '" +
           topic + "');";
    sql(url, q + "COMMIT");
  }
  const auto bad = sql(url, "SELECT id::text FROM outbox WHERE aggregate_id = 'bad'")[0][0].as<std::string>();
  std::vector<std::pair<std::string, std::string>> committed;
  for (const auto& r :
       sql(url, "SELECT id::text, aggregate_id FROM outbox WHERE aggregate_id <> 'bad' ORDER BY outbox.id"))
    committed.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  // Killed after the third batch's Kafka commit: its records and checkpoint are in Kafka, its
  // malformed row not parked, the slot not confirmed past it.
  run_until_killed(args, "published:3");
  CHECK(sql_count(url, "SELECT count(*) FROM outbox_relay_parked") == 0);
  const auto out = run_until_idle(args);
  INFO(out);
  CHECK(out.find("exactly-once recovery: 1 malformed rows") != std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox_relay_parked WHERE id = '" + bad +
                           "' AND error LIKE 'headers must be a JSON object%'") == 1);
  require_exactly_once(topic, committed);
  // The slot moved past it once it was parked: the next start has nothing to park again.
  const auto third = run_until_idle(args);
  CHECK(third.find("exactly-once recovery") == std::string::npos);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox_relay_parked") == 1);
}

TEST_CASE(
    "exactly-once wal: a transaction larger than a batch goes out in chunks; killed after a chunk's "
    "commit, the restart skips the records sent and sends the rest once") {
  const auto url = fresh_database("ite_wal_chunks");
  const std::string slot = "ite_wal_chunks";
  const auto topic = "ite.wal.chunks." + unique_suffix();
  // Chunks of 256 KiB: about 100 of these 2 KB events each.
  const auto args = wal_eos_args(url, slot, {"--batch-bytes", "256KiB"});
  run_until_idle(args);
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) SELECT 'order', 'k' || "
      "(i % 20), 'order-created', jsonb_build_object('seq', i, 'pad', repeat('x', 2000)), '" +
          topic + "' FROM generate_series(1, 1000) i");  // one transaction
  std::vector<std::pair<std::string, std::string>> committed;
  for (const auto& r : sql(url, "SELECT id::text, aggregate_id FROM outbox ORDER BY outbox.id"))
    committed.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  run_until_killed(args, "published:3");
  const auto out = run_until_idle(args);
  INFO(out);
  const auto at = out.find("exactly-once checkpoint applied: the first ");
  REQUIRE(at != std::string::npos);
  const long sent =
      std::stol(out.substr(at + std::string("exactly-once checkpoint applied: the first ").size()));
  CHECK(sent >= 200);  // three chunks of about 100
  CHECK(sent < 1000);
  require_exactly_once(topic, committed);
  // The chunks committed before the kill were not sent again, aborted copies included.
  const long first = std::stol(committed.front().first);
  CHECK(sent_once(consume_all(topic, "read_uncommitted"), first, first + sent - 1));
}

TEST_CASE("exactly-once: a poison record aborts its transaction; it is parked and the rest sent once") {
  const auto url = fresh_database("ite_poison");
  const auto topic = "ite.poison." + unique_suffix();
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) SELECT 'order', 'k' || "
      "(i % 20), 'order-created', jsonb_build_object('seq', i), '" +
          topic + "' FROM generate_series(1, 50) i");
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) VALUES ('order', "
      "'big', 'e', jsonb_build_object('x', repeat('y', 1500000)), '" +
          topic + "')");
  sql(url,
      "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) SELECT 'order', 'k' || "
      "(i % 20), 'order-created', jsonb_build_object('seq', i), '" +
          topic + "' FROM generate_series(51, 100) i");
  std::vector<std::pair<std::string, std::string>> committed;
  for (const auto& r :
       sql(url, "SELECT id::text, aggregate_id FROM outbox WHERE aggregate_id <> 'big' ORDER BY outbox.id")) {
    committed.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  const auto out = run_until_idle(eos_args(url, {"--exit-when-idle"}));
  CHECK(sql_count(url, "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL AND aggregate_id = 'big'") ==
        1);
  CHECK(sql_count(url, "SELECT count(*) FROM outbox WHERE failed_at IS NULL") == 0);
  require_exactly_once(topic, committed);
}

TEST_CASE("exactly-once: a second relay with the same identity fences the first, which stops") {
  const auto url = fresh_database("ite_fence");
  const auto topic = "ite.fence." + unique_suffix();
  const auto checkpoints = "it.checkpoints." + unique_suffix();
  auto args = [&](const std::string& lock_table) {
    // Two relays on two different tables but one transactional id: both lead (different advisory locks),
    // so the second's init fences the first.
    return relay_args(url, {"--exactly-once", "--transactional-id", "ite-fence-" + topic,
                            "--checkpoint-topic", checkpoints, "--table", lock_table, "--http-addr", "off"});
  };
  sql(url, "CREATE TABLE outbox2 (LIKE outbox INCLUDING ALL)");
  Process first(args("outbox"));
  REQUIRE(wait_until(
      [&] { return first.output().find("kafka transactions initialized") != std::string::npos; }, 60s));
  Process second(args("outbox2"));
  REQUIRE(wait_until(
      [&] { return second.output().find("kafka transactions initialized") != std::string::npos; }, 60s));
  write(url, topic, 10);  // the first relay's next transaction is refused: fenced
  const auto rc = first.wait(60s);
  INFO(first.output());
  REQUIRE(rc.has_value());
  CHECK(*rc == 1);
  CHECK(first.output().find("fenced") != std::string::npos);
  stop_relay(second);
}

TEST_CASE("exactly-once: the checkpoint topic is created compacted, and one that is not is refused") {
  const auto url = fresh_database("ite_checkpoint_topic");
  // Created by the relay: one partition, compacted (a broker that auto-creates topics must not get to
  // create it first, with its defaults, from the producer's metadata request).
  const auto fresh = "it.cp.fresh." + unique_suffix();
  const auto r = run_to_exit(url, {"--exactly-once", "--checkpoint-topic", fresh, "--exit-when-idle"});
  INFO(r.output);
  REQUIRE(r.rc == std::optional<int>(0));
  CHECK(r.output.find("created checkpoint topic \"" + fresh + "\"") != std::string::npos);
  CHECK(topic_config(fresh, "cleanup.policy") == std::optional<std::string>("compact"));
  CHECK(topic_partitions(fresh) == 1);
  // An existing topic that deletes by age: its checkpoints would go after retention.ms. Refused.
  const auto plain = "it.cp.plain." + unique_suffix();
  create_topic(plain, 1, {{"cleanup.policy", "delete"}});
  require_config_exit(
      run_to_exit(url, {"--exactly-once", "--checkpoint-topic", plain, "--exit-when-idle"}),
      {"checkpoint topic \"" + plain + "\" has cleanup.policy=delete", "cleanup.policy=compact"});
}

TEST_CASE(
    "exactly-once: a checkpoint committed behind another relay's open transaction is read, not the one "
    "before it") {
  // Relays share the checkpoint topic (one partition). A read_committed reader reaches the end of the
  // partition at the start of a transaction still open there: what was committed behind it is not
  // readable until it ends, and stopping there would hand back an older checkpoint (events sent twice).
  const auto topic = "it.cp.shared." + unique_suffix();
  create_topic(topic, 1, {{"cleanup.policy", "compact"}});
  const auto props = outbox_relay::kafka::producer_properties(kafka_brokers(), {});
  auto producer = [&](const std::string& identity) {
    outbox_relay::kafka::TransactionConfig t;
    t.identity = identity;
    t.checkpoint_topic = topic;
    t.timeout = 30s;
    auto p = std::make_unique<outbox_relay::kafka::Producer>(props, t);
    p->fence();
    return p;
  };
  const auto ours = "it.cp.ours." + unique_suffix();
  auto mine = producer(ours);
  auto other = producer("it.cp.other." + unique_suffix());
  outbox_relay::core::Checkpoint first, second, theirs;
  first.ids = {"1"};
  second.ids = {"2"};
  theirs.ids = {"x"};
  mine->begin();
  mine->commit(first);
  other->begin();
  other->expect(theirs);  // the other relay's transaction, open on the partition ...
  REQUIRE(other->await_checkpoint(30s));
  mine->begin();
  mine->commit(second);  // ... with ours committed behind it

  // While it stays open, the end is not reached: no answer, rather than the older checkpoint.
  CHECK_THROWS_AS((void)outbox_relay::kafka::read_checkpoint(props, topic, ours, 3s),
                  outbox_relay::core::TransientError);
  // Once it ends (here: commits, whenever the reader has got to), the latest one is read.
  auto read = std::async(std::launch::async,
                         [&] { return outbox_relay::kafka::read_checkpoint(props, topic, ours, 60s); });
  other->commit(theirs);
  const auto got = read.get();
  REQUIRE(got.has_value());
  CHECK(got->ids == second.ids);
}
