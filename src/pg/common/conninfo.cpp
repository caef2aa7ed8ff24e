#include "pg/common/conninfo.h"

#include <libpq-fe.h>

#include <memory>

#include "core/errors.h"

namespace outbox_relay::pg {

std::map<std::string, std::string> parse_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(PQconninfoParse(conninfo.c_str(), &err),
                                                                    &PQconninfoFree);
  if (!opts) {
    std::string why = err != nullptr ? err : "out of memory";
    PQfreemem(err);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    throw core::ConfigError("invalid connection string: " + why);
  }
  std::map<std::string, std::string> out;
  for (auto* o = opts.get(); o->keyword != nullptr; ++o) {
    if (o->val != nullptr && o->val[0] != '\0') out[o->keyword] = o->val;
  }
  return out;
}

std::string build_conninfo(const std::map<std::string, std::string>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += ' ';
    out += k;
    out += "='";
    for (char c : v) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    out += '\'';
  }
  return out;
}

std::string with_defaults(const std::string& conninfo, const std::map<std::string, std::string>& extra) {
  auto params = parse_conninfo(conninfo);
  for (const auto& [k, v] : extra) params.try_emplace(k, v);
  return build_conninfo(params);
}

std::string with_password(const std::string& conninfo, const std::string& password) {
  auto params = parse_conninfo(conninfo);
  params["password"] = password;
  return build_conninfo(params);
}

std::string redact_conninfo(const std::string& conninfo) {
  try {
    const auto p = parse_conninfo(conninfo);
    std::string out;
    for (const char* k : {"host", "hostaddr", "port", "dbname", "user", "sslmode"}) {
      auto it = p.find(k);
      if (it == p.end()) continue;
      if (!out.empty()) out += ' ';
      out += std::string(k) + "=" + it->second;
    }
    return out.empty() ? "(defaults)" : out;
  } catch (const core::ConfigError&) {
    return "(invalid connection string)";
  }
}

}  // namespace outbox_relay::pg
