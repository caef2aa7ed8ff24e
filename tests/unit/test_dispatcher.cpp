// The dispatcher's commit/abandon rules, driven through fakes: no servers, no sleeps.
#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <map>

#include "core/dispatcher.h"
#include "core/errors.h"

using namespace outbox_relay::core;

namespace {

OutboxMessage msg(const std::string& id, const std::string& key = "k", const std::string& topic = "t") {
  OutboxMessage m;
  m.id = id;
  m.key = key;
  m.topic = topic;
  m.value = "v" + id;
  return m;
}

Batch batch_of(std::initializer_list<std::string> ids) {
  Batch b;
  for (const auto& id : ids) b.messages.push_back(msg(id));
  return b;
}

struct FakeSource : OutboxSource {
  std::deque<Batch> batches;
  std::deque<bool> fetch_throws;  // per fetch call: throw TransientError
  struct Commit {
    std::vector<std::string> acked, poison, retriable, deferred;
    std::vector<std::string> rejected;
  };
  std::vector<Commit> commits;
  int opens = 0, closes = 0, abandons = 0;
  bool is_caught_up = true;

  void open() override { ++opens; }
  Batch fetch(std::size_t max, Millis /*wait*/) override {
    if (!fetch_throws.empty()) {
      const bool t = fetch_throws.front();
      fetch_throws.pop_front();
      if (t) throw TransientError("connection lost");
    }
    if (batches.empty()) return {};
    Batch b = std::move(batches.front());
    batches.pop_front();
    REQUIRE(b.messages.size() <= max);
    return b;
  }
  void commit(const Batch& b, std::span<const Delivery> d) override {
    REQUIRE(d.size() == b.messages.size());
    Commit c;
    for (std::size_t i = 0; i < d.size(); ++i) {
      if (d[i].status == DeliveryStatus::kAcked) c.acked.push_back(b.messages[i].id);
      if (d[i].status == DeliveryStatus::kPoison) c.poison.push_back(b.messages[i].id + ":" + d[i].error);
      if (d[i].status == DeliveryStatus::kRetriable || d[i].status == DeliveryStatus::kPending) {
        c.retriable.push_back(b.messages[i].id);
      }
      if (d[i].status == DeliveryStatus::kDeferred) c.deferred.push_back(b.messages[i].id);
    }
    for (const auto& r : b.rejected) c.rejected.push_back(r.row.id);
    commits.push_back(std::move(c));
  }
  void abandon(const Batch&) noexcept override { ++abandons; }
  [[nodiscard]] bool caught_up() const override { return is_caught_up; }
  void close() noexcept override { ++closes; }
  [[nodiscard]] std::string describe() const override { return "fake"; }
};

struct FakePublisher : Publisher {
  // outcome per "topic:id"; missing = acked
  std::map<std::string, Delivery> outcome;
  bool never_completes = false;  // deliveries stay pending until abort()
  std::vector<std::vector<OutboxMessage>> sent;
  std::span<Delivery> out;
  int aborts = 0;

  void send(std::span<const OutboxMessage> messages, std::span<Delivery> o) override {
    sent.emplace_back(messages.begin(), messages.end());
    out = o;
    if (never_completes) return;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      auto it = outcome.find(messages[i].topic + ":" + messages[i].id);
      out[i] = it != outcome.end() ? it->second : Delivery{DeliveryStatus::kAcked, "", 0, 1};
    }
  }
  bool await(Millis) override { return !never_completes; }
  void abort() noexcept override {
    ++aborts;
    for (auto& d : out) {
      if (d.status == DeliveryStatus::kPending) d = {DeliveryStatus::kRetriable, "purged", -1, -1};
    }
  }
  [[nodiscard]] bool connected() const override { return true; }
};

struct FakeWaiter : Waiter {
  Clock::time_point t{};
  std::vector<Millis> sleeps;
  std::atomic<bool>* stop_after_sleep = nullptr;
  Millis tick{100};  // each now() call advances this much: simulates await slices
  [[nodiscard]] Clock::time_point now() const override {
    auto* self = const_cast<FakeWaiter*>(this);
    self->t += tick;
    return t;
  }
  bool sleep_for(Millis d) override {
    sleeps.push_back(d);
    t += d;
    if (stop_after_sleep != nullptr) stop_after_sleep->store(true);
    return true;
  }
  double random() override { return 0.999; }
};

struct Rig {
  FakeSource source;
  FakePublisher publisher;
  FakeWaiter waiter;
  Metrics metrics;
  std::atomic<bool> stop{false};
  DispatcherConfig config;
  Rig() {
    config.batch_size = 10;
    config.backoff_initial = Millis(100);
    config.backoff_max = Millis(1000);
  }
  Dispatcher make() { return Dispatcher(source, publisher, waiter, metrics, config, stop); }
};

}  // namespace

TEST_CASE("an acknowledged batch is committed whole, in order") {
  Rig rig;
  rig.source.batches.push_back(batch_of({"1", "2", "3"}));
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  REQUIRE(rig.source.commits.size() == 1);
  CHECK(rig.source.commits[0].acked == std::vector<std::string>{"1", "2", "3"});
  CHECK(rig.publisher.sent[0].size() == 3);
  CHECK(rig.metrics.published_by_topic()["t"] == 3);
  CHECK(rig.waiter.sleeps.empty());
}

