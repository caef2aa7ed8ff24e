#pragma once
// Renders core::Metrics in the Prometheus text exposition format (version 0.0.4). Pure: unit-tested
// without a server. Gauges whose value is unknown (-1: not measured yet, or not in this mode) are
// left out rather than exported as a misleading number.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/metrics.h"

namespace outbox_relay::http {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

struct ExpositionInfo {
  std::string version;  // outbox_relay_build_info{version=...}
  std::string mode;     // the --mode name (app/modes.h)
  int64_t start_unix_ms = 0;
};

// A label value with \, " and newline escaped as the format requires.
std::string escape_label_value(std::string_view v);

std::string render_prometheus(const core::Metrics& m, const ExpositionInfo& info);

}  // namespace outbox_relay::http
