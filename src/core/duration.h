#pragma once
// Durations and sizes in flags and config: "250ms", "10s", "5m", "1h", "7d". A unit is required, so "30" is
// an error rather than a guess between seconds and milliseconds.

#include <chrono>
#include <cstddef>
#include <string>

namespace outbox_relay::core {

// Throws std::invalid_argument with a message naming the problem.
std::chrono::milliseconds parse_duration(const std::string& text);
std::string format_duration(std::chrono::milliseconds d);

// Sizes: "512KiB", "2MiB", "1GiB", "64kB", "2MB", "100B". A unit is required here too.
// Throws std::invalid_argument with a message naming the problem.
std::size_t parse_size(const std::string& text);

}  // namespace outbox_relay::core
