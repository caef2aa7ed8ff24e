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

CuttingProxy::CuttingProxy(int target_port, std::string cut_on)
    : target_port_(target_port), cut_on_(std::move(cut_on)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto addr = loopback(0);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("proxy: cannot listen on loopback");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

CuttingProxy::~CuttingProxy() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

void CuttingProxy::run() {
  struct Pair {
    int client, server;
  };
  std::vector<Pair> pairs;
  std::vector<char> buf(1 << 16);
  while (!stop_.load()) {
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
    for (const auto& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
    if ((fds[0].revents & POLLIN) != 0) {
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const auto addr = loopback(target_port_);
      if (c >= 0 && s >= 0 && ::connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        pairs.push_back({c, s});
      } else {
        if (c >= 0) ::close(c);
        if (s >= 0) ::close(s);
      }
    }
    std::vector<Pair> kept;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const auto& p = pairs[i];
      bool open = true;
      for (int side = 0; side < 2 && open; ++side) {
        const auto& f = fds[1 + 2 * i + side];
        if ((f.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const int from = side == 0 ? p.client : p.server;
        const int to = side == 0 ? p.server : p.client;
        const auto n = ::recv(from, buf.data(), buf.size(), 0);
        if (n <= 0) {
          open = false;
        } else if (side == 0 && !cut_.load() &&
                   std::string_view(buf.data(), static_cast<std::size_t>(n)).find(cut_on_) !=
                       std::string_view::npos) {
          cut_ = true;
          open = false;
        } else {
          open = send_all(to, buf.data(), static_cast<std::size_t>(n));
        }
      }
      if (open) {
        kept.push_back(p);
      } else {
        ::close(p.client);
        ::close(p.server);
      }
    }
    pairs = std::move(kept);
  }
  for (const auto& p : pairs) {
    ::close(p.client);
    ::close(p.server);
  }
}

}  // namespace outbox_relay::testing
