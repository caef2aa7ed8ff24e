#include "pg/common/session.h"

#include <algorithm>

#include "pg/common/conninfo.h"

namespace outbox_relay::pg {

std::map<std::string, std::string> session_params(const std::string& conninfo, const SessionDefaults& d) {
  auto params = parse_conninfo(conninfo);
  const auto connect_s =
      std::max<long long>(1, std::chrono::ceil<std::chrono::seconds>(d.connect_timeout).count());
  const auto timeout_ms = std::max<long long>(1000, d.session_timeout.count());
  params.try_emplace("application_name", d.application_name);
  params.try_emplace("connect_timeout", std::to_string(connect_s));
  params.try_emplace("keepalives_idle", std::to_string(std::max<long long>(1, timeout_ms / 4000)));
  params.try_emplace("keepalives_interval", std::to_string(std::max<long long>(1, timeout_ms / 8000)));
  params.try_emplace("keepalives_count", "3");
  params.try_emplace("tcp_user_timeout", std::to_string(timeout_ms));
  return params;
}

std::string session_conninfo(const std::string& conninfo, const SessionDefaults& d) {
  return build_conninfo(session_params(conninfo, d));
}

}  // namespace outbox_relay::pg
