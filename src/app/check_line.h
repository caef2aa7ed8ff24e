#pragma once
// One finding of `check`: printed as "ok", "warn" or "FAIL" and its text; a FAIL makes the exit non-zero.

#include <string>
#include <utility>
#include <vector>

namespace outbox_relay::app {

struct CheckLine {
  enum class Level { kOk, kWarn, kFail };
  Level level = Level::kOk;
  std::string text;
};

inline void add(std::vector<CheckLine>& lines, CheckLine::Level level, std::string text) {
  lines.push_back({level, std::move(text)});
}

}  // namespace outbox_relay::app
