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

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t from = 0;
  for (;;) {
    const auto comma = s.find(',', from);
    out.push_back(s.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
    if (comma == std::string::npos) return out;
    from = comma + 1;
  }
}

}  // namespace

std::vector<std::map<std::string, std::string>> split_hosts(
    const std::map<std::string, std::string>& params) {
  std::map<std::string, std::vector<std::string>> lists;
  std::size_t hosts = 1;
  for (const char* key : {"host", "hostaddr"}) {
    if (auto it = params.find(key); it != params.end()) {
      lists[key] = split_list(it->second);
      if (hosts > 1 && lists[key].size() != hosts) {
        throw core::ConfigError(
            "invalid connection string: host and hostaddr list different numbers of hosts");
      }
      hosts = lists[key].size();
    }
  }
  if (auto it = params.find("port"); it != params.end()) {
    lists["port"] = split_list(it->second);
    if (lists["port"].size() != 1 && lists["port"].size() != hosts) {
      throw core::ConfigError("invalid connection string: " + std::to_string(lists["port"].size()) +
                              " ports for " + std::to_string(hosts) + " hosts");
    }
  }
  std::vector<std::map<std::string, std::string>> out(hosts, params);
  for (std::size_t i = 0; i < hosts; ++i) {
    for (const auto& [key, values] : lists) {
      const auto& v = values.size() == 1 ? values[0] : values[i];
      if (v.empty()) {
        out[i].erase(key);
      } else {
        out[i][key] = v;
      }
    }
  }
  return out;
}

std::string host_label(const std::map<std::string, std::string>& params) {
  auto get = [&](const char* k) {
    const auto it = params.find(k);
    return it == params.end() ? std::string() : it->second;
  };
  auto host = get("host");
  if (host.empty()) host = get("hostaddr");
  if (host.empty()) host = "(default host)";
  const auto port = get("port");
  return port.empty() ? host : host + ":" + port;
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
