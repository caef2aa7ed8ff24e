#include "core/duration.h"

#include <charconv>
#include <stdexcept>
#include <utility>

namespace outbox_relay::core {

namespace {

// "<digits><unit>" -> (number, unit); throws `not_a` when it does not start with a non-negative number.
std::pair<uint64_t, std::string> number_and_unit(const std::string& text, const std::string& not_a) {
  uint64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc() || p == begin) throw std::invalid_argument("\"" + text + "\" is not " + not_a);
  return {n, std::string(p, end)};
}

}  // namespace

std::chrono::milliseconds parse_duration(const std::string& text) {
  const auto [n, unit] = number_and_unit(text, "a duration (e.g. 250ms, 10s, 5m)");
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
  if (n > static_cast<uint64_t>(INT64_MAX / ms_per_unit)) {
    throw std::invalid_argument("\"" + text + "\" is too long");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(n) * ms_per_unit);
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::size_t parse_size(const std::string& text) {
  const auto [n, unit] = number_and_unit(text, "a size (e.g. 512KiB, 2MiB)");
  uint64_t per_unit = 0;
  if (unit == "B") {
    per_unit = 1;
  } else if (unit == "KiB") {
    per_unit = 1024;
  } else if (unit == "MiB") {
    per_unit = 1024 * 1024;
  } else if (unit == "GiB") {
    per_unit = 1024 * 1024 * 1024;
  } else if (unit == "kB" || unit == "KB") {
    per_unit = 1000;
  } else if (unit == "MB") {
    per_unit = 1000 * 1000;
  } else if (unit == "GB") {
    per_unit = 1000 * 1000 * 1000;
  } else if (unit.empty()) {
    throw std::invalid_argument("\"" + text + "\" needs a unit (B, KiB, MiB, GiB, kB, MB or GB)");
  } else {
    throw std::invalid_argument("\"" + text + "\" has an unknown unit \"" + unit +
                                "\" (B, KiB, MiB, GiB, kB, MB or GB)");
  }
  if (n > UINT64_MAX / per_unit) throw std::invalid_argument("\"" + text + "\" is too large");
  return static_cast<std::size_t>(n * per_unit);
}

}  // namespace outbox_relay::core
