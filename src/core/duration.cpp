#include "core/duration.h"

#include <charconv>
#include <stdexcept>

namespace outbox_relay::core {

std::chrono::milliseconds parse_duration(const std::string& text) {
  int64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc() || p == begin || n < 0) {
    throw std::invalid_argument("\"" + text + "\" is not a duration (e.g. 250ms, 10s, 5m)");
  }
  const std::string unit(p, end);
  int64_t ms_per_unit = 0;
  if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "m" || unit == "min") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  } else if (unit == "d") {
    ms_per_unit = 86'400'000;
  } else if (unit.empty()) {
    throw std::invalid_argument("\"" + text + "\" needs a unit (ms, s, m, h or d)");
  } else {
    throw std::invalid_argument("\"" + text + "\" has an unknown unit \"" + unit + "\" (ms, s, m, h or d)");
  }
  if (n > INT64_MAX / ms_per_unit) throw std::invalid_argument("\"" + text + "\" is too long");
  return std::chrono::milliseconds(n * ms_per_unit);
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace outbox_relay::core
