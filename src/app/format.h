#pragma once
// Text for operators, shared by the commands and the mode descriptions.

#include <cstdint>
#include <string>
#include <vector>

namespace outbox_relay::app {

// "3.2s", "4m10s", "2h05m", "3d04h": an age for humans; "-" for a negative (unknown) age.
std::string format_age(int64_t ms);

// "a", "b", "c" (each item in double quotes, comma-separated).
std::string quoted_list(const std::vector<std::string>& items);

}  // namespace outbox_relay::app
