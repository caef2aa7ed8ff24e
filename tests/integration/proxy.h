#pragma once
// A TCP proxy on loopback that forwards a client's connection to a server and, once, cuts the first
// connection whose client sends bytes containing `cut_on` (that chunk is not forwarded): the client
// sees its connection end in the middle of that statement. Later connections pass through.

#include <atomic>
#include <string>
#include <thread>

namespace outbox_relay::testing {

class CuttingProxy {
 public:
  CuttingProxy(int target_port, std::string cut_on);
  ~CuttingProxy();
  CuttingProxy(const CuttingProxy&) = delete;
  CuttingProxy& operator=(const CuttingProxy&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] bool has_cut() const { return cut_.load(); }

 private:
  void run();

  int target_port_;
  std::string cut_on_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_{false};
  std::thread thread_;
};

// `url` (postgresql://user:pass@host:port/db) with its port replaced.
std::string with_port(const std::string& url, int port);
// The port of `url`.
int port_of(const std::string& url);

}  // namespace outbox_relay::testing
