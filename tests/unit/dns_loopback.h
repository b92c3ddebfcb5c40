// Loopback helpers for the DNS server tests (no root: 127.0.0.x and ports the kernel picks):
// clients that ask from a chosen 127.0.0.x source, a fake upstream resolver with scripted
// behaviour, and a way to run one coroutine on the test's single io_context.
#pragma once

#include <algorithm>
#include <doctest/doctest.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "net/dns/dns_message.h"
#include "net/dns/resolv_conf.h"

namespace stack::test::dns {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;
using namespace stack::net::dns;
using namespace std::chrono_literals;
inline constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Runs AW on IO until it completes (every coroutine here bounds itself with a timer).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> aw) {
  std::optional<T> result;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T v) {
    done = true;
    error = e;
    if (!e) result.emplace(std::move(v));
  });
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_one_for(50ms);
  }
  REQUIRE_MESSAGE(done, "coroutine did not finish");
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

// Closes SOCK after TIMEOUT unless cancelled: bounds a client's whole exchange.
template <class Socket>
void arm_watchdog(asio::steady_timer& timer, std::shared_ptr<Socket> sock,
                  std::chrono::milliseconds timeout) {
  timer.expires_after(timeout);
  timer.async_wait([sock](error_code e) {
    if (e) return;
    error_code ignored;
    sock->close(ignored);
  });
}

// One UDP query from SOURCE (a 127.0.0.x address) to SERVER; nullopt when nothing came back.
inline asio::awaitable<std::optional<Wire>> udp_ask(std::string source, udp::endpoint server,
                                                    Wire query,
                                                    std::chrono::milliseconds timeout = 3s) {
  auto& io = static_cast<asio::io_context&>((co_await asio::this_coro::executor).context());
  auto sock = std::make_shared<udp::socket>(io, udp::endpoint(asio::ip::make_address(source), 0));
  asio::steady_timer timer(io);
  arm_watchdog(timer, sock, timeout);
  co_await sock->async_send_to(asio::buffer(query), server, kTuple);
  Wire buf(65535);
  auto [ec, n] = co_await sock->async_receive(asio::buffer(buf), kTuple);
  timer.cancel();
  if (ec) co_return std::nullopt;
  buf.resize(n);
  co_return buf;
}

// Several queries over one TCP connection (all written first: pipelined), answers in order.
inline asio::awaitable<std::vector<Wire>> tcp_ask(std::string source, tcp::endpoint server,
                                                  std::vector<Wire> queries,
                                                  std::chrono::milliseconds timeout = 3s) {
  auto& io = static_cast<asio::io_context&>((co_await asio::this_coro::executor).context());
  auto sock = std::make_shared<tcp::socket>(io);
  sock->open(tcp::v4());
  sock->bind(tcp::endpoint(asio::ip::make_address(source), 0));
  asio::steady_timer timer(io);
  arm_watchdog(timer, sock, timeout);
  std::vector<Wire> answers;
  auto [cec] = co_await sock->async_connect(server, kTuple);
  if (cec) co_return answers;
  Wire out;
  for (const Wire& q : queries) {
    out.push_back(static_cast<std::uint8_t>(q.size() >> 8));
    out.push_back(static_cast<std::uint8_t>(q.size()));
    out.insert(out.end(), q.begin(), q.end());
  }
  co_await asio::async_write(*sock, asio::buffer(out), kTuple);
  for (std::size_t i = 0; i < queries.size(); ++i) {
    std::array<std::uint8_t, 2> len{};
    auto [e1, n1] = co_await asio::async_read(*sock, asio::buffer(len), kTuple);
    if (e1) break;
    Wire a(static_cast<std::size_t>(len[0] << 8 | len[1]));
    auto [e2, n2] = co_await asio::async_read(*sock, asio::buffer(a), kTuple);
    if (e2) break;
    answers.push_back(std::move(a));
  }
  timer.cancel();
  co_return answers;
}

