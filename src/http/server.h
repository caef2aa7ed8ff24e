#pragma once
// The relay's HTTP endpoint (cpp-httplib): /metrics, /healthz, /readyz. Serves on its own threads
// (kWorkers); every handler only reads atomics, so a scrape never touches the dispatcher. Slow or
// greedy clients cannot keep a probe from being answered (limits below, http/guarded_server.h).

#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "http/probes.h"

namespace outbox_relay::http {

// Workers serving connections; a connection arriving while all are busy is answered 503 at once.
inline constexpr std::size_t kWorkers = 8;
// Workers one peer address may hold at a time; its further connections are answered 503 at once.
inline constexpr std::size_t kConnectionsPerPeer = 4;
// One request per connection, and the whole of it (header read, handler, response write) within this
// of a worker taking it; then the connection is closed (a probe's timeout is usually 3 s or more).
inline constexpr std::chrono::milliseconds kRequestDeadline{2000};
// The most bytes read from one request (the endpoint takes no request bodies).
inline constexpr std::size_t kMaxRequestBytes = 64 * 1024;

class GuardedServer;

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
  std::unique_ptr<GuardedServer> server_;
  Handlers handlers_;
  int port_ = 0;
  std::thread thread_;
  std::future<void> done_;
};

}  // namespace outbox_relay::http
