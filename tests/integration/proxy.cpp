#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string_view>
#include <vector>

namespace outbox_relay::testing {

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

bool send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const auto w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// The URL's host:port part: between '@' (or "//") and the next '/'.
std::pair<std::size_t, std::size_t> port_span(const std::string& url) {
  const auto at = url.find('@');
  const auto host = at != std::string::npos ? at + 1 : url.find("//") + 2;
  const auto slash = url.find('/', host);
  const auto colon = url.rfind(':', slash);
  if (colon == std::string::npos || colon < host) throw std::invalid_argument("no port in " + url);
  return {colon + 1, slash == std::string::npos ? url.size() : slash};
}

}  // namespace

std::string with_port(const std::string& url, int port) {
  const auto [from, to] = port_span(url);
  return url.substr(0, from) + std::to_string(port) + url.substr(to);
}

int port_of(const std::string& url) {
  const auto [from, to] = port_span(url);
  return std::stoi(url.substr(from, to - from));
}

struct CuttingProxy::Link {
  int client = -1, server = -1;
  int left = -1;  // client chunks still to forward before the cut; -1: not the connection to cut
  ~Link() {
    ::close(client);
    ::close(server);
  }
  void shut() const {
    ::shutdown(client, SHUT_RDWR);
    ::shutdown(server, SHUT_RDWR);
  }
};

CuttingProxy::CuttingProxy(int target_port, std::string cut_on, int nth, int after)
    : target_port_(target_port), cut_on_(std::move(cut_on)), nth_(nth), after_(after) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto addr = loopback(0);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("proxy: cannot listen on loopback");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

CuttingProxy::~CuttingProxy() {
  stop_ = true;
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard lock(mu_);
    for (const auto& l : links_) l->shut();
  }
  for (auto& t : pumps_) t.join();
}

bool CuttingProxy::should_cut(int& left, std::string_view chunk) {
  if (left < 0) {
    if (chunk.find(cut_on_) == std::string_view::npos || ++seen_ != nth_) return false;
    left = after_;
  } else {
    --left;
  }
  return left == 0;
}

void CuttingProxy::accept_loop() {
  while (!stop_.load()) {
    pollfd fd{listen_fd_, POLLIN, 0};
    if (::poll(&fd, 1, 50) <= 0) continue;
    auto link = std::make_shared<Link>();
    link->client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    link->server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const auto addr = loopback(target_port_);
    if (link->client < 0 || link->server < 0 ||
        ::connect(link->server, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      continue;  // the client sees its connection closed
    }
    std::lock_guard lock(mu_);
    links_.push_back(link);
    pumps_.emplace_back([this, link] { pump(link, true); });
    pumps_.emplace_back([this, link] { pump(link, false); });
  }
}

void CuttingProxy::pump(const std::shared_ptr<Link>& link, bool from_client) {
  std::vector<char> buf(1 << 16);
  const int from = from_client ? link->client : link->server;
  const int to = from_client ? link->server : link->client;
  while (true) {
    const auto n = ::recv(from, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    if (from_client && !cut_.load()) {
      std::lock_guard lock(mu_);
      if (should_cut(link->left, std::string_view(buf.data(), static_cast<std::size_t>(n)))) {
        cut_ = true;
        break;
      }
    }
    if (!send_all(to, buf.data(), static_cast<std::size_t>(n))) break;
  }
  link->shut();  // one direction ended: end the connection for both
}

}  // namespace outbox_relay::testing