TEST_CASE("a poison event is parked with its reason and does not hold back the rest") {
  Rig rig;
  rig.source.batches.push_back(batch_of({"1", "2", "3"}));
  rig.publisher.outcome["t:2"] = {DeliveryStatus::kPoison, "Broker: Message size too large", -1, -1};
  Batch with_rejected = batch_of({"4"});
  with_rejected.rejected.push_back({OutboxRow{"5", {}, 0}, "headers must be a JSON object", std::nullopt, 0});
  rig.source.batches.push_back(with_rejected);
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  CHECK(d.step() == StepResult::kPublished);
  CHECK(rig.source.commits[0].acked == std::vector<std::string>{"1", "3"});
  CHECK(rig.source.commits[0].poison == std::vector<std::string>{"2:Broker: Message size too large"});
  CHECK(rig.source.commits[1].acked == std::vector<std::string>{"4"});
  CHECK(rig.source.commits[1].rejected == std::vector<std::string>{"5"});
  CHECK(rig.metrics.parked.load() == 2);
  CHECK(rig.waiter.sleeps.empty());
}

TEST_CASE("retriable failures are never committed as sent, and back off exponentially up to the cap") {
  Rig rig;
  for (int i = 0; i < 6; ++i) rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.publisher.outcome["t:2"] = {DeliveryStatus::kRetriable, "Local: Message timed out", -1, -1};
  auto d = rig.make();
  for (int i = 0; i < 6; ++i) CHECK(d.step() == StepResult::kRetrying);
  for (const auto& c : rig.source.commits) {
    CHECK(c.acked == std::vector<std::string>{"1"});
    CHECK(c.retriable == std::vector<std::string>{"2"});
  }
  REQUIRE(rig.waiter.sleeps.size() == 6);
  // random() = 0.999: jitter factor just under 1
  CHECK(rig.waiter.sleeps[0].count() == 99);
  CHECK(rig.waiter.sleeps[1].count() == 199);
  CHECK(rig.waiter.sleeps[2].count() == 399);
  CHECK(rig.waiter.sleeps[3].count() == 799);
  CHECK(rig.waiter.sleeps[4].count() == 999);  // capped
  CHECK(rig.waiter.sleeps[5].count() == 999);
  CHECK_FALSE(d.healthy());
  rig.publisher.outcome.clear();
  rig.source.batches.push_back(batch_of({"1", "2"}));
  CHECK(d.step() == StepResult::kPublished);
  CHECK(d.healthy());
}

TEST_CASE("a lost source connection abandons, closes, backs off and reopens") {
  Rig rig;
  rig.source.fetch_throws = {true, false};
  rig.source.batches.push_back(batch_of({"1"}));
  auto d = rig.make();
  CHECK(d.step() == StepResult::kRetrying);
  CHECK(rig.source.closes == 1);
  CHECK(rig.source.opens == 1);
  CHECK(rig.waiter.sleeps.size() == 1);
  CHECK(rig.source.commits.empty());
  CHECK(d.step() == StepResult::kPublished);
  CHECK(rig.source.opens == 2);
  CHECK(rig.metrics.reconnects.load() == 1);
}

TEST_CASE("stop during delivery drains up to the drain timeout, then commits nothing unacknowledged") {
  Rig rig;
  rig.config.drain_timeout = Millis(1000);
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.publisher.never_completes = true;
  rig.stop = true;
  auto d = rig.make();
  d.step();
  CHECK(rig.publisher.aborts == 1);
  REQUIRE(rig.source.commits.size() == 1);
  CHECK(rig.source.commits[0].acked.empty());
  CHECK(rig.source.commits[0].retriable == std::vector<std::string>{"1", "2"});
}

TEST_CASE("exit-when-idle returns once the source is caught up; a stop returns kStopped") {
  Rig rig;
  rig.config.exit_when_idle = true;
  rig.source.batches.push_back(batch_of({"1"}));
  rig.source.batches.push_back(batch_of({"2"}));
  auto d = rig.make();
  CHECK(d.run() == Outcome::kIdle);
  CHECK(rig.source.commits.size() == 2);

  Rig rig2;
  rig2.source.fetch_throws = {true};
  rig2.waiter.stop_after_sleep = &rig2.stop;
  auto d2 = rig2.make();
  CHECK(d2.run() == Outcome::kStopped);
}

