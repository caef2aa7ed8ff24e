#include "core/duration.h"

#include <charconv>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string_view>

namespace outbox_relay::core {

namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr Unit kDurationUnits[] = {{"ms", 1},       {"s", 1000},      {"m", 60'000},
                                   {"min", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
constexpr Unit kSizeUnits[] = {
    {"B", 1},     {"KiB", 1u << 10}, {"MiB", 1u << 20},   {"GiB", 1u << 30},
    {"kB", 1000}, {"KB", 1000},      {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}};

// "<digits><unit>" as the number times the unit's factor, at most `max`. Throws std::invalid_argument
// naming the problem: not a number (`not_a`), no unit or an unknown one (listing `names`), over `max`.
uint64_t scaled(const std::string& text, std::span<const Unit> units, const std::string& names,
                const std::string& not_a, const std::string& too_much, uint64_t max) {
  uint64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc() || p == begin) throw std::invalid_argument("\"" + text + "\" is not " + not_a);
  const std::string_view unit(p, static_cast<std::size_t>(end - p));
  if (unit.empty()) throw std::invalid_argument("\"" + text + "\" needs a unit (" + names + ")");
  for (const auto& u : units) {
    if (u.name != unit) continue;
    if (n > max / u.factor) throw std::invalid_argument("\"" + text + "\" is " + too_much);
    return n * u.factor;
  }
  throw std::invalid_argument("\"" + text + "\" has an unknown unit \"" + std::string(unit) + "\" (" + names +
                              ")");
}

}  // namespace

std::chrono::milliseconds parse_duration(const std::string& text) {
  return std::chrono::milliseconds(static_cast<int64_t>(scaled(text, kDurationUnits, "ms, s, m, h or d",
                                                               "a duration (e.g. 250ms, 10s, 5m)", "too long",
                                                               static_cast<uint64_t>(INT64_MAX))));
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
  return static_cast<std::size_t>(scaled(text, kSizeUnits, "B, KiB, MiB, GiB, kB, MB or GB",
                                         "a size (e.g. 512KiB, 2MiB)", "too large", SIZE_MAX));
}

}  // namespace outbox_relay::core
