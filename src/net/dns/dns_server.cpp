// The DNS server's sockets and loops: a UDP receive loop, a TCP acceptor with one coroutine per
// connection (2-byte length framing, several queries, idle timeout), and the per-query decision
// (local answer, error, or forward). Asio stays in this file and forwarder.cpp.

#include "net/dns/dns_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <unordered_set>

#include "common/log.h"
#include "common/scope_guard.h"
#include "net/dns/dns_message.h"
#include "net/dns/forwarder.h"

namespace stack::net::dns {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kTcpMaxMessage = 65535;

struct DnsServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, Records& records, DnsServerOptions options)
      : io_(io),
        records_(records),
        opts_(std::move(options)),
        log_(log::get("dns")),
        udp_(io),
        acceptor_(io),
        forwarder_(io, opts_.upstream_timeout) {}

  // What to do with one message.
  struct Outcome {
    enum class Kind { kDrop, kReply, kForward } kind = Kind::kDrop;
    Wire reply;
    std::optional<Query> query;
    std::vector<Upstream> upstreams;  // for kForward
  };

  Result<void> start();
  void stop();
  Outcome decide(std::span<const std::uint8_t> wire, const asio::ip::address& client, bool tcp);
  asio::awaitable<Wire> forward(Query query, std::vector<Upstream> upstreams, Wire wire, bool tcp,
                                std::size_t max_size);
  static asio::awaitable<void> udp_loop(std::shared_ptr<Impl> self);
  static asio::awaitable<void> forward_udp(std::shared_ptr<Impl> self, Query query,
                                           std::vector<Upstream> upstreams, Wire wire,
                                           udp::endpoint client);
  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self);
  static asio::awaitable<void> tcp_session(std::shared_ptr<Impl> self,
                                           std::shared_ptr<tcp::socket> sock);
  void spawn(asio::awaitable<void> work);
  bool debug_on() const { return log_->should_log(spdlog::level::debug); }
  std::string where() const { return opts_.address + ":" + std::to_string(port_); }

  asio::io_context& io_;
  Records& records_;
  DnsServerOptions opts_;
  std::shared_ptr<spdlog::logger> log_;
  udp::socket udp_;
  tcp::acceptor acceptor_;
  Forwarder forwarder_;
  std::uint16_t port_ = 0;
  bool running_ = false;
  bool stopped_ = false;
  std::size_t forwards_in_flight_ = 0;
  std::unordered_set<tcp::socket*> sessions_;
  DnsServerStats stats_;
};

void DnsServer::Impl::spawn(asio::awaitable<void> work) {
  // Loop-level coroutines: an exception escaping one (allocation failure) is logged, not lost.
  asio::co_spawn(io_, std::move(work), [log = log_](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log->error("dns coroutine failed error={}", ex.what());
    }
  });
}

Result<void> DnsServer::Impl::start() {
  if (running_ || stopped_) return fail("dns " + opts_.address + ": already started");
  error_code ec;
  // IPv4: the network's gateway; IPv6 on an IPv6-only network (its bridge's address, put there
  // without DAD so that it can be bound at once).
  auto address = asio::ip::make_address(opts_.address, ec);
  if (ec) return fail("dns " + opts_.address + ": not an IP address");

  // Port 0 asks the kernel for a UDP port, then takes the same one for TCP, which may be in use:
  // a few tries.
  const int tries = opts_.port == 0 ? 10 : 1;
  std::string last_error;
  for (int i = 0; i < tries; ++i) {
    udp::socket u(io_);
    tcp::acceptor a(io_);
    std::uint16_t port = opts_.port;
    u.open(address.is_v6() ? udp::v6() : udp::v4(), ec);
    if (!ec) u.bind(udp::endpoint(address, port), ec);
    if (ec) {
      last_error = "bind udp: " + ec.message();
      continue;
    }
    port = u.local_endpoint(ec).port();
    a.open(address.is_v6() ? tcp::v6() : tcp::v4(), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) a.bind(tcp::endpoint(address, port), ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      last_error = "bind tcp: " + ec.message();
      continue;
    }
    u.non_blocking(true, ec);  // replies are sent synchronously; a full buffer drops, like UDP
    udp_ = std::move(u);
    acceptor_ = std::move(a);
    port_ = port;
    running_ = true;
    spawn(udp_loop(shared_from_this()));
    spawn(accept_loop(shared_from_this()));
    log_->info("dns server listening address={} upstreams={}", where(), opts_.upstreams.size());
    return {};
  }
  return fail("dns " + opts_.address + ":" + std::to_string(opts_.port) + ": " + last_error);
}

void DnsServer::Impl::stop() {
  if (stopped_) return;
  stopped_ = true;
  error_code ignored;
  udp_.close(ignored);
  acceptor_.close(ignored);
  for (auto* s : sessions_) s->close(ignored);
  forwarder_.stop();
  if (running_) log_->debug("dns server stopped address={}", where());
}

