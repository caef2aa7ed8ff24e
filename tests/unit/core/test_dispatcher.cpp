// The dispatcher's commit/abandon rules, driven through fakes: no servers, no sleeps.
#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>

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

Batch batch_of(const std::vector<std::string>& ids) {
  Batch b;
  for (const auto& id : ids) b.messages.push_back(msg(id));
  return b;
}

struct FakeSource : OutboxSource {
  std::deque<Batch> batches;
  std::deque<bool> fetch_throws;   // per fetch call: throw TransientError
  std::deque<bool> commit_throws;  // per commit call: throw TransientError (the marking failed)
  struct Commit {
    std::vector<std::string> acked, poison, retriable, deferred;
    std::vector<std::string> rejected;
  };
  std::vector<Commit> commits;
  int opens = 0, closes = 0, abandons = 0;
  bool is_caught_up = true;
  int depth = 1;                            // pipeline_depth()
  std::vector<std::size_t> maxes;           // `max` of every fetch
  std::vector<std::string>* log = nullptr;  // "fetch <ids> wait <ms>", "commit <acked ids>", "abandon"

  static std::string joined(const Batch& b) {
    std::string s;
    for (const auto& m : b.messages) s += (s.empty() ? "" : ",") + m.id;
    return s.empty() ? "-" : s;
  }
  void open() override { ++opens; }
  Batch fetch(std::size_t max, Millis wait) override {
    if (!fetch_throws.empty()) {
      const bool t = fetch_throws.front();
      fetch_throws.pop_front();
      if (t) throw TransientError("connection lost");
    }
    Batch b;
    if (!batches.empty()) {
      b = std::move(batches.front());
      batches.pop_front();
    }
    REQUIRE(b.messages.size() <= max);
    maxes.push_back(max);
    if (log != nullptr) log->push_back("fetch " + joined(b) + " wait " + std::to_string(wait.count()));
    return b;
  }
  Ordering order = Ordering::kPerMessage;  // ordering()
  [[nodiscard]] Checkpoint checkpoint(const Batch& b, const Settlement& st) const override {
    Checkpoint c;
    c.position = st.done.size();
    for (const auto i : st.done) c.ids.push_back(b.messages[i].id);
    return c;
  }
  bool expects = false;  // expected_checkpoint() names the batch's ids (as poll mode's does)
  [[nodiscard]] std::optional<Checkpoint> expected_checkpoint(const Batch& b) const override {
    if (!expects) return std::nullopt;
    Checkpoint c;
    c.position = b.messages.size();
    for (const auto& m : b.messages) c.ids.push_back(m.id);
    return c;
  }
  [[nodiscard]] Ordering ordering() const override { return order; }
  void commit(const Batch& b, const Settlement& st) override {
    if (!commit_throws.empty()) {
      const bool t = commit_throws.front();
      commit_throws.pop_front();
      if (t) throw TransientError("could not mark sent rows");
    }
    Commit c;
    for (const auto i : st.done) c.acked.push_back(b.messages[i].id);
    for (const auto& p : st.park) {
      if (p.rejected) {
        c.rejected.push_back(b.rejected[p.index].row.id);
      } else {
        c.poison.push_back(b.messages[p.index].id + ":" + p.reason);
      }
    }
    for (const auto i : st.retry) {
      const bool deferred = std::find(st.deferred.begin(), st.deferred.end(), i) != st.deferred.end();
      (deferred ? c.deferred : c.retriable).push_back(b.messages[i].id);
    }
    if (log != nullptr) {
      std::string s;
      for (const auto& id : c.acked) s += (s.empty() ? "" : ",") + id;
      log->push_back("commit " + (s.empty() ? "-" : s));
    }
    commits.push_back(std::move(c));
  }
  void abandon(const Batch&) noexcept override {
    ++abandons;
    if (log != nullptr) log->push_back("abandon");
  }
  [[nodiscard]] int pipeline_depth() const override { return depth; }
  [[nodiscard]] bool caught_up() const override { return is_caught_up; }
  bool more = false;  // more_ready()
  [[nodiscard]] bool more_ready() const override { return more; }
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

  std::vector<std::string>* log = nullptr;  // "send <ids>", "abort"

