#include "pg/common/sql_text.h"

namespace outbox_relay::pg {

namespace {

std::string quoted(std::string_view text, char quote) {
  std::string out(1, quote);
  out.reserve(text.size() + 2);
  for (char c : text) {
    if (c == quote) out += quote;
    out += c;
  }
  return out + quote;
}

}  // namespace

std::string quote_ident(std::string_view name) { return quoted(name, '"'); }

std::string quote_literal(std::string_view text) { return quoted(text, '\''); }

std::vector<std::string> split_qualified(std::string_view name) {
  std::vector<std::string> parts(1);
  bool quoted_part = false;  // within "...": a dot is part of the name, "" is one "
  bool was_quoted = false;   // the current part began with a quote
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (quoted_part) {
      if (c != '"') {
        parts.back() += c;
      } else if (i + 1 < name.size() && name[i + 1] == '"') {
        parts.back() += '"';
        ++i;
      } else {
        quoted_part = false;
      }
    } else if (c == '"' && parts.back().empty() && !was_quoted) {
      quoted_part = was_quoted = true;
    } else if (c == '.' && parts.size() == 1) {
      parts.emplace_back();
      was_quoted = false;
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

std::string quote_qualified(std::string_view name) {
  std::string out;
  for (const auto& part : split_qualified(name)) out += (out.empty() ? "" : ".") + quote_ident(part);
  return out;
}

std::string array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace outbox_relay::pg
