#pragma once
// Log output formats: text (the default, set up by setup_logging) or JSON lines for log shippers
// (--log-format json): one object per line with time (UTC, ms), level and msg. Either way one log call
// is one line, whatever a row (topic, key, id) or a server put in the message: control characters are
// escaped in the formatter, so no value can forge a line or drive the terminal.

#include <chrono>
#include <string>
#include <string_view>

namespace outbox_relay::app {

// `s` as the inside of a JSON string: ", \ and control characters escaped, invalid UTF-8 replaced
// by U+FFFD so every line stays valid JSON whatever a server or library put in a message.
std::string json_escape(std::string_view s);

// `s` for a text log line: \n and \r as those two characters, other control characters (C0 but the
// tab, DEL, C1) and bytes that are not UTF-8 as \xHH (C1 as \u00HH); the rest, backslashes
// included, as it is.
std::string text_escape(std::string_view s);

// {"time":"2024-05-01T12:00:00.123Z","level":"info","msg":"..."} without the newline.
std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view msg);

// Text lines on stderr at `level` (trace, debug, info, warn, error) as the default logger, flushed
// from info up. Call once, before threads start.
void setup_logging(const std::string& level);

// Switches the default logger (set up by setup_logging) to JSON lines. Call before threads start.
void use_json_logs();

}  // namespace outbox_relay::app