DnsServer::Impl::Outcome DnsServer::Impl::decide(std::span<const std::uint8_t> wire,
                                                 const asio::ip::address& client, bool tcp) {
  Outcome out;
  Classified c = classify_message(wire);
  if (c.kind == Classified::Kind::kDrop) {
    ++stats_.dropped;
    if (debug_on()) log_->debug("drop client={} bytes={}", client.to_string(), wire.size());
    return out;
  }
  if (c.kind == Classified::Kind::kError) {
    ++stats_.errors;
    if (debug_on())
      log_->debug("error client={} bytes={} rcode={}", client.to_string(), wire.size(),
                  rcode_name(wire_rcode(c.reply)));
    out.kind = Outcome::Kind::kReply;
    out.reply = std::move(c.reply);
    return out;
  }
  ++stats_.queries;
  Query& q = *c.query;
  const std::size_t max_size = tcp ? kTcpMaxMessage : q.max_udp_size();
  Ipv4 from{client.is_v4() ? client.to_v4().to_uint() : 0};
  if (client.is_v6()) {
    Ipv6 six{client.to_v6().to_bytes()};
    if (auto key = records_.client_of6(six)) from = *key;
  }
  if (q.qclass() == kClassIn || q.qclass() == kClassAny) {
    std::optional<std::vector<Ipv4>> addresses;
    if (q.qtype() == kTypeAaaa && records_.contains(from, q.name())) {
      // Empty (NOERROR, no data) for a name whose containers have no IPv6.
      auto six = records_.lookup_aaaa(from, q.name());
      ++stats_.local;
      out.kind = Outcome::Kind::kReply;
      out.reply = q.reply_aaaa(Rcode::kNoError, six, max_size, opts_.ttl);
      return out;
    }
    if (q.qtype() == kTypeA || q.qtype() == kTypeAny) {
      addresses = records_.lookup_a(from, q.name());
    } else if (records_.contains(from, q.name())) {
      addresses.emplace();  // a registered name: NOERROR, no data (clients fall back to A)
    }
    if (addresses) {
      ++stats_.local;
      if (debug_on())
        log_->debug("answer client={} name={} type={} answers={} tcp={}", client.to_string(),
                    q.name(), q.qtype(), addresses->size(), tcp);
      out.kind = Outcome::Kind::kReply;
      out.reply = q.reply(Rcode::kNoError, *addresses, max_size, opts_.ttl);
      return out;
    }
  }
  // The asking container's own servers (its service's `dns`) replace the network's.
  std::vector<Upstream> upstreams = records_.upstreams_of(from);
  if (upstreams.empty()) upstreams = opts_.upstreams;
  if (upstreams.empty()) {
    ++stats_.servfail;
    if (debug_on())
      log_->debug("servfail client={} name={} type={} reason=no-upstreams", client.to_string(),
                  q.name(), q.qtype());
    out.kind = Outcome::Kind::kReply;
    out.reply = q.reply(Rcode::kServFail, {}, max_size);
    return out;
  }
  out.kind = Outcome::Kind::kForward;
  out.query = std::move(c.query);
  out.upstreams = std::move(upstreams);
  return out;
}

asio::awaitable<Wire> DnsServer::Impl::forward(Query query, std::vector<Upstream> upstreams,
                                               Wire wire, bool tcp, std::size_t max_size) {
  auto answer = co_await forwarder_.forward(std::move(upstreams), std::move(wire), tcp, max_size);
  if (answer) {
    ++stats_.forwarded;
    if (debug_on())
      log_->debug("forwarded name={} type={} rcode={} bytes={}", query.name(), query.qtype(),
                  rcode_name(wire_rcode(*answer)), answer->size());
    co_return std::move(*answer);
  }
  ++stats_.servfail;
  if (debug_on())
    log_->debug("servfail name={} type={} reason=upstreams-failed", query.name(), query.qtype());
  co_return query.reply(Rcode::kServFail, {}, max_size);
}