TEST_CASE("dlq policy sends poison and malformed rows to the dead-letter topic with the error") {
  Rig rig;
  rig.config.on_poison = PoisonPolicy::kDlq;
  rig.config.dlq_topic = "relay.dlq";
  Batch b = batch_of({"1", "2"});
  b.rejected.push_back(
      {OutboxRow{"3", {{"headers", "[]"}}, 0}, "headers must be a JSON object", std::nullopt, 0});
  rig.source.batches.push_back(b);
  rig.publisher.outcome["t:2"] = {DeliveryStatus::kPoison, "Broker: Message size too large", -1, -1};
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  REQUIRE(rig.publisher.sent.size() == 2);
  const auto& dlq = rig.publisher.sent[1];
  REQUIRE(dlq.size() == 2);
  CHECK(dlq[0].topic == "relay.dlq");
  CHECK(dlq[0].id == "2");
  auto has = [](const OutboxMessage& m, const std::string& k, const std::string& v) {
    return std::find(m.headers.begin(), m.headers.end(), Header{k, v}) != m.headers.end();
  };
  CHECK(has(dlq[0], "dlq.error", "Broker: Message size too large"));
  CHECK(has(dlq[0], "dlq.original.topic", "t"));
  CHECK(has(dlq[1], "dlq.error", "headers must be a JSON object"));
  CHECK(has(dlq[1], "dlq.column.headers", "[]"));
  CHECK(rig.source.commits[0].acked == std::vector<std::string>{"1"});
  REQUIRE(rig.source.commits[0].poison.size() == 1);
  CHECK(rig.source.commits[0].poison[0].find("dead-lettered to \"relay.dlq\"") != std::string::npos);
  CHECK(rig.metrics.dead_lettered.load() == 2);
}

TEST_CASE("a poison event the dead-letter topic refuses stays unsent") {
  Rig rig;
  rig.config.on_poison = PoisonPolicy::kDlq;
  rig.config.dlq_topic = "relay.dlq";
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.publisher.outcome["t:2"] = {DeliveryStatus::kPoison, "too large", -1, -1};
  rig.publisher.outcome["relay.dlq:2"] = {DeliveryStatus::kRetriable, "Local: Message timed out", -1, -1};
  auto d = rig.make();
  CHECK(d.step() == StepResult::kRetrying);
  CHECK(rig.source.commits[0].acked == std::vector<std::string>{"1"});
  CHECK(rig.source.commits[0].retriable == std::vector<std::string>{"2"});
  CHECK(rig.source.commits[0].poison.empty());
}

TEST_CASE("a fatal publisher error propagates") {
  struct FatalPublisher : FakePublisher {
    void send(std::span<const OutboxMessage>, std::span<Delivery>) override { throw FatalError("fenced"); }
  };
  Rig rig;
  FatalPublisher pub;
  rig.source.batches.push_back(batch_of({"1"}));
  Dispatcher d(rig.source, pub, rig.waiter, rig.metrics, rig.config, rig.stop);
  CHECK_THROWS_AS(d.step(), FatalError);
  CHECK(rig.source.commits.empty());
}

TEST_CASE("block policy holds back the later events of a malformed row's key, others flow, no backoff") {
  Rig rig;
  rig.config.on_poison = PoisonPolicy::kBlock;
  Batch b;
  b.messages = {msg("1", "a"), msg("3", "a"), msg("4", "b"), msg("5", "a")};
  b.rejected.push_back({OutboxRow{"2", {}, 0}, "headers must be a JSON object", std::string("a"), 1});
  rig.source.batches.push_back(b);
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  REQUIRE(rig.publisher.sent.size() == 1);
  REQUIRE(rig.publisher.sent[0].size() == 2);
  CHECK(rig.publisher.sent[0][0].id == "1");  // before the poison event: flows
  CHECK(rig.publisher.sent[0][1].id == "4");  // other key: flows; "3" and "5" (key a) held back
  CHECK(rig.source.commits[0].acked == std::vector<std::string>{"1", "4"});
  CHECK(rig.source.commits[0].deferred == std::vector<std::string>{"3", "5"});
  CHECK(rig.source.commits[0].rejected == std::vector<std::string>{"2"});
  CHECK(rig.waiter.sleeps.empty());
}

TEST_CASE("block policy: a broker-side rejection holds back that key's later events of the same batch") {
  Rig rig;
  rig.config.on_poison = PoisonPolicy::kBlock;
  Batch b;
  b.messages = {msg("1", "a"), msg("2", "b"), msg("3", "a"), msg("4", "b"), msg("5", "a"), msg("6", "c")};
  rig.source.batches.push_back(b);
  rig.publisher.outcome["t:1"] = {DeliveryStatus::kPoison, "Broker: Topic authorization failed", -1, -1};
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  // wave 1: the first event of each key; wave 2: b's second; a's later events never leave
  REQUIRE(rig.publisher.sent.size() == 2);
  std::vector<std::string> wave1, wave2;
  for (const auto& m : rig.publisher.sent[0]) wave1.push_back(m.id);
  for (const auto& m : rig.publisher.sent[1]) wave2.push_back(m.id);
  CHECK(wave1 == std::vector<std::string>{"1", "2", "6"});
  CHECK(wave2 == std::vector<std::string>{"4"});
  CHECK(rig.source.commits[0].acked == std::vector<std::string>{"2", "4", "6"});
  CHECK(rig.source.commits[0].poison.size() == 1);
  CHECK(rig.source.commits[0].deferred == std::vector<std::string>{"3", "5"});
  CHECK(rig.waiter.sleeps.empty());
}
