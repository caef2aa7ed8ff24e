#include "core/settlement.h"

#include <stdexcept>

namespace outbox_relay::core {

bool is_final(DeliveryStatus status) {
  return status == DeliveryStatus::kAcked || status == DeliveryStatus::kPoison;
}

Settlement settle(const Batch& batch, std::span<const Delivery> deliveries, Ordering ordering,
                  Atomicity atomicity, std::span<const Delivery> rejected) {
  if (deliveries.size() != batch.messages.size()) {
    throw std::invalid_argument("settlement: " + std::to_string(deliveries.size()) + " deliveries for " +
                                std::to_string(batch.messages.size()) + " messages");
  }
  if (!rejected.empty() && rejected.size() != batch.rejected.size()) {
    throw std::invalid_argument("settlement: " + std::to_string(rejected.size()) + " dead letters for " +
                                std::to_string(batch.rejected.size()) + " malformed rows");
  }
  auto row = [&](std::size_t i) {
    return rejected.empty() ? Delivery{DeliveryStatus::kPoison, batch.rejected[i].error, -1, -1}
                            : rejected[i];
  };
  Settlement s;
  if (atomicity == Atomicity::kTransaction) {
    for (const auto& d : deliveries) s.abort = s.abort || d.status != DeliveryStatus::kAcked;
    for (std::size_t i = 0; i < batch.rejected.size(); ++i) s.abort = s.abort || !is_final(row(i).status);
  }
  // An acknowledgement of an aborted transaction never became visible: it is not final either.
  auto settled = [&s](const Delivery& d) {
    return is_final(d.status) && !(s.abort && d.status == DeliveryStatus::kAcked);
  };
  auto open_at = [&](uint64_t position) {
    if (ordering == Ordering::kPrefix && (!s.first_open || position < *s.first_open)) s.first_open = position;
  };
  auto failure = [&](const Delivery& d) {
    if (is_final(d.status) || d.status == DeliveryStatus::kDeferred) return;
    if (!s.failed) {
      s.failed = true;
      s.failure = d.error;
    }
    if (ordering == Ordering::kPrefix || d.status != DeliveryStatus::kUnparked) s.recall = true;
  };
  for (std::size_t i = 0; i < deliveries.size(); ++i) {
    if (settled(deliveries[i])) continue;
    open_at(batch.messages[i].position);
    failure(deliveries[i]);
  }
  for (std::size_t i = 0; i < batch.rejected.size(); ++i) {
    const auto d = row(i);
    if (is_final(d.status)) continue;
    open_at(batch.rejected[i].row.position);
    failure(d);
  }
  for (std::size_t i = 0; i < deliveries.size(); ++i) {
    const auto& d = deliveries[i];
    if (!settled(d) || !s.durable(batch.messages[i].position)) {
      s.retry.push_back(i);
      if (d.status == DeliveryStatus::kDeferred) s.deferred.push_back(i);
    } else if (d.status == DeliveryStatus::kAcked) {
      s.done.push_back(i);
    } else {
      s.park.push_back({i, false, d.error});
    }
  }
  for (std::size_t i = 0; i < batch.rejected.size(); ++i) {
    // A row held back goes out again with its transaction and is parked then (never twice).
    const auto d = row(i);
    if (is_final(d.status) && s.durable(batch.rejected[i].row.position)) s.park.push_back({i, true, d.error});
  }
  return s;
}

Delivery after_dead_letter(const Delivery& original, const Delivery& dlq, const std::string& dlq_topic) {
  Delivery d = original;
  if (dlq.status == DeliveryStatus::kAcked) {
    d.error = "dead-lettered to \"" + dlq_topic + "\": " + original.error;
  } else if (dlq.status == DeliveryStatus::kPoison) {
    d.error = "dead-letter topic \"" + dlq_topic + "\" refused it too (" + dlq.error + "): " + original.error;
  } else {
    d.status = DeliveryStatus::kUnparked;
    d.error = "dead-letter topic \"" + dlq_topic + "\" did not accept it: " + dlq.error;
  }
  return d;
}

}  // namespace outbox_relay::core
