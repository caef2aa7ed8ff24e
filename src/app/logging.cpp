#include "app/logging.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>

namespace outbox_relay::app {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  uint32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0Fu;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07u;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;  // overlong
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;                                               // surrogate
  return len;
}

enum class Unit { kAscii, kUtf8, kInvalid };

// Calls `f(kind, bytes)` for each unit of `s` in order: one ASCII byte, one valid UTF-8 sequence of
// two to four bytes, or one byte that starts no valid sequence.
template <typename F>
void for_each_unit(std::string_view s, F f) {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      f(Unit::kAscii, s.substr(i, 1));
      ++i;
    } else if (const auto len = utf8_sequence(s, i); len > 0) {
      f(Unit::kUtf8, s.substr(i, len));
      i += len;
    } else {
      f(Unit::kInvalid, s.substr(i, 1));
      ++i;
    }
  }
}

// %* in the text pattern: the message with control characters escaped (text_escape).
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*tm*/,
              spdlog::memory_buf_t& dest) override {
    const auto text = text_escape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(text.data(), text.data() + text.size());
  }
  [[nodiscard]] std::unique_ptr<spdlog::custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    const auto line = json_log_line(msg.time, std::string_view(level.data(), level.size()),
                                    std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for_each_unit(s, [&out](Unit kind, std::string_view u) {
    if (kind == Unit::kInvalid) {
      out += "\\ufffd";
      return;
    }
    if (kind == Unit::kUtf8) {
      out += u;
      return;
    }
    switch (const auto c = static_cast<unsigned char>(u[0])) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  });
  return out;
}

std::string text_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for_each_unit(s, [&out](Unit kind, std::string_view u) {
    const auto c = static_cast<unsigned char>(u[0]);
    if (kind == Unit::kInvalid) {
      out += fmt::format("\\x{:02x}", c);
    } else if (kind == Unit::kUtf8) {
      // U+0080..U+009F: C1 controls (CSI and others a terminal obeys)
      const auto c1 = static_cast<unsigned char>(u[1]);
      if (c == 0xC2 && c1 < 0xA0) {
        out += fmt::format("\\u{:04x}", c1);
      } else {
        out += u;
      }
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if ((c < 0x20 && c != '\t') || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  });
  return out;
}

std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view msg) {
  const auto secs = std::chrono::system_clock::to_time_t(time);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format(R"({{"time":"{:%Y-%m-%dT%H:%M:%S}.{:03d}Z","level":"{}","msg":"{}"}})", tm, ms,
                     json_escape(level), json_escape(msg));
}

void use_json_logs() { spdlog::default_logger()->set_formatter(std::make_unique<JsonFormatter>()); }

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("outbox-relay");
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<EscapedMessage>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %*");
  logger->set_formatter(std::move(formatter));
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace outbox_relay::app
