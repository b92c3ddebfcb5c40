// The API server on the daemon's loop: Boost.Beast HTTP/1.1 over a Unix socket. Handlers
// translate JSON to daemon calls and back; streams (progress, logs, events) are
// newline-delimited JSON written as they happen, ended by closing the connection.
#include "api/server.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <nlohmann/json.hpp>

#include "api/exec_session.h"
#include "api/request.h"
#include "api/routes.h"
#include "common/log.h"
#include "common/scope_guard.h"
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

// Bounds of a connection besides the request's own (request.h; README, "The API").
constexpr std::chrono::seconds kWriteTimeout{30};  // each write of a reply must progress
constexpr size_t kMaxQueuedBytes = 8 << 20;        // a stream the client does not read
constexpr size_t kMaxConnections = 256;            // file descriptors are the daemon's too

// Closes a socket still open when D has passed, unless disarmed first: the bound on a read or
// a write the peer may stall. The timer's handler may already be queued when the watchdog is
// disarmed; it then finds no socket to close.
class Watchdog {
 public:
  Watchdog(stream_protocol::socket& sock, std::chrono::steady_clock::duration d)
      : state_(std::make_shared<State>(State{&sock, false})), timer_(sock.get_executor(), d) {
    timer_.async_wait([s = state_](boost::system::error_code ec) {
      if (ec || s->sock == nullptr) return;
      s->fired = true;
      boost::system::error_code ignored;
      s->sock->close(ignored);
    });
  }
  ~Watchdog() { disarm(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  void disarm() {
    state_->sock = nullptr;
    timer_.cancel();
  }
  [[nodiscard]] bool fired() const { return state_->fired; }

 private:
  struct State {
    stream_protocol::socket* sock;
    bool fired;
  };
  std::shared_ptr<State> state_;
  asio::steady_timer timer_;
};

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
  // Queues a line; the writer sends it without blocking the caller. A client that lets
  // kMaxQueuedBytes pile up is not reading: it is cut off rather than fill the daemon's memory.
  void push(const json& line) {
    if (broken_) return;
    std::string text = line.dump() + "\n";
    queued_ += text.size();
    if (queued_ > kMaxQueuedBytes) {
      log::get("api")->warn("stream client cut off: not reading queued_bytes={}", queued_);
      cut_off();
      return;
    }
    lines_.push_back(std::move(text));
    wake_.notify();
  }
  void sent(size_t bytes) { queued_ -= bytes; }
  // Closing the socket also ends a write the client stalls.
  void cut_off() {
    boost::system::error_code ignored;
    sock_.close(ignored);
    set_broken();
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
  size_t queued_ = 0;  // bytes in lines_
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
    s->sent(line.size());
    Watchdog dog(s->socket(), kWriteTimeout);
    auto [ec, n] = co_await asio::async_write(s->socket(), asio::buffer(line), no_throw);
    dog.disarm();
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
  // Live sessions; shared with them, as a session's frame may outlive the server at shutdown.
  std::shared_ptr<size_t> sessions = std::make_shared<size_t>(0);

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
  // Bound under a temporary name, given its mode and group, then renamed into place: the
  // socket is never reachable at its path with the mode bind(2) and the umask gave it.
  std::string tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  boost::system::error_code ec;
  auto acc = std::make_unique<stream_protocol::acceptor>(impl_->io);
  acc->open(stream_protocol(), ec);
  if (!ec) acc->bind(stream_protocol::endpoint(tmp), ec);
  if (!ec) acc->listen(128, ec);
  if (ec) return fail("listen on " + path.string() + ": " + ec.message());
  // Root and the `stack` group only (DESIGN.md): whoever can talk to this can run anything.
  gid_t gid = 0;
  if (struct group* g = ::getgrnam("stack")) gid = g->gr_gid;
  if (::chmod(tmp.c_str(), 0660) != 0 || ::chown(tmp.c_str(), 0, gid) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0) {  // replaces one a killed daemon left
    int err = errno;
    ::unlink(tmp.c_str());
    return fail_errno("listen on " + path.string() + ": set up the socket", err);
  }
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

// ALLOW: the Allow header of a 405, else empty. (No default argument: a temporary in a
// co_await expression is destroyed twice by g++ 12, so callers pass named values only.)
awaitable<void> send_json(stream_protocol::socket& sock, http::status status, const json& body,
                          const std::string& allow) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::server, "stack/" STACK_VERSION);
  if (!allow.empty()) res.set(http::field::allow, allow);
  res.keep_alive(false);
  res.body() = body.dump() + "\n";
  res.prepare_payload();
  co_await http::async_write(sock, res, no_throw);
}

// The request as it arrives, within kRequestTimeout; a request the reader refuses (malformed,
// over a limit) is answered with its status and a JSON error, under the same deadline. Empty
// when there is nothing to route: answered already, timed out, or the client left.
awaitable<std::optional<Request>> read_request(stream_protocol::socket& sock) {
  Watchdog dog(sock, kRequestTimeout);
  RequestReader reader;
  std::vector<char> buf(8192);  // not a char array: g++ 12 cannot put one in a coroutine frame
  while (reader.state() == RequestReader::State::need_more) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), no_throw);
    if (ec == asio::error::eof)
      reader.finish();
    else if (ec)
      co_return std::nullopt;  // the deadline closed it, or the client reset it
    else
      reader.feed(std::string_view(buf.data(), n));
  }
  if (reader.state() == RequestReader::State::failed) {
    log::get("api")->debug("refused request status={} error=\"{}\"", reader.error().status,
                           reader.error().message);
    // Named: an initializer list inside a co_await expression trips g++ 12.
    const json body = {{"error", reader.error().message}};
    const std::string no_allow;
    co_await send_json(sock, static_cast<http::status>(reader.error().status), body, no_allow);
    co_return std::nullopt;
  }
  co_return reader.take();
}

