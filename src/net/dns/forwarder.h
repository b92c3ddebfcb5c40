// Forwarding of non-local names to upstream resolvers, for the DNS server (private to
// src/net/dns: it exposes Asio). UDP with a timeout, TCP when the answer is truncated, the next
// upstream on failure. Sockets are opened on the host side, from the daemon's namespace.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "net/dns/dns_message.h"
#include "net/dns/resolv_conf.h"

namespace spdlog {
class logger;
}

namespace stack::net::dns {

class Forwarder {
 public:
  Forwarder(boost::asio::io_context& io, std::chrono::milliseconds timeout);

  // QUERY (the client's message) asked of UPSTREAMS in order. The answer carries the client's
  // id; nullopt when every upstream failed (SERVFAIL and REFUSED answers move on to the next
  // upstream, the last one is returned if no other answers). A truncated UDP answer is retried over
  // TCP and used when the client asked over TCP or it fits CLIENT_MAX; otherwise the truncated
  // answer is passed on so the client retries over TCP itself.
  boost::asio::awaitable<std::optional<Wire>> forward(std::vector<Upstream> upstreams, Wire query,
                                                      bool client_tcp, std::size_t client_max);

  // Aborts every exchange in flight (they fail at once) and refuses new ones.
  void stop();

 private:
  using Udp = boost::asio::ip::udp;
  using Tcp = boost::asio::ip::tcp;
  boost::asio::awaitable<Result<Wire>> udp_exchange(Udp::endpoint to, const Wire& query,
                                                    std::uint16_t id);
  boost::asio::awaitable<Result<Wire>> tcp_exchange(Tcp::endpoint to, const Wire& query,
                                                    std::uint16_t id);

  boost::asio::io_context& io_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<spdlog::logger> log_;
  std::mt19937 ids_;
  bool stopped_ = false;
  std::unordered_set<Udp::socket*> udp_open_;
  std::unordered_set<Tcp::socket*> tcp_open_;
};

}  // namespace stack::net::dns