asio::awaitable<void> DnsServer::Impl::udp_loop(std::shared_ptr<Impl> self) {
  std::vector<std::uint8_t> buf(65535);
  for (;;) {
    udp::endpoint from;
    auto [ec, n] = co_await self->udp_.async_receive_from(asio::buffer(buf), from, kTuple);
    if (self->stopped_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      self->log_->debug("udp receive failed address={} error={}", self->where(), ec.message());
      continue;
    }
    Outcome out = self->decide(std::span(buf.data(), n), from.address(), false);
    if (out.kind == Outcome::Kind::kReply) {
      error_code send_ec;
      self->udp_.send_to(asio::buffer(out.reply), from, 0, send_ec);
    } else if (out.kind == Outcome::Kind::kForward) {
      if (self->forwards_in_flight_ >= self->opts_.max_forwards_in_flight) {
        ++self->stats_.dropped;  // overloaded: the client will retry
        continue;
      }
      Wire wire(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
      ++self->forwards_in_flight_;  // counted here, not when the coroutine first runs
      self->spawn(forward_udp(self, std::move(*out.query), std::move(out.upstreams),
                              std::move(wire), from));
    }
  }
}

asio::awaitable<void> DnsServer::Impl::forward_udp(std::shared_ptr<Impl> self, Query query,
                                                   std::vector<Upstream> upstreams, Wire wire,
                                                   udp::endpoint client) {
  ScopeGuard done([&] { --self->forwards_in_flight_; });
  std::size_t max_size = query.max_udp_size();
  Wire reply = co_await self->forward(std::move(query), std::move(upstreams), std::move(wire),
                                      false, max_size);
  if (self->stopped_) co_return;
  error_code ec;
  self->udp_.send_to(asio::buffer(reply), client, 0, ec);
}

asio::awaitable<void> DnsServer::Impl::accept_loop(std::shared_ptr<Impl> self) {
  for (;;) {
    auto sock = std::make_shared<tcp::socket>(self->io_);
    auto [ec] = co_await self->acceptor_.async_accept(*sock, kTuple);
    if (self->stopped_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors, say: back off a little rather than spin.
      self->log_->warn("dns accept failed address={} error={}", self->where(), ec.message());
      asio::steady_timer pause(self->io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    if (self->sessions_.size() >= self->opts_.max_tcp_connections) {
      ++self->stats_.dropped;
      continue;  // closed as SOCK goes
    }
    self->spawn(tcp_session(self, std::move(sock)));
  }
}

asio::awaitable<void> DnsServer::Impl::tcp_session(std::shared_ptr<Impl> self,
                                                   std::shared_ptr<tcp::socket> sock) {
  self->sessions_.insert(sock.get());
  ScopeGuard untrack([&] { self->sessions_.erase(sock.get()); });
  error_code ec;
  const auto peer = sock->remote_endpoint(ec).address();
  if (ec) co_return;

  // The watchdog closes the connection when the client stays silent (or does not read) for the
  // idle timeout; it holds the socket so that a late firing never touches a freed one.
  asio::steady_timer idle(self->io_);
  auto arm = [&] {
    idle.expires_after(self->opts_.tcp_idle_timeout);
    idle.async_wait([sock](error_code e) {
      if (e) return;
      error_code ignored;
      sock->close(ignored);
    });
  };
  std::array<std::uint8_t, 2> len{};
  Wire message;
  while (!self->stopped_) {
    arm();
    auto [len_ec, got] = co_await asio::async_read(*sock, asio::buffer(len), kTuple);
    (void)got;
    if (len_ec || self->stopped_) break;
    message.resize(static_cast<std::size_t>(len[0] << 8 | len[1]));
    if (message.empty()) break;
    auto [body_ec, n] = co_await asio::async_read(*sock, asio::buffer(message), kTuple);
    (void)n;
    if (body_ec || self->stopped_) break;
    idle.cancel();  // forwarding is bounded by the upstream timeouts, not the idle timeout

    Outcome out = self->decide(message, peer, true);
    Wire reply;
    if (out.kind == Outcome::Kind::kReply) {
      reply = std::move(out.reply);
    } else if (out.kind == Outcome::Kind::kForward) {
      reply = co_await self->forward(std::move(*out.query), std::move(out.upstreams), message, true,
                                     kTcpMaxMessage);
      if (self->stopped_) break;
    } else {
      continue;
    }
    arm();
    std::array<std::uint8_t, 2> out_len{static_cast<std::uint8_t>(reply.size() >> 8),
                                        static_cast<std::uint8_t>(reply.size())};
    std::array<asio::const_buffer, 2> bufs{asio::buffer(out_len), asio::buffer(reply)};
    auto [write_ec, written] = co_await asio::async_write(*sock, bufs, kTuple);
    (void)written;
    if (write_ec) break;
  }
  idle.cancel();
  sock->close(ec);
}

DnsServer::DnsServer(asio::io_context& io, Records& records, DnsServerOptions options)
    : impl_(std::make_shared<Impl>(io, records, std::move(options))) {}

DnsServer::~DnsServer() { impl_->stop(); }

Result<void> DnsServer::start() { return impl_->start(); }
void DnsServer::stop() { impl_->stop(); }
void DnsServer::set_upstreams(std::vector<Upstream> upstreams) {
  impl_->opts_.upstreams = std::move(upstreams);
}
std::uint16_t DnsServer::port() const { return impl_->port_; }
const DnsServerStats& DnsServer::stats() const { return impl_->stats_; }

}  // namespace stack::net::dns
