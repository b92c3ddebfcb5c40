// Upstream forwarding on the event loop: one fresh socket per exchange (random source port and a
// random id, both checked on the answer), a watchdog timer per exchange, no threads.
// Asio errors are taken as error codes (as_tuple) and become Result errors here.

#include "net/dns/forwarder.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/log.h"
#include "common/scope_guard.h"

namespace stack::net::dns {

namespace asio = boost::asio;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

Forwarder::Forwarder(asio::io_context& io, std::chrono::milliseconds timeout)
    : io_(io), timeout_(timeout), log_(log::get("dns")), ids_(std::random_device{}()) {}

void Forwarder::stop() {
  stopped_ = true;
  error_code ignored;
  for (auto* s : udp_open_) s->close(ignored);
  for (auto* s : tcp_open_) s->close(ignored);
}

asio::awaitable<std::optional<Wire>> Forwarder::forward(std::vector<Upstream> upstreams, Wire query,
                                                        bool client_tcp, std::size_t client_max) {
  const std::uint16_t client_id = wire_id(query);
  std::optional<Wire> refusal;  // a SERVFAIL or REFUSED answer, passed on if nothing better comes
  for (const Upstream& up : upstreams) {
    if (stopped_) break;
    error_code ec;
    auto address = asio::ip::make_address(up.address, ec);
    if (ec) continue;
    auto id = static_cast<std::uint16_t>(ids_());
    set_wire_id(query, id);

    Result<Wire> answer = co_await udp_exchange(Udp::endpoint(address, up.port), query, id);
    if (answer && is_truncated(*answer) && !stopped_) {
      Result<Wire> full = co_await tcp_exchange(Tcp::endpoint(address, up.port), query, id);
      if (full && (client_tcp || full->size() <= client_max)) {
        answer = std::move(full);
      } else if (client_tcp) {
        answer = full ? fail("tcp answer unusable") : fail(full.error().wrap("tcp retry"));
      }
    }
    if (!answer) {
      log_->debug("upstream failed upstream={} error={}", up.to_string(), answer.error().message);
      continue;
    }
    set_wire_id(*answer, client_id);
    Rcode rcode = wire_rcode(*answer);
    if (rcode == Rcode::kServFail || rcode == Rcode::kRefused) {
      // As the C library does: another upstream may know better.
      log_->debug("upstream refused upstream={} rcode={}", up.to_string(), rcode_name(rcode));
      refusal = std::move(*answer);
      continue;
    }
    co_return std::move(*answer);
  }
  co_return refusal;
}

asio::awaitable<Result<Wire>> Forwarder::udp_exchange(Udp::endpoint to, const Wire& query,
                                                      std::uint16_t id) {
  // Shared with the watchdog, whose handler may run after this frame is gone.
  auto sock = std::make_shared<Udp::socket>(io_);
  error_code ec;
  // A connected socket only hears from the upstream, and learns of ICMP port unreachable, so a
  // dead upstream fails at once instead of after the timeout.
  sock->open(to.protocol(), ec);
  if (!ec) sock->connect(to, ec);
  if (ec) co_return fail("udp " + ec.message());
  udp_open_.insert(sock.get());
  ScopeGuard untrack([&] { udp_open_.erase(sock.get()); });

  asio::steady_timer watchdog(io_, timeout_);
  watchdog.async_wait([sock](error_code e) {
    if (e) return;  // cancelled: the exchange ended first
    error_code ignored;
    sock->cancel(ignored);
  });

  auto [send_ec, sent] = co_await sock->async_send(asio::buffer(query), kTuple);
  (void)sent;
  if (send_ec) co_return fail("udp send: " + send_ec.message());
  Wire buf(65535);
  for (;;) {
    auto [recv_ec, n] = co_await sock->async_receive(asio::buffer(buf), kTuple);
    if (recv_ec) {
      if (watchdog.expiry() <= asio::steady_timer::clock_type::now())
        co_return fail("udp timed out");
      co_return fail("udp receive: " + recv_ec.message());
    }
    if (!is_response_to(std::span(buf.data(), n), id)) continue;  // stray or spoofed
    buf.resize(n);
    co_return buf;
  }
}

asio::awaitable<Result<Wire>> Forwarder::tcp_exchange(Tcp::endpoint to, const Wire& query,
                                                      std::uint16_t id) {
  if (query.size() > 65535) co_return fail("tcp: query too large");
  auto sock = std::make_shared<Tcp::socket>(io_);
  tcp_open_.insert(sock.get());
  ScopeGuard untrack([&] { tcp_open_.erase(sock.get()); });

  asio::steady_timer watchdog(io_, timeout_);
  watchdog.async_wait([sock](error_code e) {
    if (e) return;
    error_code ignored;
    sock->close(ignored);
  });
  auto deadline_passed = [&] { return watchdog.expiry() <= asio::steady_timer::clock_type::now(); };

  auto [conn_ec] = co_await sock->async_connect(to, kTuple);
  if (conn_ec)
    co_return fail(deadline_passed() ? "tcp timed out" : "tcp connect: " + conn_ec.message());
  std::array<std::uint8_t, 2> len{static_cast<std::uint8_t>(query.size() >> 8),
                                  static_cast<std::uint8_t>(query.size())};
  std::array<asio::const_buffer, 2> out{asio::buffer(len), asio::buffer(query)};
  auto [write_ec, written] = co_await asio::async_write(*sock, out, kTuple);
  (void)written;
  if (write_ec)
    co_return fail(deadline_passed() ? "tcp timed out" : "tcp write: " + write_ec.message());
  for (;;) {
    auto [len_ec, got] = co_await asio::async_read(*sock, asio::buffer(len), kTuple);
    (void)got;
    if (len_ec)
      co_return fail(deadline_passed() ? "tcp timed out" : "tcp read: " + len_ec.message());
    Wire answer(static_cast<std::size_t>(len[0] << 8 | len[1]));
    auto [body_ec, n] = co_await asio::async_read(*sock, asio::buffer(answer), kTuple);
    (void)n;
    if (body_ec)
      co_return fail(deadline_passed() ? "tcp timed out" : "tcp read: " + body_ec.message());
    if (is_response_to(answer, id)) co_return answer;
  }
}

}  // namespace stack::net::dns
