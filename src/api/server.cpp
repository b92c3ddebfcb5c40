// The API server on the daemon's loop: Boost.Beast HTTP/1.1 over a Unix socket. Handlers
// translate JSON to daemon calls and back; streams (progress, logs, events) are
// newline-delimited JSON written as they happen, ended by closing the connection.
#include "api/server.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <nlohmann/json.hpp>

#include "api/routes.h"
#include "common/log.h"
#include "reconciler/async.h"
#include "reconciler/daemon.h"

#include <spdlog/spdlog.h>

namespace stack::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::local::stream_protocol;
using nlohmann::json;
using reconciler::awaitable;
using reconciler::no_throw;
using reconciler::Notifier;

// A response body written line by line while the operation runs. Shared by the session and
// its writer and peer-watch coroutines, which may resume after the session has ended.
class Stream {
 public:
  explicit Stream(stream_protocol::socket sock)
      : sock_(std::move(sock)), wake_(sock_.get_executor()) {}
  stream_protocol::socket& socket() { return sock_; }

  awaitable<bool> open() {
    http::response<http::empty_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/x-ndjson");
    res.set(http::field::server, "stack/" STACK_VERSION);
    res.keep_alive(false);  // the body ends when the connection closes
    http::response_serializer<http::empty_body> sr{res};
    auto [ec, n] = co_await http::async_write_header(sock_, sr, no_throw);
    co_return !ec;
  }
  // Queues a line; the writer sends it without blocking the caller.
  void push(const json& line) {
    lines_.push_back(line.dump() + "\n");
    wake_.notify();
  }
  void finish() {
    finished_ = true;
    wake_.notify();
  }
  [[nodiscard]] bool broken() const { return broken_; }
  // Writes queued lines until finish() and the queue is empty, or the peer is gone.
  awaitable<void> writer() {
    for (;;) {
      if (lines_.empty()) {
        if (finished_ || broken_) break;
        co_await wake_.wait();
        continue;
      }
      std::string line = std::move(lines_.front());
      lines_.pop_front();
      auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(line), no_throw);
      if (ec) {
        broken_ = true;
        break;
      }
    }
    written_ = true;
    done_notify();
  }
  awaitable<void> wait_written() {
    while (!written_) co_await wake_.wait();
  }
  // Completes when the peer closes its end (or sends anything: it should not).
  awaitable<void> wait_peer_closed() {
    co_await sock_.async_wait(stream_protocol::socket::wait_read, no_throw);
    broken_ = true;
    wake_.notify();
  }

 private:
  void done_notify() { wake_.notify(); }
  stream_protocol::socket sock_;
  Notifier wake_;
  std::deque<std::string> lines_;
  bool finished_ = false, broken_ = false, written_ = false;
};

struct Server::Impl {
  asio::io_context& io;
  reconciler::Daemon& daemon;
  std::filesystem::path socket_path;
  std::unique_ptr<stream_protocol::acceptor> acceptor;

  awaitable<void> accept_loop();
  awaitable<void> session(stream_protocol::socket sock);
};

Server::Server(asio::io_context& io, reconciler::Daemon& daemon, std::filesystem::path socket)
    : impl_(std::make_unique<Impl>(Impl{io, daemon, std::move(socket), nullptr})) {}

Server::~Server() { close(); }

Result<void> Server::listen() {
  auto& path = impl_->socket_path;
  std::error_code fec;
  std::filesystem::create_directories(path.parent_path(), fec);
  ::unlink(path.c_str());  // stale from a daemon that was killed; we hold the daemon lock
  boost::system::error_code ec;
  auto acc = std::make_unique<stream_protocol::acceptor>(impl_->io);
  acc->open(stream_protocol(), ec);
  if (!ec) acc->bind(stream_protocol::endpoint(path.string()), ec);
  if (!ec) acc->listen(64, ec);
  if (ec) return fail("listen on " + path.string() + ": " + ec.message());
  // Root and the `stack` group only (DESIGN.md): whoever can talk to this can run anything.
  ::chmod(path.c_str(), 0660);
  if (struct group* g = ::getgrnam("stack")) (void)::chown(path.c_str(), 0, g->gr_gid);
  impl_->acceptor = std::move(acc);
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  return {};
}

void Server::close() {
  if (impl_ && impl_->acceptor) {
    boost::system::error_code ec;
    impl_->acceptor->close(ec);
    ::unlink(impl_->socket_path.c_str());
    impl_->acceptor.reset();
  }
}

awaitable<void> Server::Impl::accept_loop() {
  while (acceptor && acceptor->is_open()) {
    auto [ec, sock] = co_await acceptor->async_accept(no_throw);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    asio::co_spawn(io, session(std::move(sock)), asio::detached);
  }
}

namespace {

awaitable<void> send_json(stream_protocol::socket& sock, http::status status, const json& body) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::server, "stack/" STACK_VERSION);
  res.keep_alive(false);
  res.body() = body.dump() + "\n";
  res.prepare_payload();
  co_await http::async_write(sock, res, no_throw);
}

}  // namespace

awaitable<void> Server::Impl::session(stream_protocol::socket sock) {
  boost::beast::flat_buffer buf;
  http::request_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  auto [ec, n] = co_await http::async_read(sock, buf, parser, no_throw);
  if (ec) co_return;
  const auto& req = parser.get();
  Request r{std::string(req.method_string()), std::string(req.target()), req.body()};
  log::get("api")->debug("request {} {}", r.method, r.target);
  Reply reply = co_await route(daemon, r);
  boost::system::error_code ignored;
  if (!reply.stream) {
    co_await send_json(sock, static_cast<http::status>(reply.status), reply.body);
    sock.shutdown(stream_protocol::socket::shutdown_both, ignored);
    co_return;
  }
  auto stream = std::make_shared<Stream>(std::move(sock));
  if (!co_await stream->open()) co_return;
  asio::co_spawn(io, [stream]() { return stream->writer(); }, asio::detached);
  asio::co_spawn(io, [stream]() { return stream->wait_peer_closed(); }, asio::detached);
  co_await reply.stream(
      [stream](const json& line) {
        if (stream->broken()) return false;
        stream->push(line);
        return true;
      },
      [stream] { return stream->broken(); });
  stream->finish();
  co_await stream->wait_written();
  stream->socket().shutdown(stream_protocol::socket::shutdown_both, ignored);
  stream->socket().close(ignored);
}

}  // namespace stack::api
