#pragma once
// The connection parameters every session of the relay adds to the operator's (poll claims, the WAL
// stream and its side connection, the operator's queries): one place for the client-side bounds.

#include <chrono>
#include <map>
#include <string>

namespace outbox_relay::pg {

struct SessionDefaults {
  std::string application_name = "outbox-relay";
  std::chrono::milliseconds connect_timeout{10000};
  // How long a silent peer may go unnoticed: TCP keepalives probe after a quarter of it, every eighth,
  // three times, and tcp_user_timeout fails a write unacknowledged for that long (at least 1 s).
  std::chrono::milliseconds session_timeout{60000};
};

// The parameters of `conninfo` plus application_name, connect_timeout (whole seconds, at least 1),
// keepalives_idle/interval/count and tcp_user_timeout, each only where the operator did not set it.
// Throws core::ConfigError like parse_conninfo.
std::map<std::string, std::string> session_params(const std::string& conninfo, const SessionDefaults& d);

// The same as a key=value connection string.
std::string session_conninfo(const std::string& conninfo, const SessionDefaults& d);

}  // namespace outbox_relay::pg
