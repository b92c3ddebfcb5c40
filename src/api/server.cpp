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
  void set_broken() {
    broken_ = true;
    wake_.notify();
  }
  [[nodiscard]] bool finished() const { return finished_; }
  [[nodiscard]] bool written() const { return written_; }
  void set_written() {
    written_ = true;
    wake_.notify();
  }
  std::deque<std::string>& lines() { return lines_; }
  Notifier& wake() { return wake_; }

 private:
  stream_protocol::socket sock_;
  Notifier wake_;
  std::deque<std::string> lines_;
  bool finished_ = false, broken_ = false, written_ = false;
};

// The coroutines sharing a Stream take it by value: their frames keep it alive.

// Writes queued lines until finish() and the queue is empty, or the peer is gone.
awaitable<void> write_lines(std::shared_ptr<Stream> s) {
  for (;;) {
    if (s->lines().empty()) {
      if (s->finished() || s->broken()) break;
      co_await s->wake().wait();
      continue;
    }
    std::string line = std::move(s->lines().front());
    s->lines().pop_front();
    auto [ec, n] = co_await asio::async_write(s->socket(), asio::buffer(line), no_throw);
    if (ec) {
      s->set_broken();
      break;
    }
  }
  s->set_written();
}

// Completes when the peer closes its end (or sends anything: it should not).
awaitable<void> watch_peer(std::shared_ptr<Stream> s) {
  co_await s->socket().async_wait(stream_protocol::socket::wait_read, no_throw);
  s->set_broken();
}

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
  asio::co_spawn(io, write_lines(stream), asio::detached);
  asio::co_spawn(io, watch_peer(stream), asio::detached);
  // Named, not temporaries of the co_await expression: g++ 12 destroys such temporaries twice
  // (here: one shared_ptr release too many).
  Emit emit = [stream](const json& line) {
    if (stream->broken()) return false;
    stream->push(line);
    return true;
  };
  Cancelled cancelled = [stream] { return stream->broken(); };
  auto operation = reply.stream(emit, cancelled);
  co_await std::move(operation);
  stream->finish();
  while (!stream->written()) co_await stream->wake().wait();
  stream->socket().shutdown(stream_protocol::socket::shutdown_both, ignored);
  stream->socket().close(ignored);
}

}  // namespace stack::api
