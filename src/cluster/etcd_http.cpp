// HttpConnection over Boost.Beast: each connection owns a private io_context and runs it for at
// most the caller's timeout per operation (run_for), so a synchronous call never blocks past
// its deadline and a stream read that times out stays pending for the next call.
#include "cluster/etcd_http.h"

#include <openssl/evp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <mutex>

// Result<void>'s counterpart of STACK_TRY_CTX.
#define CLUSTER_TRY_VOID(expr, ctx)                                   \
  do {                                                                \
    if (auto cluster_r_ = (expr); !cluster_r_)                        \
      return ::stack::fail(cluster_r_.error().wrap(ctx));             \
  } while (0)

namespace stack::cluster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct TlsConfig {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
};

Result<Endpoint> parse_endpoint(std::string_view url) {
  Endpoint ep;
  ep.url = std::string(url);
  std::string_view rest = url;
  if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else if (rest.rfind("https://", 0) == 0) {
    ep.tls = true;
    rest.remove_prefix(8);
  } else {
    return fail("etcd endpoint " + ep.url + ": expected http://HOST:PORT or https://HOST:PORT");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size())
    return fail("etcd endpoint " + ep.url + ": no port");
  ep.host = std::string(rest.substr(0, colon));
  ep.port = std::string(rest.substr(colon + 1));
  if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']')
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  for (char c : ep.port)
    if (c < '0' || c > '9') return fail("etcd endpoint " + ep.url + ": bad port");
  if (ep.host.find('/') != std::string::npos) return fail("etcd endpoint " + ep.url + ": a path");
  return ep;
}

Result<std::shared_ptr<TlsConfig>> load_tls(const TlsFiles& files) {
  auto cfg = std::make_shared<TlsConfig>();
  boost::system::error_code ec;
  cfg->ctx.set_verify_mode(asio::ssl::verify_peer, ec);
  if (files.ca.empty()) return fail("cluster TLS: --cluster-ca is required");
  if (cfg->ctx.load_verify_file(files.ca, ec); ec)
    return fail("cluster TLS: CA " + files.ca + ": " + ec.message());
  if (files.cert.empty() != files.key.empty())
    return fail("cluster TLS: --cluster-cert and --cluster-key go together");
  if (!files.cert.empty()) {
    if (cfg->ctx.use_certificate_chain_file(files.cert, ec); ec)
      return fail("cluster TLS: certificate " + files.cert + ": " + ec.message());
    if (cfg->ctx.use_private_key_file(files.key, asio::ssl::context::pem, ec); ec)
      return fail("cluster TLS: key " + files.key + ": " + ec.message());
  }
  return cfg;
}

