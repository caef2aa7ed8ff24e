#include "kafka/unknown_topics.h"

namespace outbox_relay::kafka {

bool UnknownTopics::poison(const std::string& topic, Clock::time_point now) {
  auto it = first_.find(topic);
  if (it == first_.end()) {
    if (first_.size() >= kMaxTracked) first_.clear();
    it = first_.emplace(topic, now).first;
  }
  return now - it->second >= grace_;
}

}  // namespace outbox_relay::kafka
