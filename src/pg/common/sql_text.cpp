#include "pg/common/sql_text.h"

namespace outbox_relay::pg {

std::string quote_qualified(pqxx::connection& c, const std::string& name) {
  const auto dot = name.find('.');
  if (dot == std::string::npos) return c.quote_name(name);
  return c.quote_name(name.substr(0, dot)) + "." + c.quote_name(name.substr(dot + 1));
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
