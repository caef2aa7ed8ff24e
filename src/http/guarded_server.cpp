#include "http/guarded_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "http/server.h"

namespace outbox_relay::http {

namespace {

using Clock = std::chrono::steady_clock;

// Set while the accepting thread runs a connection it refused (AdmissionQueue::enqueue).
thread_local bool t_refusing = false;
// The accept order of the connection a worker runs (AdmissionQueue::enqueue numbers them), so that
// GuardedServer::enter decides admissions in that order whichever worker gets to it first.
thread_local std::uint64_t t_ticket = 0;

// kWorkers threads; a connection is handed to one only when it is idle, never queued behind others.
class AdmissionQueue final : public httplib::TaskQueue {
 public:
  explicit AdmissionQueue(std::size_t workers) : idle_(workers) {
    for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mu_);
      if (idle_ > 0) {
        --idle_;
        jobs_.push_back([ticket = next_ticket_++, fn = std::move(fn)] {
          t_ticket = ticket;
          fn();
        });
        cv_.notify_one();
        return;
      }
    }
    // Every worker is busy: the job answers 503 and closes its socket without reading (quick).
    t_refusing = true;
    fn();
    t_refusing = false;
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return shutdown_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
      std::lock_guard lock(mu_);
      ++idle_;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::size_t idle_;
  std::uint64_t next_ticket_ = 0;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

// "ip" and port of a socket address; false for a family other than IPv4/IPv6.
bool address_of(const sockaddr_storage& a, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    port = ntohs(v6.sin6_port);
  } else {
    return false;
  }
  ip = text;
  return true;
}

// The socket's peer (`peer`) or local address.
void endpoint(int sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  const int rc = peer ? ::getpeername(sock, reinterpret_cast<sockaddr*>(&a), &len)
                      : ::getsockname(sock, reinterpret_cast<sockaddr*>(&a), &len);
  if (rc != 0 || !address_of(a, ip, port)) {
    ip.clear();
    port = 0;
  }
}

// A connection's stream in which every read and write waits only until one deadline, the whole
// request's, and reads stop after kMaxRequestBytes.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int sock, Clock::time_point deadline) : sock_(sock), deadline_(deadline) {}

  [[nodiscard]] bool is_readable() const override { return pos_ < len_ || wait(POLLIN); }
  [[nodiscard]] bool is_writable() const override { return wait(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == len_) {
      if (total_ >= kMaxRequestBytes || !wait(POLLIN)) return -1;
      const auto n = ::recv(sock_, buf_, std::min(sizeof buf_, kMaxRequestBytes - total_), 0);
      if (n <= 0) return n;
      total_ += static_cast<std::size_t>(n);
      pos_ = 0;
      len_ = static_cast<std::size_t>(n);
    }
    const auto n = std::min(size, len_ - pos_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!wait(POLLOUT)) return -1;
    return ::send(sock_, ptr, size, MSG_NOSIGNAL);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { endpoint(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { endpoint(sock_, false, ip, port); }
  [[nodiscard]] socket_t socket() const override { return sock_; }

 private:
  // Until `events` are ready on the socket or the deadline passes (false).
  [[nodiscard]] bool wait(short events) const {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{sock_, events, 0};
    int rc = 0;
    do {
      rc = ::poll(&p, 1, static_cast<int>(left));
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
  }

  int sock_;
  Clock::time_point deadline_;
  char buf_[4096] = {};
  std::size_t pos_ = 0, len_ = 0, total_ = 0;
};

// 503 without reading the request, then close. Never blocks: the accepting thread runs it.
void refuse(int sock) {
  static constexpr char kBusy[] =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n"
      "Connection: close\r\n\r\nbusy\n";
  (void)::send(sock, kBusy, sizeof kBusy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(sock, SHUT_WR);
  // What already arrived of the request is read and dropped: closing over unread bytes would reset
  // the connection and could discard the 503 before the client reads it.
  char sink[1024];
  while (::recv(sock, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  ::close(sock);
}

}  // namespace

GuardedServer::GuardedServer() {
  new_task_queue = [] { return new AdmissionQueue(kWorkers); };
}

void GuardedServer::widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }

bool GuardedServer::enter(const std::string& peer) {
  std::unique_lock lock(peers_mu_);
  // Connections accepted earlier are decided first: otherwise a peer's (n+1)th connection could take
  // the slot of its nth, whose worker was slower to start, and the nth would be refused instead.
  turn_cv_.wait(lock, [this] { return turn_ == t_ticket; });
  ++turn_;
  turn_cv_.notify_all();
  auto& n = peers_[peer];
  if (n >= kConnectionsPerPeer) return false;
  ++n;
  return true;
}

void GuardedServer::leave(const std::string& peer) {
  std::lock_guard lock(peers_mu_);
  if (--peers_[peer] == 0) peers_.erase(peer);
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  const auto deadline = Clock::now() + kRequestDeadline;
  std::string peer;
  int port = 0;
  endpoint(sock, true, peer, port);
  if (t_refusing || !enter(peer)) {
    refuse(sock);
    return false;
  }
  DeadlineStream stream(sock, deadline);
  bool closed = false;
  const bool ok = process_request(stream, /*close_connection=*/true, closed, [](httplib::Request&) {});
  leave(peer);
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

}  // namespace outbox_relay::http