  void send(std::span<const OutboxMessage> messages, std::span<Delivery> o) override {
    sent.emplace_back(messages.begin(), messages.end());
    if (log != nullptr) {
      std::string s;
      for (const auto& m : messages) s += (s.empty() ? "" : ",") + m.id;
      log->push_back("send " + s);
    }
    out = o;
    if (never_completes) return;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      auto it = outcome.find(messages[i].topic + ":" + messages[i].id);
      out[i] = it != outcome.end() ? it->second : Delivery{DeliveryStatus::kAcked, "", 0, 1};
    }
  }
  bool is_transactional = false;
  std::vector<Checkpoint> checkpoints;  // commit() arguments
  int begins = 0;
  void begin() override {
    ++begins;
    if (log != nullptr && is_transactional) log->push_back("begin");
  }
  std::vector<Checkpoint> expected;               // expect() arguments
  std::vector<std::size_t> expected_after_sends;  // how many send() calls came before each expect()
  void expect(const Checkpoint& c) override {
    expected.push_back(c);
    expected_after_sends.push_back(sent.size());
  }
  void commit(const Checkpoint& c) override {
    checkpoints.push_back(c);
    if (log != nullptr && is_transactional) log->push_back("kafka-commit " + std::to_string(c.position));
  }
  [[nodiscard]] bool transactional() const override { return is_transactional; }
  bool is_overlapping = false;
  [[nodiscard]] bool overlapping() const override { return is_overlapping; }
  bool await(Millis) override { return !never_completes; }
  void abort() noexcept override {
    ++aborts;
    if (log != nullptr) log->push_back("abort");
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

// A source that allows two outstanding batches; source and publisher calls go into one log.
struct PipelinedRig : Rig {
  std::vector<std::string> log;
  PipelinedRig() {
    source.log = &log;
    publisher.log = &log;
    source.depth = 2;
  }
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

TEST_CASE("each settled batch's fetch, publish and settle times are observed once") {
  Rig rig;
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  CHECK(d.step() == StepResult::kPublished);
  for (const auto* h :
       {&rig.metrics.fetch_seconds, &rig.metrics.publish_seconds, &rig.metrics.settle_seconds}) {
    const auto s = h->snapshot();
    CHECK(s.count == 2);
    CHECK(s.sum > 0);  // the fake clock moves 100 ms per reading: every stage spans some of them
  }
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

TEST_CASE(
    "a malformed row the dead-letter topic does not accept stays unparked; the batch's events are done") {
  Rig rig;
  rig.config.on_poison = PoisonPolicy::kDlq;
  rig.config.dlq_topic = "relay.dlq";
  Batch b = batch_of({"1", "2"});
  b.rejected.push_back(
      {OutboxRow{"3", {{"headers", "[]"}}, 0}, "headers must be a JSON object", std::nullopt, 1});
  b.rejected.push_back({OutboxRow{"4", {{"topic", "a b"}}, 0}, "invalid topic name", std::nullopt, 2});
  rig.source.batches.push_back(b);
  rig.publisher.outcome["relay.dlq:3"] = {DeliveryStatus::kRetriable, "Local: Unknown topic", -1, -1};
  auto d = rig.make();
  CHECK(d.step() == StepResult::kRetrying);  // backs off: the dead-letter topic is in trouble
  REQUIRE(rig.source.commits.size() == 1);
  CHECK(rig.source.commits[0].acked == std::vector<std::string>{"1", "2"});  // not sent again
  CHECK(rig.source.commits[0].rejected == std::vector<std::string>{"4"});    // 3 stays to be fetched again
  CHECK(rig.metrics.dead_lettered.load() == 1);
}

TEST_CASE(
    "pipelined: a dead-letter copy that failed does not recall the batch behind (its event never reaches its "
    "topic)") {
  PipelinedRig rig;
  auto& log = rig.log;
  rig.config.on_poison = PoisonPolicy::kDlq;
  rig.config.dlq_topic = "relay.dlq";
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  rig.publisher.outcome["t:2"] = {DeliveryStatus::kPoison, "too large", -1, -1};
  rig.publisher.outcome["relay.dlq:2"] = {DeliveryStatus::kRetriable, "Local: Message timed out", -1, -1};
  auto d = rig.make();
  CHECK(d.step() == StepResult::kRetrying);
  CHECK(log == std::vector<std::string>{"fetch 1,2 wait 1000", "send 1,2", "fetch 3 wait 0", "send 3",
                                        "send 2", "commit 1"});
  CHECK(rig.source.abandons == 0);
  rig.publisher.outcome.clear();
  CHECK(d.step() == StepResult::kPublished);
  CHECK(rig.source.commits.back().acked == std::vector<std::string>{"3"});  // published once
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

TEST_CASE("pipelined: the next batch is fetched (without waiting) and sent before the previous commits") {
  PipelinedRig rig;
  auto& log = rig.log;
  rig.config.poll_interval = Millis(500);
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  rig.source.batches.push_back(batch_of({"4"}));
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  CHECK(log ==
        std::vector<std::string>{"fetch 1,2 wait 500", "send 1,2", "fetch 3 wait 0", "send 3", "commit 1,2"});
  log.clear();
  CHECK(d.step() == StepResult::kPublished);  // 3 is in flight already
  CHECK(log == std::vector<std::string>{"fetch 4 wait 0", "send 4", "commit 3"});
  log.clear();
  CHECK(d.step() == StepResult::kPublished);
  CHECK(log == std::vector<std::string>{"fetch - wait 0", "commit 4"});
  log.clear();
  CHECK(d.step() == StepResult::kIdle);
  CHECK(log == std::vector<std::string>{"fetch - wait 500"});

  // Not with the block policy (its waves need each batch's outcome first), nor with pipeline off.
  for (const bool block : {true, false}) {
    Rig r;
    std::vector<std::string> l;
    r.source.log = &l;
    r.source.depth = 2;
    if (block) {
      r.config.on_poison = PoisonPolicy::kBlock;
    } else {
      r.config.pipeline = false;
    }
    r.source.batches.push_back(batch_of({"1"}));
    r.source.batches.push_back(batch_of({"2"}));
    auto dd = r.make();
    CHECK(dd.step() == StepResult::kPublished);
    CHECK(l == std::vector<std::string>{"fetch 1 wait 1000", "commit 1"});
  }
}

TEST_CASE("pipelined: a retriable failure recalls the batch sent behind it; a lost source abandons both") {
  PipelinedRig rig;
  auto& log = rig.log;
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  rig.publisher.outcome["t:2"] = {DeliveryStatus::kRetriable, "Local: Message timed out", -1, -1};
  auto d = rig.make();
  CHECK(d.step() == StepResult::kRetrying);
  CHECK(log == std::vector<std::string>{"fetch 1,2 wait 1000", "send 1,2", "fetch 3 wait 0", "send 3",
                                        "commit 1", "abort", "abandon"});
  CHECK(rig.waiter.sleeps.size() == 1);
  log.clear();
  rig.publisher.outcome.clear();
  rig.source.batches.push_back(batch_of({"2", "3"}));  // what the source hands out again
  CHECK(d.step() == StepResult::kPublished);
  CHECK(log == std::vector<std::string>{"fetch 2,3 wait 1000", "send 2,3", "fetch - wait 0", "commit 2,3"});

  // The connection drops while the second batch is claimed: nothing is committed, both are abandoned.
  PipelinedRig r2;
  auto& l2 = r2.log;
  r2.source.batches.push_back(batch_of({"1"}));
  r2.source.fetch_throws = {false, true};
  auto d2 = r2.make();
  CHECK(d2.step() == StepResult::kRetrying);
  CHECK(l2 == std::vector<std::string>{"fetch 1 wait 1000", "send 1", "abort", "abandon"});
  CHECK(r2.source.commits.empty());
  CHECK(r2.source.closes == 1);
}

TEST_CASE("pipelined: a stop finishes the batch in flight and commits it before run() returns") {
  PipelinedRig rig;
  auto& log = rig.log;
  rig.publisher.log = nullptr;
  rig.source.batches.push_back(batch_of({"1"}));
  rig.source.batches.push_back(batch_of({"2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);  // 1 committed, 2 in flight
  rig.stop = true;
  CHECK(d.run() == Outcome::kStopped);
  CHECK(log == std::vector<std::string>{"fetch 1 wait 1000", "fetch 2 wait 0", "commit 1", "commit 2"});
  CHECK(rig.source.batches.size() == 1);  // 3 was never claimed
}

TEST_CASE("batch-bytes: the fetch size follows the record sizes seen, within batch-size") {
  Rig rig;
  rig.config.batch_size = 100;
  rig.config.batch_bytes = 10000;
  auto sized = [](std::size_t n, std::size_t bytes) {
    Batch b;
    for (std::size_t i = 0; i < n; ++i) {
      auto m = msg(std::to_string(i));
      m.topic = "";
      m.key.reset();
      m.value = std::string(bytes, 'x');
      b.messages.push_back(m);
    }
    return b;
  };
  rig.source.batches.push_back(sized(1, 1000));
  rig.source.batches.push_back(sized(5, 10));
  rig.source.batches.push_back(sized(5, 10));
  auto d = rig.make();
  for (int i = 0; i < 4; ++i) d.step();
  REQUIRE(rig.source.maxes.size() == 4);
  // Sizes are the records' memory: object, heap strings, headers.
  const double big = static_cast<double>(memory_bytes(sized(1, 1000).messages[0]));
  const double small = static_cast<double>(memory_bytes(sized(1, 10).messages[0]));
  CHECK(big > 1000);
  CHECK(small < big - 900);                                             // 10 bytes stay in the object
  CHECK(rig.source.maxes[0] == 1);                                      // nothing seen: 64 KiB per event
  CHECK(rig.source.maxes[1] == static_cast<std::size_t>(10000 / big));  // 8 of ~1.2 KB
  CHECK(rig.source.maxes[2] == static_cast<std::size_t>(10000 / ((big + small) / 2)));
  CHECK(rig.source.maxes[3] == static_cast<std::size_t>(10000 / (((big + small) / 2 + small) / 2)));
  CHECK(rig.source.maxes[3] > rig.source.maxes[2]);
  rig.config.batch_bytes = 0;  // no bound: batch-size alone
  auto d2 = rig.make();
  d2.step();
  CHECK(rig.source.maxes.back() == 100);
}

TEST_CASE(
    "transaction boundary: begin before sending, commit with the checkpoint before the source commits") {
  PipelinedRig rig;  // the source allows two batches in flight
  auto& log = rig.log;
  rig.publisher.is_transactional = true;
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  auto two_steps = [&] {
    auto d = rig.make();
    CHECK(d.step() == StepResult::kPublished);
    CHECK(d.step() == StepResult::kPublished);
  };
  SUBCASE("one transaction at a time") {
    two_steps();
    // The next batch is claimed while the first is published, sent in the next transaction once the
    // first committed, while the source marks the first.
    CHECK(log == std::vector<std::string>{"fetch 1,2 wait 1000", "begin", "send 1,2", "fetch 3 wait 0",
                                          "kafka-commit 2", "begin", "send 3", "commit 1,2", "fetch - wait 0",
                                          "kafka-commit 1", "commit 3"});
  }
  SUBCASE("overlapping publisher") {
    rig.publisher.is_overlapping = true;
    two_steps();
    // The next batch is sent once the first is acknowledged, before the first commits; commits in order.
    CHECK(log == std::vector<std::string>{"fetch 1,2 wait 1000", "begin", "send 1,2", "fetch 3 wait 0",
                                          "begin", "send 3", "kafka-commit 2", "commit 1,2", "fetch - wait 0",
                                          "kafka-commit 1", "commit 3"});
  }
  REQUIRE(rig.publisher.checkpoints.size() == 2);
  CHECK(rig.publisher.checkpoints[0].ids == std::vector<std::string>{"1", "2"});
  CHECK(rig.publisher.checkpoints[1].ids == std::vector<std::string>{"3"});
  CHECK(rig.publisher.aborts == 0);
}

TEST_CASE(
    "transaction boundary: poison aborts the transaction; the batch claimed behind it is claimed again") {
  PipelinedRig rig;
  auto& log = rig.log;
  rig.publisher.is_transactional = true;
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  rig.publisher.outcome["t:2"] = {DeliveryStatus::kPoison, "Broker: Message size too large", -1, -1};
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  // 1 was acknowledged inside the aborted transaction: it goes out again before 3, never after it.
  CHECK(log == std::vector<std::string>{"fetch 1,2 wait 1000", "begin", "send 1,2", "fetch 3 wait 0", "abort",
                                        "commit -", "abandon"});
  CHECK(rig.source.commits[0].retriable == std::vector<std::string>{"1"});
  CHECK(rig.publisher.sent.size() == 1);  // 3 never sent
}

TEST_CASE("exactly-once: every transaction begun and not committed is counted aborted") {
  PipelinedRig rig;
  rig.publisher.is_transactional = true;
  rig.publisher.is_overlapping = true;
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  auto d = rig.make();
  SUBCASE("the marking fails while the next transaction is open") {
    rig.source.commit_throws = {true};
    CHECK(d.step() == StepResult::kRetrying);
    // 1,2 committed in Kafka; 3's transaction, begun while 1,2 committed, was aborted with the failure.
    CHECK(rig.log == std::vector<std::string>{"fetch 1,2 wait 1000", "begin", "send 1,2", "fetch 3 wait 0",
                                              "begin", "send 3", "kafka-commit 2", "abort", "abandon",
                                              "abandon"});
    CHECK(rig.metrics.transactions_committed.load() == 1);
    CHECK(rig.metrics.transactions_aborted.load() == 1);
  }
  SUBCASE("poison aborts the transaction it is in, once") {
    rig.publisher.outcome["t:2"] = {DeliveryStatus::kPoison, "Broker: Message size too large", -1, -1};
    CHECK(d.step() == StepResult::kPublished);
    CHECK(rig.metrics.transactions_committed.load() == 0);
    CHECK(rig.metrics.transactions_aborted.load() == 1);
  }
}

TEST_CASE("transaction boundary: a record not acknowledged aborts the transaction and marks nothing") {
  PipelinedRig rig;
  auto& log = rig.log;
  rig.publisher.is_transactional = true;
  rig.source.batches.push_back(batch_of({"1", "2", "3"}));
  SUBCASE("retriable: aborted, nothing done, backed off") {
    rig.publisher.outcome["t:2"] = {DeliveryStatus::kRetriable, "Local: Message timed out", -1, -1};
    auto d = rig.make();
    CHECK(d.step() == StepResult::kRetrying);
    CHECK(log == std::vector<std::string>{"fetch 1,2,3 wait 1000", "begin", "send 1,2,3", "fetch - wait 0",
                                          "abort", "commit -"});
    REQUIRE(rig.source.commits.size() == 1);
    CHECK(rig.source.commits[0].retriable == std::vector<std::string>{"1", "2", "3"});
    CHECK(rig.waiter.sleeps.size() == 1);
    CHECK(rig.publisher.checkpoints.empty());
  }
  SUBCASE("poison: aborted, the poison parked, the rest fetched again at once") {
    rig.publisher.outcome["t:2"] = {DeliveryStatus::kPoison, "Broker: Message size too large", -1, -1};
    auto d = rig.make();
    CHECK(d.step() == StepResult::kPublished);
    CHECK(log == std::vector<std::string>{"fetch 1,2,3 wait 1000", "begin", "send 1,2,3", "fetch - wait 0",
                                          "abort", "commit -"});
    REQUIRE(rig.source.commits.size() == 1);
    CHECK(rig.source.commits[0].poison == std::vector<std::string>{"2:Broker: Message size too large"});
    CHECK(rig.source.commits[0].retriable == std::vector<std::string>{"1", "3"});
    CHECK(rig.waiter.sleeps.empty());
    CHECK(rig.metrics.published_by_topic()["t"] == 0);
  }
}

TEST_CASE("an at-least-once publisher sees an empty checkpoint and the batch pipelines as before") {
  PipelinedRig rig;
  rig.source.batches.push_back(batch_of({"1"}));
  rig.source.batches.push_back(batch_of({"2"}));
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  CHECK(rig.log ==
        std::vector<std::string>{"fetch 1 wait 1000", "send 1", "fetch 2 wait 0", "send 2", "commit 1"});
  CHECK(rig.publisher.begins == 2);
  REQUIRE(rig.publisher.checkpoints.size() == 1);
  CHECK(rig.publisher.checkpoints[0].empty());
}

TEST_CASE(
    "the first events all failing for one reason stop the relay as a misconfiguration, parking nothing") {
  auto rejected_batch = [](std::size_t n, bool same_reason) {
    Batch b;
    for (std::size_t i = 0; i < n; ++i) {
      const auto id = std::to_string(i);
      b.rejected.push_back({OutboxRow{id, {}, 0},
                            same_reason ? "invalid topic name \"outbox." + id + " x\""
                                        : (i % 2 == 0 ? "headers must be a JSON object" : "bad topic"),
                            std::nullopt, 0});
    }
    return b;
  };
  const auto n = Dispatcher::kMisconfigurationEvents;
  SUBCASE("first batch, one reason (its quoted values aside): fatal, nothing committed") {
    Rig rig;
    rig.source.batches.push_back(rejected_batch(n, true));
    auto d = rig.make();
    CHECK_THROWS_WITH_AS(
        d.step(), doctest::Contains("events all fail for the same reason, which points at the configuration"),
        FatalError);
    CHECK(rig.source.commits.empty());
    CHECK(rig.metrics.parked.load() == 0);
  }
  SUBCASE("after an event was published, the same batch is parked: the rows are at fault") {
    Rig rig;
    rig.source.batches.push_back(batch_of({"a"}));
    rig.source.batches.push_back(rejected_batch(n, true));
    auto d = rig.make();
    CHECK(d.step() == StepResult::kPublished);
    CHECK(d.step() == StepResult::kPublished);
    REQUIRE(rig.source.commits.size() == 2);
    CHECK(rig.source.commits[1].rejected.size() == n);
  }
  SUBCASE("different reasons, or fewer events: parked") {
    for (const auto& b : {rejected_batch(n, false), rejected_batch(n - 1, true)}) {
      Rig rig;
      rig.source.batches.push_back(b);
      auto d = rig.make();
      CHECK(d.step() == StepResult::kPublished);
      CHECK(rig.source.commits.size() == 1);
    }
  }
}

TEST_CASE("a commit that keeps failing backs off further; an idle round in between does not reset it") {
  Rig rig;
  struct FailingCommit : FakeSource {
    int fails = 2;
    void commit(const Batch& b, const Settlement& st) override {
      if (fails-- > 0) throw TransientError("permission denied for table outbox");
      FakeSource::commit(b, st);
    }
  };
  FailingCommit source;
  Dispatcher d(source, rig.publisher, rig.waiter, rig.metrics, rig.config, rig.stop);
  for (int i = 0; i < 3; ++i) {
    source.batches.push_back(batch_of({"1"}));
    source.batches.push_back(Batch{});  // the lead-taking (or idle) fetch after a reconnect
  }
  CHECK(d.step() == StepResult::kRetrying);  // 100 ms
  CHECK(d.step() == StepResult::kIdle);
  CHECK(d.step() == StepResult::kRetrying);  // 200 ms: not reset by the idle round
  CHECK(d.step() == StepResult::kIdle);
  CHECK(d.step() == StepResult::kPublished);
  REQUIRE(rig.waiter.sleeps.size() == 2);
  CHECK(rig.waiter.sleeps[1] > rig.waiter.sleeps[0]);
  CHECK(d.healthy());
}

TEST_CASE(
    "exactly-once: under a backlog a claim grows up to transaction_batches batches, and is one batch "
    "again once a claim comes back short") {
  Rig rig;  // one batch at a time, so every fetch's limit follows the one before
  rig.config.batch_bytes = 0;
  rig.config.transaction_batches = 4;
  auto full = [](std::size_t n, std::size_t first) {
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < n; ++i) ids.push_back(std::to_string(first + i));
    return batch_of(ids);
  };
  SUBCASE("transactional") {
    rig.publisher.is_transactional = true;
    rig.source.batches.push_back(full(10, 0));   // full at 10: next may hold 20
    rig.source.batches.push_back(full(20, 10));  // full at 20: next 40
    rig.source.batches.push_back(full(40, 30));  // full at 40: capped at 4 batches
    rig.source.batches.push_back(full(40, 70));  // full at 40: stays at 40
    rig.source.batches.push_back(full(5, 110));  // short: one batch again
    rig.source.batches.push_back(full(10, 115));
    auto d = rig.make();
    for (int i = 0; i < 6; ++i) CHECK(d.step() == StepResult::kPublished);
    CHECK(rig.source.maxes == std::vector<std::size_t>{10, 20, 40, 40, 40, 10});
    CHECK(rig.publisher.checkpoints.size() == 6);  // one transaction per claim
    CHECK(rig.publisher.checkpoints[2].ids.size() == 40);
  }
  SUBCASE("at-least-once keeps the batch size") {
    for (int i = 0; i < 3; ++i) rig.source.batches.push_back(full(10, static_cast<std::size_t>(i) * 10));
    auto d = rig.make();
    for (int i = 0; i < 3; ++i) CHECK(d.step() == StepResult::kPublished);
    CHECK(rig.source.maxes == std::vector<std::size_t>{10, 10, 10});
  }
}

TEST_CASE("exactly-once: a grown claim is bounded by transaction_batches times batch_bytes as well") {
  Rig rig;
  const auto record = memory_bytes(batch_of({"x"}).messages[0]);
  rig.config.batch_size = 1000;
  rig.config.batch_bytes = 10 * record;  // 10 records a batch
  rig.config.transaction_batches = 8;
  rig.publisher.is_transactional = true;
  auto of = [](std::size_t n) { return batch_of(std::vector<std::string>(n, "x")); };
  rig.source.batches.push_back(of(1));   // no size known yet (64 KiB assumed): 1 event; full
  rig.source.batches.push_back(of(20));  // 4 bytes each, twice the bytes: 20; full
  rig.source.batches.push_back(of(40));  // four times: 40
  auto d = rig.make();
  for (int i = 0; i < 3; ++i) CHECK(d.step() == StepResult::kPublished);
  CHECK(rig.source.maxes == std::vector<std::size_t>{1, 20, 40});
}

TEST_CASE("exactly-once: a grown claim stays within its share of the memory budget") {
  Rig rig;
  const auto record = memory_bytes(batch_of({"x"}).messages[0]);
  rig.config.batch_size = 1000;
  rig.config.batch_bytes = 10 * record;  // 10 records
  rig.config.claim_bytes = 20 * record;  // two batches' worth at most
  rig.config.transaction_batches = 8;
  rig.publisher.is_transactional = true;
  auto of = [](std::size_t n) { return batch_of(std::vector<std::string>(n, "x")); };
  rig.source.batches.push_back(of(1));
  rig.source.batches.push_back(of(20));
  rig.source.batches.push_back(of(20));
  rig.source.batches.push_back(of(20));
  auto d = rig.make();
  for (int i = 0; i < 4; ++i) CHECK(d.step() == StepResult::kPublished);
  CHECK(rig.source.maxes == std::vector<std::size_t>{1, 20, 20, 20});  // not 40, 80
}

TEST_CASE("exactly-once: the checkpoint is refreshed once nothing arrived for a while, not in every lull") {
  PipelinedRig rig;
  rig.publisher.is_transactional = true;
  rig.waiter.tick = Millis(100);  // every clock read is 100 ms later
  rig.source.batches.push_back(batch_of({"1", "2"}));
  auto d = rig.make();
  CHECK(d.step() == StepResult::kPublished);
  REQUIRE(rig.publisher.checkpoints.size() == 1);
  CHECK(rig.publisher.checkpoints[0].ids == std::vector<std::string>{"1", "2"});
  // A short lull, then the next event: no transaction of its own for the checkpoint.
  CHECK(d.step() == StepResult::kIdle);
  CHECK(rig.publisher.checkpoints.size() == 1);
  rig.source.batches.push_back(batch_of({"3"}));
  CHECK(d.step() == StepResult::kPublished);
  CHECK(rig.publisher.checkpoints.size() == 2);
  // Idle for longer: one refresh naming nothing (the rows are marked), and no more after it.
  for (int i = 0; i < 8; ++i) CHECK(d.step() == StepResult::kIdle);
  REQUIRE(rig.publisher.checkpoints.size() == 3);
  CHECK(rig.publisher.checkpoints[2].empty());
}

TEST_CASE("exactly-once: --exit-when-idle brings the checkpoint up to date before it returns") {
  Rig rig;
  rig.config.exit_when_idle = true;
  rig.publisher.is_transactional = true;
  rig.waiter.tick = Millis(0);
  rig.source.batches.push_back(batch_of({"1"}));
  auto d = rig.make();
  CHECK(d.run() == Outcome::kIdle);
  REQUIRE(rig.publisher.checkpoints.size() == 2);
  CHECK(rig.publisher.checkpoints[0].ids == std::vector<std::string>{"1"});
  CHECK(rig.publisher.checkpoints[1].empty());
}

TEST_CASE(
    "exactly-once: a claim short of the limit grows the next one when the source has more ready "
    "(whole WAL transactions)") {
  Rig rig;
  rig.config.batch_bytes = 0;
  rig.config.transaction_batches = 4;
  rig.publisher.is_transactional = true;
  rig.source.more = true;
  auto of = [](std::size_t n) { return batch_of(std::vector<std::string>(n, "x")); };
  rig.source.batches.push_back(of(6));   // limit 10; two transactions of 3 fit, a third waits
  rig.source.batches.push_back(of(18));  // limit 20
  rig.source.batches.push_back(of(39));  // limit 40 (capped)
  auto d = rig.make();
  for (int i = 0; i < 3; ++i) CHECK(d.step() == StepResult::kPublished);
  rig.source.more = false;
  rig.source.batches.push_back(of(7));  // caught up: short and nothing more ready
  rig.source.batches.push_back(of(7));
  for (int i = 0; i < 2; ++i) CHECK(d.step() == StepResult::kPublished);
  CHECK(rig.source.maxes == std::vector<std::size_t>{10, 20, 40, 40, 10});
}

TEST_CASE("transaction boundary, overlapping publisher: a batch not acknowledged sends nothing behind it") {
  PipelinedRig rig;
  auto& log = rig.log;
  rig.publisher.is_transactional = true;
  rig.publisher.is_overlapping = true;
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  rig.publisher.outcome["t:2"] = {DeliveryStatus::kRetriable, "Local: Message timed out", -1, -1};
  auto d = rig.make();
  CHECK(d.step() == StepResult::kRetrying);
  CHECK(log == std::vector<std::string>{"fetch 1,2 wait 1000", "begin", "send 1,2", "fetch 3 wait 0", "abort",
                                        "commit -", "abort", "abandon"});
  CHECK(rig.publisher.sent.size() == 1);  // 3 never sent
}

TEST_CASE(
    "exactly-once: the expected checkpoint goes out when the transaction begins, before its records, "
    "and the settled one before the next transaction begins; they are equal when every record was "
    "acknowledged") {
  PipelinedRig rig;
  rig.publisher.is_transactional = true;
  rig.publisher.is_overlapping = true;
  rig.source.expects = true;
  rig.source.batches.push_back(batch_of({"1", "2"}));
  rig.source.batches.push_back(batch_of({"3"}));
  rig.source.batches.push_back(batch_of({"4", "5"}));
  SUBCASE("all acknowledged") {
    auto d = rig.make();
    CHECK(d.step() == StepResult::kPublished);
    CHECK(d.step() == StepResult::kPublished);
    CHECK(d.step() == StepResult::kPublished);
    // Each transaction: the expected checkpoint before its records are sent, then the settled one
    // before the next transaction begins (the publisher writes it only if it differs).
    REQUIRE(rig.publisher.expected.size() == 6);
    CHECK(rig.publisher.expected_after_sends == std::vector<std::size_t>{0, 1, 1, 2, 2, 3});
    REQUIRE(rig.publisher.checkpoints.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(rig.publisher.expected[2 * i] == rig.publisher.checkpoints[i]);
      CHECK(rig.publisher.expected[2 * i + 1] == rig.publisher.checkpoints[i]);
    }
  }
  SUBCASE("a poison event: its transaction, expected checkpoint included, is aborted") {
    rig.publisher.outcome["t:4"] = {DeliveryStatus::kPoison, "Broker: Message size too large", -1, -1};
    auto d = rig.make();
    for (int i = 0; i < 3; ++i) (void)d.step();
    REQUIRE(rig.publisher.expected.size() == 5);  // 1,2 and 3 twice each, 4,5 ahead only
    CHECK(rig.publisher.expected[4].ids == std::vector<std::string>{"4", "5"});
    CHECK(rig.publisher.aborts == 1);
    REQUIRE(rig.publisher.checkpoints.size() == 2);  // 1,2 and 3: nothing committed for 4,5
    CHECK(rig.publisher.checkpoints[1].ids == std::vector<std::string>{"3"});
    REQUIRE(rig.source.commits.size() == 3);
    CHECK(rig.source.commits[2].poison == std::vector<std::string>{"4:Broker: Message size too large"});
    CHECK(rig.source.commits[2].retriable == std::vector<std::string>{"5"});
  }
  SUBCASE("not transactional: nothing is expected") {
    rig.publisher.is_transactional = false;
    auto d = rig.make();
    CHECK(d.step() == StepResult::kPublished);
    CHECK(rig.publisher.expected.empty());
  }
}
