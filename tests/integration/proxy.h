#pragma once
// A TCP proxy on loopback that forwards a client's connections to a server and, once, cuts the
// connection whose client sends bytes containing `cut_on` for the `nth` time (counted over all its
// connections): at that chunk, or with `after` > 0 at the after-th chunk that client sends later. The
// chunk cut at is not forwarded: the client sees its connection end in the middle of a message.
// Everything else passes through; each direction of each connection is pumped by its own thread, so a
// client that stops reading one connection never holds up another.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace outbox_relay::testing {

class CuttingProxy {
 public:
  CuttingProxy(int target_port, std::string cut_on, int nth = 1, int after = 0);
  ~CuttingProxy();
  CuttingProxy(const CuttingProxy&) = delete;
  CuttingProxy& operator=(const CuttingProxy&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] bool has_cut() const { return cut_.load(); }

 private:
  struct Link;
  void accept_loop();
  void pump(const std::shared_ptr<Link>& link, bool from_client);
  bool should_cut(int& left, std::string_view chunk);

  int target_port_;
  std::string cut_on_;
  int nth_;
  int after_;
  int seen_ = 0;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_{false};
  std::mutex mu_;  // links_, pumps_, seen_ and each link's countdown
  std::vector<std::shared_ptr<Link>> links_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

// `url` (postgresql://user:pass@host:port/db) with its port replaced.
std::string with_port(const std::string& url, int port);
// The port of `url`.
int port_of(const std::string& url);

}  // namespace outbox_relay::testing
