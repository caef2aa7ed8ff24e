#pragma once
// Log sequence numbers (WAL positions) in PostgreSQL's text form: two hex numbers, the high and low
// 32 bits, "16/B374D848". 0/0 is InvalidXLogRecPtr.

#include <cstdint>
#include <string>
#include <string_view>

namespace outbox_relay::pg {

// Parses "X/Y" (1..8 hex digits on each side, either case). Throws std::invalid_argument naming the
// text on anything else (empty parts, signs, spaces, overflow, trailing bytes).
[[nodiscard]] uint64_t parse_lsn(std::string_view text);

// Formats as PostgreSQL does: upper-case hex, no leading zeros ("0/0", "16/B374D848").
[[nodiscard]] std::string format_lsn(uint64_t lsn);

}  // namespace outbox_relay::pg
