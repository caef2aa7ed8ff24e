#pragma once
// The relay's HTTP endpoint (cpp-httplib): /metrics, /healthz, /readyz. Serves on its own threads
// (two workers); every handler only reads atomics, so a scrape never touches the dispatcher.

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "http/probes.h"

namespace httplib {
class Server;
}

namespace outbox_relay::http {

struct ListenAddress {
  std::string host;
  int port = 0;
};

// "host:port", "[v6]:port" or ":port" (all interfaces). "off" or "" disables the endpoint (nullopt).
// Throws core::ConfigError naming the flag.
std::optional<ListenAddress> parse_listen_address(const std::string& text);

class Server {
 public:
  struct Handlers {
    std::function<std::string()> metrics;
    std::function<ProbeResult()> healthz;
    std::function<ProbeResult()> readyz;
  };
  // Binds at once (port 0 picks a free one); throws core::ConfigError when the address cannot be bound.
  Server(const ListenAddress& address, Handlers handlers);
  ~Server();  // stops serving and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  Handlers handlers_;
  int port_ = 0;
  std::thread thread_;
  std::future<void> done_;
};

}  // namespace outbox_relay::http
