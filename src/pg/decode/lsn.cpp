#include "pg/decode/lsn.h"

#include <cstdio>
#include <stdexcept>

namespace outbox_relay::pg {

namespace {

// One side of the slash: 1..8 hex digits.
bool parse_half(std::string_view s, uint32_t& out) {
  if (s.empty() || s.size() > 8) return false;
  uint32_t v = 0;
  for (char c : s) {
    uint32_t d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return false;
    }
    v = (v << 4) | d;
  }
  out = v;
  return true;
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace

uint64_t parse_lsn(std::string_view text) {
  const auto slash = text.find('/');
  uint32_t hi = 0;
  uint32_t lo = 0;
  if (slash == std::string_view::npos || !parse_half(text.substr(0, slash), hi) ||
      !parse_half(text.substr(slash + 1), lo)) {
    throw std::invalid_argument("invalid LSN \"" + printable(text) + "\" (expected the form 16/B374D848)");
  }
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

std::string format_lsn(uint64_t lsn) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

}  // namespace outbox_relay::pg
