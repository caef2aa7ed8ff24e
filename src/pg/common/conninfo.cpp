#include "pg/common/conninfo.h"

#include <libpq-fe.h>

#include <memory>
#include <set>

#include "core/errors.h"

namespace outbox_relay::pg {

namespace {

using Options = std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)>;

bool is_keyword(const std::string& word) {
  static const std::set<std::string> keywords = [] {
    std::set<std::string> out;
    const Options defaults(PQconndefaults(), &PQconninfoFree);
    for (auto* o = defaults.get(); o != nullptr && o->keyword != nullptr; ++o) out.insert(o->keyword);
    return out;
  }();
  return keywords.count(word) > 0;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Option values libpq refuses before it connects: no retry can fix them.
bool names_invalid_option(const std::string& cause) {
  for (const char* part :
       {"invalid sslmode value", "invalid gssencmode value", "invalid channel_binding value",
        "invalid target_session_attrs value", "invalid load_balance_hosts value", "invalid sslcertmode value",
        "invalid require_auth", "invalid ssl_min_protocol_version", "invalid ssl_max_protocol_version",
        "invalid integer value", "invalid port number", "could not match", "invalid connection option"}) {
    if (cause.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::string redact_quoted(const std::string& text) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const auto open = text.find('"', pos);
    const auto close = open == std::string::npos ? open : text.find('"', open + 1);
    if (close == std::string::npos) return out + text.substr(pos);
    const auto token = text.substr(open + 1, close - open - 1);
    out += text.substr(pos, open + 1 - pos);
    out += is_keyword(token) || token.size() <= 1 ? token : "***";
    out += '"';
    pos = close + 1;
  }
}

std::string redact_secret(const std::string& text, const std::map<std::string, std::string>& params) {
  const auto it = params.find("password");
  if (it == params.end() || it->second.empty()) return text;
  std::string out = text;
  for (auto p = out.find(it->second); p != std::string::npos; p = out.find(it->second, p + 3)) {
    out.replace(p, it->second.size(), "***");
  }
  return out;
}

void throw_connect_error(const std::map<std::string, std::string>& params, const std::string& what,
                         const std::string& cause) {
  const auto why = redact_secret(trimmed(cause), params);
  if (names_invalid_option(why)) throw core::ConfigError(what + ": " + why);
  throw core::TransientError(what + ": " + why);
}

void throw_connect_error(const std::string& conninfo, const std::string& what, const std::string& cause) {
  throw_connect_error(parse_conninfo(conninfo), what, cause);
}

std::map<std::string, std::string> parse_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  Options opts(PQconninfoParse(conninfo.c_str(), &err), &PQconninfoFree);
  if (!opts) {
    // libpq quotes the part it could not parse, which may be the password ("invalid percent-encoded
    // token: \"<password>\""): only connection keywords are kept.
    const std::string why = trimmed(err != nullptr ? err : "out of memory");
    PQfreemem(err);
    throw core::ConfigError("invalid connection string: " + redact_quoted(why));
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