std::string allow_for(const std::string& target) {
  auto t = parse_target(target);
  return t ? allow_header(allowed_methods(t->path)) : std::string();
}

}  // namespace

awaitable<void> Server::Impl::session(stream_protocol::socket sock) {
  boost::system::error_code ignored;
  std::shared_ptr<size_t> count = sessions;
  if (*count >= kMaxConnections) {
    Watchdog dog(sock, kRequestTimeout);
    const json body = {{"error", "too many connections to the API (" +
                                     std::to_string(kMaxConnections) + ")"}};
    const std::string no_allow;
    co_await send_json(sock, http::status::service_unavailable, body, no_allow);
    sock.shutdown(stream_protocol::socket::shutdown_both, ignored);
    co_return;
  }
  ++*count;
  ScopeGuard release([count] { --*count; });
  std::optional<Request> request = co_await read_request(sock);
  if (!request) {
    sock.shutdown(stream_protocol::socket::shutdown_both, ignored);
    co_return;
  }
  const Request& r = *request;
  log::get("api")->debug("request {} {}", r.method, r.target);
  Reply reply = co_await route(daemon, r);
  if (reply.exec) {  // the connection becomes the command's stream
    std::string after = std::move(request->after);
    co_await run_exec(reply.exec, std::move(sock), std::move(after));
    co_return;
  }
  if (reply.takeover) {  // the route serves the upgraded connection itself
    int fd = ::fcntl(sock.native_handle(), F_DUPFD_CLOEXEC, 3);
    sock.close(ignored);
    if (fd >= 0) co_await reply.takeover(fd, std::move(request->after));
    co_return;
  }
  if (!reply.stream) {
    Watchdog dog(sock, kWriteTimeout);
    const std::string allow = reply.status == 405 ? allow_for(r.target) : std::string();
    co_await send_json(sock, static_cast<http::status>(reply.status), reply.body, allow);
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