// A resolver on 127.0.0.1 (UDP and TCP on one port). Names in `answers` get their addresses,
// names in `silent` no reply at all, names in `refuse` SERVFAIL, names in `truncate_udp` an empty
// TC answer over UDP (the full one over TCP); anything else NXDOMAIN.
class FakeUpstream {
 public:
  explicit FakeUpstream(asio::io_context& io) : io_(io), udp_(io), acceptor_(io) {
    for (int i = 0; i < 10; ++i) {
      udp::socket u(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      tcp::acceptor a(io);
      error_code ec;
      a.open(tcp::v4());
      a.set_option(tcp::acceptor::reuse_address(true));
      a.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), u.local_endpoint().port()), ec);
      if (ec) continue;
      a.listen();
      port_ = u.local_endpoint().port();
      udp_ = std::move(u);
      acceptor_ = std::move(a);
      break;
    }
    REQUIRE(port_ != 0);
    asio::co_spawn(io_, udp_loop(), [](std::exception_ptr) {});
    asio::co_spawn(io_, accept_loop(), [](std::exception_ptr) {});
  }
  ~FakeUpstream() {
    alive_ = false;
    error_code ignored;
    udp_.close(ignored);
    acceptor_.close(ignored);
  }

  Upstream upstream() const { return Upstream{"127.0.0.1", port_}; }

  std::map<std::string, std::vector<Ipv4>> answers;
  std::set<std::string> silent;
  std::set<std::string> refuse;
  std::set<std::string> truncate_udp;
  int udp_queries = 0;
  int tcp_queries = 0;

 private:
  std::optional<Wire> respond(const Wire& query, bool tcp) {
    Classified c = classify_message(query);
    if (c.kind != Classified::Kind::kQuery) return std::nullopt;
    const Query& q = *c.query;
    if (silent.count(q.name())) return std::nullopt;
    if (refuse.count(q.name())) return q.reply(Rcode::kServFail, {}, 65535);
    auto it = answers.find(q.name());
    if (it == answers.end()) return q.reply(Rcode::kNxDomain, {}, 65535);
    if (!tcp && truncate_udp.count(q.name())) return q.reply(Rcode::kNoError, {}, 512, 60, true);
    return q.reply(Rcode::kNoError, it->second, 65535, 60);
  }

  asio::awaitable<void> udp_loop() {
    Wire buf(65535);
    for (;;) {
      udp::endpoint from;
      auto [ec, n] = co_await udp_.async_receive_from(asio::buffer(buf), from, kTuple);
      if (!alive_ || ec == asio::error::operation_aborted) co_return;
      if (ec) continue;
      ++udp_queries;
      if (auto r = respond(Wire(buf.begin(), buf.begin() + static_cast<long>(n)), false))
        co_await udp_.async_send_to(asio::buffer(*r), from, kTuple);
    }
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(kTuple);
      if (!alive_ || ec) co_return;
      asio::co_spawn(io_, session(std::move(sock)), [](std::exception_ptr) {});
    }
  }

  asio::awaitable<void> session(tcp::socket sock) {
    for (;;) {
      std::array<std::uint8_t, 2> len{};
      auto [e1, n1] = co_await asio::async_read(sock, asio::buffer(len), kTuple);
      if (e1 || !alive_) co_return;
      Wire q(static_cast<std::size_t>(len[0] << 8 | len[1]));
      auto [e2, n2] = co_await asio::async_read(sock, asio::buffer(q), kTuple);
      if (e2 || !alive_) co_return;
      ++tcp_queries;
      auto r = respond(q, true);
      if (!r) continue;
      Wire out(2 + r->size());  // length prefix, then the message (RFC 1035 4.2.2)
      out[0] = static_cast<std::uint8_t>(r->size() >> 8);
      out[1] = static_cast<std::uint8_t>(r->size());
      std::copy(r->begin(), r->end(), out.begin() + 2);
      co_await asio::async_write(sock, asio::buffer(out), kTuple);
    }
  }

  asio::io_context& io_;
  udp::socket udp_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  bool alive_ = true;
};

}  // namespace stack::test::dns
