#pragma once
// Text forms of PostgreSQL values that both sources meet: bytea's hex output ("\x4869") and UTF-8
// validity (a `text` value can hold neither invalid UTF-8 nor NUL). Pure; no libpq.

#include <optional>
#include <string>
#include <string_view>

namespace outbox_relay::pg {

// The bytes of a bytea value in its hex output form ("\x4869"); nullopt when not that form.
[[nodiscard]] std::optional<std::string> decode_bytea_hex(std::string_view text);

// The hex output form of `bytes` ("\x" then two lower-case hex digits a byte).
[[nodiscard]] std::string encode_bytea_hex(std::string_view bytes);

// Whether `s` is valid UTF-8 without NUL: shortest forms only, no surrogates, nothing past U+10FFFF.
[[nodiscard]] bool valid_utf8(std::string_view s);

// `bytes` as text a `text` column accepts: as-is when valid UTF-8, else its bytea hex form.
[[nodiscard]] std::string text_or_hex(std::string_view bytes);

}  // namespace outbox_relay::pg
