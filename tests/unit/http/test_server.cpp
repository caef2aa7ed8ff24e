// The HTTP endpoint against slow clients (slowloris): a client that dribbles its request header must
// not keep /healthz from being answered, and must lose its connection once the whole request took
// too long, however regularly each byte arrives. Real sockets on loopback; every wait has a deadline.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"

using namespace outbox_relay;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

http::Server::Handlers healthy() {
  http::Server::Handlers h;
  h.metrics = [] { return std::string("# nothing\n"); };
  h.healthz = [] { return http::ProbeResult{200, "ok\n"}; };
  h.readyz = [] { return http::ProbeResult{200, "ready\n"}; };
  return h;
}

// A TCP connection to 127.0.0.1:`port` from the loopback address `from` (127.0.0.2 stands for another
// host than the probe's 127.0.0.1).
int connect_from(const char* from, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, from, &local.sin_addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof server) == 0);
  return fd;
}

// The status of GET `path` from 127.0.0.1, or 0 when no status line arrived within `deadline`.
int probe(int port, const std::string& path, std::chrono::milliseconds deadline) {
  const auto until = Clock::now() + deadline;
  const int fd = connect_from("127.0.0.1", port);
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return 0;
  }
  std::string reply;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[512];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
    if (reply.find("\r\n") != std::string::npos) break;
  }
  ::close(fd);
  if (reply.rfind("HTTP/1.1 ", 0) != 0 || reply.size() < 12) return 0;
  return std::stoi(reply.substr(9, 3));
}

// A slowloris client: sends a request line, then one header line every `gap` and never the blank line
// that ends the header, until the server closes the connection or the client is destroyed.
class SlowClient {
 public:
  SlowClient(const char* from, int port, std::chrono::milliseconds gap) : fd_(connect_from(from, port)) {
    thread_ = std::thread([this, gap] { dribble(gap); });
  }
  ~SlowClient() {
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
    ::close(fd_);
  }
  SlowClient(const SlowClient&) = delete;
  SlowClient& operator=(const SlowClient&) = delete;

  // True once the server closed the connection; waits up to `timeout` for it.
  bool wait_closed(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return closed_; });
  }
  [[nodiscard]] Clock::time_point opened() const { return opened_; }
  [[nodiscard]] Clock::time_point closed_at() {
    std::lock_guard lock(mu_);
    return closed_at_;
  }

 private:
  void dribble(std::chrono::milliseconds gap) {
    std::string line = "GET /healthz HTTP/1.1\r\n";
    for (int i = 0;; ++i) {
      if (::send(fd_, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) break;
      line = "X-Slow-" + std::to_string(i) + ": a\r\n";
      // Until the next line is due: watch for the server closing (or answering) the connection.
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(gap.count())) > 0) break;
      std::unique_lock lock(mu_);
      if (quit_) return;
    }
    std::lock_guard lock(mu_);
    closed_ = true;
    closed_at_ = Clock::now();
    cv_.notify_all();
  }

  int fd_;
  Clock::time_point opened_ = Clock::now();
  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  bool closed_ = false;
  Clock::time_point closed_at_{};
  std::thread thread_;
};

}  // namespace

TEST_CASE("http server: clients dribbling their headers do not keep /healthz from being answered") {
  http::Server server({"127.0.0.1", 0}, healthy());
  // More slow clients than the old two workers, from one other host, each line well within any
  // per-read timeout.
  std::vector<std::unique_ptr<SlowClient>> slow;
  for (int i = 0; i < 6; ++i) slow.push_back(std::make_unique<SlowClient>("127.0.0.2", server.port(), 500ms));
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(probe(server.port(), "/healthz", 1000ms) == 200);
  }
}

TEST_CASE("http server: a request header still incomplete at the deadline loses its connection") {
  http::Server server({"127.0.0.1", 0}, healthy());
  SlowClient slow("127.0.0.2", server.port(), 200ms);
  REQUIRE(slow.wait_closed(http::kRequestDeadline + 1500ms));
  CHECK(slow.closed_at() - slow.opened() >= http::kRequestDeadline - 100ms);
}

TEST_CASE("http server: with every worker held, a connection is answered 503 at once, not queued") {
  http::Server server({"127.0.0.1", 0}, healthy());
  // Two other hosts, each holding as many workers as one peer may: all of them.
  std::vector<std::unique_ptr<SlowClient>> slow;
  for (const char* host : {"127.0.0.2", "127.0.0.3"}) {
    for (std::size_t i = 0; i < http::kConnectionsPerPeer; ++i) {
      slow.push_back(std::make_unique<SlowClient>(host, server.port(), 200ms));
    }
  }
  REQUIRE(slow.size() == http::kWorkers);
  const auto asked = Clock::now();
  CHECK(probe(server.port(), "/healthz", 1000ms) == 503);
  CHECK(Clock::now() - asked < 500ms);
  // Once the deadline frees the workers, the probe is served again.
  for (auto& s : slow) CHECK(s->wait_closed(http::kRequestDeadline + 1500ms));
  CHECK(probe(server.port(), "/healthz", 1000ms) == 200);
}

TEST_CASE("http server: one peer holds at most its share of the workers") {
  http::Server server({"127.0.0.1", 0}, healthy());
  std::vector<std::unique_ptr<SlowClient>> slow;
  for (std::size_t i = 0; i < http::kConnectionsPerPeer; ++i) {
    slow.push_back(std::make_unique<SlowClient>("127.0.0.2", server.port(), 200ms));
  }
  // The same host's next connection is refused at once; the held ones stay until the deadline.
  SlowClient extra("127.0.0.2", server.port(), 200ms);
  CHECK(extra.wait_closed(500ms));
  CHECK_FALSE(slow.front()->wait_closed(0ms));
}
