#pragma once
// Whether "unknown topic" is poison yet. A topic that was just deleted and is being re-created by the
// broker (auto.create.topics.enable), or that an operator is creating right now, answers "unknown"
// for a moment: parking every event sent to it then would park events that a retry a second later
// delivers, and let a key's later events pass them. So a topic's unknown-topic failures are retriable
// for a grace period from the first one, poison after it (auto-creation off and no one creating it).
// A delivery to the topic that succeeds forgets it. Dispatcher thread only; time is passed in.

#include <chrono>
#include <string>
#include <unordered_map>

namespace outbox_relay::kafka {

class UnknownTopics {
 public:
  using Clock = std::chrono::steady_clock;
  explicit UnknownTopics(std::chrono::milliseconds grace) : grace_(grace) {}

  // A delivery to `topic` failed with unknown topic at `now`: true once that has lasted `grace`.
  bool poison(const std::string& topic, Clock::time_point now);
  // A delivery to `topic` succeeded.
  void delivered(const std::string& topic) { first_.erase(topic); }

  [[nodiscard]] std::chrono::milliseconds grace() const { return grace_; }
  [[nodiscard]] std::size_t tracked() const { return first_.size(); }
  static constexpr std::size_t kMaxTracked = 1024;  // names come from rows: bounded like topic handles

 private:
  std::chrono::milliseconds grace_;
  std::unordered_map<std::string, Clock::time_point> first_;
};

}  // namespace outbox_relay::kafka
