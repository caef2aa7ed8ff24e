#include "app/secrets.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/errors.h"
#include "kafka/config.h"
#include "pg/common/conninfo.h"

namespace outbox_relay::app {

std::string read_secret_file(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw core::ConfigError(flag + ": cannot read \"" + path + "\": " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.empty()) throw core::ConfigError(flag + ": \"" + path + "\" is empty");
  return s;
}

std::string redact_setting(const std::string& key, const std::string& value) {
  if (key == "db-url") return value.empty() ? value : pg::redact_conninfo(value);
  if (key == "kafka-property") {
    // One KEY=VALUE item: a secret property keeps its name only.
    const auto eq = value.find('=');
    if (eq != std::string::npos && kafka::is_secret_property(value.substr(0, eq))) {
      return value.substr(0, eq) + "=[redacted]";
    }
    return value;
  }
  const bool file = key.size() > 5 && key.compare(key.size() - 5, 5, "-file") == 0;
  if (!file && (key.find("password") != std::string::npos || key.find("secret") != std::string::npos)) {
    return value.empty() ? value : "[redacted]";
  }
  return value;
}

}  // namespace outbox_relay::app
