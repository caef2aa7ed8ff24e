#include "core/backoff.h"

#include <algorithm>

namespace outbox_relay::core {

Millis Backoff::next(double random01) {
  const int shift = std::min(failures_, 20);
  ++failures_;
  const auto raw = initial_.count() * (int64_t{1} << shift);
  const auto capped = std::min<int64_t>(raw, max_.count());
  const double jitter = 0.5 + 0.5 * std::clamp(random01, 0.0, 1.0);
  return Millis(std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(capped) * jitter)));
}

}  // namespace outbox_relay::core
