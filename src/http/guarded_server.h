#pragma once
// cpp-httplib's server with limits against slow and greedy clients (slowloris), for http::Server.
// httplib bounds each read, not the request: a client sending one header line every few seconds keeps
// a worker forever, and a handful of such clients starve /healthz. Here:
//   - each connection carries one request, and the whole of it (header read, handler, response
//     write) must finish within kRequestDeadline of the worker taking it, or the connection is closed;
//   - a connection is admitted only when a worker is idle (no queue to wait in behind slow clients);
//     otherwise it is answered 503 at once, on the accepting thread, without reading;
//   - one peer address holds at most kConnectionsPerPeer workers, so a single remote host cannot
//     occupy them all and the local probe (Docker HEALTHCHECK, kubelet) always finds one idle.
// Included by src/http only (httplib stays private to relay_http).

#include <httplib.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace outbox_relay::http {

class GuardedServer final : public httplib::Server {
 public:
  GuardedServer();

  // Call once bound: httplib listens with a backlog of 5, so a burst of connections (slow clients
  // among them) would leave a probe's handshake waiting a SYN retransmission (1 s and more).
  void widen_backlog();

 private:
  // Called by httplib for every accepted socket, on a worker (or inline on the accepting thread when
  // the task queue refuses it); owns closing `sock`.
  bool process_and_close_socket(socket_t sock) override;

  // Takes a worker slot for `peer`; false when the peer already holds kConnectionsPerPeer.
  bool enter(const std::string& peer);
  void leave(const std::string& peer);

  std::mutex peers_mu_;
  std::map<std::string, std::size_t> peers_;  // connections being served, by peer address
  std::condition_variable turn_cv_;
  std::uint64_t turn_ = 0;  // the accept ticket whose admission is decided next
};

}  // namespace outbox_relay::http
