#include "http/server.h"

#include <httplib.h>

#include <charconv>

#include "core/errors.h"
#include "http/guarded_server.h"
#include "http/prometheus.h"

namespace outbox_relay::http {

std::optional<ListenAddress> parse_listen_address(const std::string& text) {
  if (text.empty() || text == "off") return std::nullopt;
  auto fail = [&](const std::string& why) -> ListenAddress {
    throw core::ConfigError("--http-addr: \"" + text + "\" " + why + " (HOST:PORT, [V6]:PORT, :PORT or off)");
  };
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return fail("has no port");
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return fail("needs brackets around an IPv6 address");
  }
  if (host.empty()) host = "0.0.0.0";
  int port = -1;
  const auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return fail("has no valid port");
  }
  return ListenAddress{host, port};
}

Server::Server(const ListenAddress& address, Handlers handlers)
    : server_(std::make_unique<GuardedServer>()), handlers_(std::move(handlers)) {
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(handlers_.metrics(), kPrometheusContentType);
  });
  auto probe = [](const std::function<ProbeResult()>& f) {
    return [&f](const httplib::Request&, httplib::Response& res) {
      const auto r = f();
      res.status = r.status;
      res.set_content(r.body, "text/plain; charset=utf-8");
    };
  };
  server_->Get("/healthz", probe(handlers_.healthz));
  server_->Get("/readyz", probe(handlers_.readyz));
  const std::string where = address.host + ":" + std::to_string(address.port);
  if (address.port == 0) {
    port_ = server_->bind_to_any_port(address.host);
    if (port_ < 0) throw core::ConfigError("--http-addr: could not listen on \"" + where + "\"");
  } else {
    if (!server_->bind_to_port(address.host, address.port)) {
      throw core::ConfigError("--http-addr: could not listen on \"" + where +
                              "\" (address in use or invalid)");
    }
    port_ = address.port;
  }
  server_->widen_backlog();
  std::packaged_task<void()> task([this] { server_->listen_after_bind(); });
  done_ = task.get_future();
  thread_ = std::thread(std::move(task));
}

Server::~Server() {
  // stop() is a no-op until the listening thread has started; repeat it until that thread is done.
  while (done_.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) server_->stop();
  thread_.join();
}

}  // namespace outbox_relay::http