namespace {

// A watch may wait for hours on a member that then vanishes without a FIN or RST (its host
// powered off, the network cut): TCP keepalive probes end such a connection within
// ~5 + 3 x 2 s, the wait returns an error and the caller reconnects to another member. Only a
// dead peer is found so: a live idle one answers the probes.
void keep_alive(int fd) {
  int on = 1, idle = 5, interval = 2, count = 3;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

std::string describe(const beast::error_code& ec) {
  return ec.message();
}

// The socket, plain or wrapped in TLS; both are driven by the same template below.
template <class Stream>
class BeastConnection final : public HttpConnection {
 public:
  template <class... Args>
  BeastConnection(Endpoint ep, std::unique_ptr<asio::io_context> ioc,
                  std::shared_ptr<TlsConfig> tls, Args&&... args)
      : ep_(std::move(ep)), ioc_(std::move(ioc)), tls_(std::move(tls)),
        stream_(std::forward<Args>(args)...) {}

  ~BeastConnection() override { close(); }

  const Endpoint& endpoint() const override { return ep_; }

  void interrupt() override {
    std::lock_guard lock(fd_mu_);
    // shutdown(2) wakes a read blocked on the socket with end-of-file (the pending async read
    // completes with an error), whichever thread runs the loop.
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }

  bool reusable() const override { return !broken_ && !stream_parser_; }

  Result<void> connect(std::chrono::milliseconds timeout) {
    tcp::resolver resolver(*ioc_);
    beast::error_code ec;
    auto results = resolver.resolve(ep_.host, ep_.port, ec);
    if (ec) return fail("resolve " + ep_.host + ": " + describe(ec));
    bool done = false;
    asio::async_connect(lowest(), results, [&](beast::error_code e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    if (auto r = run(done, timeout); !r) return fail(r.error().wrap("connect"));
    if (ec) return fail("connect: " + describe(ec));
    {
      std::lock_guard lock(fd_mu_);
      fd_ = lowest().native_handle();
    }
    lowest().set_option(tcp::no_delay(true), ec);
    keep_alive(lowest().native_handle());
    if constexpr (kTls) {
      // SNI for a host name (an IP literal is not one); the member's certificate must carry
      // the name or IP address we dialled.
      beast::error_code not_ip;
      asio::ip::make_address(ep_.host, not_ip);
      if (not_ip) SSL_set_tlsext_host_name(stream_.native_handle(), ep_.host.c_str());
      stream_.set_verify_callback(asio::ssl::host_name_verification(ep_.host));
      done = false;
      stream_.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) {
        ec = e;
        done = true;
      });
      if (auto r = run(done, timeout); !r) return fail(r.error().wrap("TLS handshake"));
      if (ec) return fail("TLS handshake: " + describe(ec));
    }
    return {};
  }

  Result<HttpResponse> post(const std::string& target, const std::string& body,
                            std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    CLUSTER_TRY_VOID(send(target, body, timeout), "POST " + target);
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    beast::error_code ec;
    bool done = false;
    http::async_read(stream_, buffer_, parser, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    if (auto r = run(done, left(deadline)); !r) return fail(r.error().wrap("POST " + target));
    if (ec) {
      broken_ = true;
      return fail("POST " + target + ": read: " + describe(ec));
    }
    if (!parser.get().keep_alive()) broken_ = true;
    return HttpResponse{parser.get().result_int(), std::move(parser.get().body())};
  }

  Result<void> open_stream(const std::string& target, const std::string& body,
                           std::chrono::milliseconds timeout) override {
    CLUSTER_TRY_VOID(send(target, body, timeout), "POST " + target);
    stream_parser_.emplace();
    stream_parser_->body_limit(boost::none);
    beast::error_code ec;
    bool done = false;
    http::async_read_header(stream_, buffer_, *stream_parser_,
                            [&](beast::error_code e, std::size_t) {
                              ec = e;
                              done = true;
                            });
    if (auto r = run(done, timeout); !r) return fail(r.error().wrap("POST " + target));
    if (ec) return fail("POST " + target + ": read: " + describe(ec));
    if (stream_parser_->get().result_int() != 200) {
      // An error answer is short: read it whole for its message.
      done = false;
      http::async_read(stream_, buffer_, *stream_parser_, [&](beast::error_code e, std::size_t) {
        ec = e;
        done = true;
      });
      (void)run(done, timeout);
      return fail("POST " + target + ": HTTP " +
                  std::to_string(stream_parser_->get().result_int()) + " " +
                  stream_parser_->get().body());
    }
    return {};
  }

  Result<std::optional<std::string>> next_message(std::chrono::milliseconds timeout) override {
    if (!stream_parser_) return fail("no stream open");
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto& body = stream_parser_->get().body();
      if (auto nl = body.find('\n'); nl != std::string::npos) {
        std::string line = body.substr(0, nl);
        body.erase(0, nl + 1);
        if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
        return std::optional<std::string>(std::move(line));
      }
      if (stream_parser_->is_done() || stream_failed_) {
        stream_failed_ = true;
        return fail("stream from " + ep_.url + " ended" +
                    (stream_error_.empty() ? "" : ": " + stream_error_));
      }
      if (!read_pending_) {
        read_pending_ = true;
        read_done_ = false;
        http::async_read_some(stream_, buffer_, *stream_parser_,
                              [this](beast::error_code e, std::size_t) {
                                read_pending_ = false;
                                read_done_ = true;
                                if (e) {
                                  stream_failed_ = true;
                                  stream_error_ = describe(e);
                                }
                              });
      }
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return std::optional<std::string>();
      ioc_->restart();
      ioc_->run_for(deadline - now);
      if (!read_done_ && std::chrono::steady_clock::now() >= deadline)
        return std::optional<std::string>();
    }
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

  tcp::socket& lowest() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  static std::chrono::milliseconds left(std::chrono::steady_clock::time_point deadline) {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return std::max(d, std::chrono::milliseconds(1));
  }

  // Runs the private loop until DONE or TIMEOUT; on timeout the socket is closed (the
  // operation cannot be left half done on a connection that others will reuse).
  Result<void> run(bool& done, std::chrono::milliseconds timeout) {
    ioc_->restart();
    ioc_->run_for(timeout);
    if (done) return {};
    broken_ = true;
    beast::error_code ignored;
    forget_fd();
    lowest().close(ignored);
    ioc_->restart();
    ioc_->run();  // the cancelled handler runs, touching nothing after this frame
    return fail("timed out after " + std::to_string(timeout.count()) + " ms");
  }

  Result<void> send(const std::string& target, const std::string& body,
                    std::chrono::milliseconds timeout) {
    if (broken_) return fail("connection to " + ep_.url + " is closed");
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, ep_.host);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    beast::error_code ec;
    bool done = false;
    http::async_write(stream_, req, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    CLUSTER_TRY_VOID(run(done, timeout), "write");
    if (ec) {
      broken_ = true;
      return fail("write: " + describe(ec));
    }
    return {};
  }

  // Before the socket is closed: interrupt() must not shut down a number reused meanwhile.
  void forget_fd() {
    std::lock_guard lock(fd_mu_);
    fd_ = -1;
  }

  void close() {
    beast::error_code ignored;
    forget_fd();
    lowest().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close(ignored);
    if (read_pending_) {
      ioc_->restart();
      ioc_->run();
    }
  }

  Endpoint ep_;
  std::unique_ptr<asio::io_context> ioc_;
  std::shared_ptr<TlsConfig> tls_;  // outlives the SSL stream made from its context
  Stream stream_;
  beast::flat_buffer buffer_;
  bool broken_ = false;
  std::optional<http::response_parser<http::string_body>> stream_parser_;
  bool read_pending_ = false;
  bool read_done_ = false;
  bool stream_failed_ = false;
  std::string stream_error_;
  std::mutex fd_mu_;  // interrupt() against close
  int fd_ = -1;

};

}  // namespace

Result<std::unique_ptr<HttpConnection>> HttpConnection::open(const Endpoint& ep,
                                                             std::shared_ptr<TlsConfig> tls,
                                                             std::chrono::milliseconds timeout) {
  auto ioc = std::make_unique<asio::io_context>(1);
  if (ep.tls) {
    if (!tls) return fail("etcd endpoint " + ep.url + ": https needs --cluster-ca");
    auto& ctx = tls->ctx;
    auto* ioc_raw = ioc.get();
    auto conn = std::make_unique<BeastConnection<asio::ssl::stream<tcp::socket>>>(
        ep, std::move(ioc), tls, *ioc_raw, ctx);
    CLUSTER_TRY_VOID(conn->connect(timeout), "etcd " + ep.url);
    return std::unique_ptr<HttpConnection>(std::move(conn));
  }
  auto* ioc_raw = ioc.get();
  auto conn = std::make_unique<BeastConnection<tcp::socket>>(ep, std::move(ioc), nullptr,
                                                             *ioc_raw);
  CLUSTER_TRY_VOID(conn->connect(timeout), "etcd " + ep.url);
  return std::unique_ptr<HttpConnection>(std::move(conn));
}

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return fail("base64: length " + std::to_string(in.size()));
  std::string out(3 * in.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return fail("base64: invalid text");
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') pad++;
  if (in.size() > 1 && in[in.size() - 2] == '=') pad++;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace stack::cluster
