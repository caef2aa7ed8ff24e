#include "core/settlement.h"

#include <stdexcept>

namespace outbox_relay::core {

bool is_final(DeliveryStatus status) {
  return status == DeliveryStatus::kAcked || status == DeliveryStatus::kPoison;
}

Settlement settle(const Batch& batch, std::span<const Delivery> deliveries, Ordering ordering,
                  Atomicity atomicity) {
  if (deliveries.size() != batch.messages.size()) {
    throw std::invalid_argument("settlement: " + std::to_string(deliveries.size()) + " deliveries for " +
                                std::to_string(batch.messages.size()) + " messages");
  }
  Settlement s;
  if (atomicity == Atomicity::kTransaction) {
    for (const auto& d : deliveries) s.abort = s.abort || d.status != DeliveryStatus::kAcked;
  }
  // An acknowledgement of an aborted transaction never became visible: it is not final either.
  auto settled = [&s](const Delivery& d) {
    return is_final(d.status) && !(s.abort && d.status == DeliveryStatus::kAcked);
  };
  for (std::size_t i = 0; i < deliveries.size(); ++i) {
    const auto& d = deliveries[i];
    if (settled(d)) continue;
    if (ordering == Ordering::kPrefix && !s.first_open) s.first_open = batch.messages[i].position;
    if (!is_final(d.status) && d.status != DeliveryStatus::kDeferred && !s.failed) {
      s.failed = true;
      s.failure = d.error;
    }
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
    if (s.durable(batch.rejected[i].row.position)) s.park.push_back({i, true, batch.rejected[i].error});
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
    d.status = DeliveryStatus::kRetriable;
    d.error = "dead-letter topic \"" + dlq_topic + "\" did not accept it: " + dlq.error;
  }
  return d;
}

}  // namespace outbox_relay::core
