// See frame_socket.h.
#include "api/frame_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <cstring>
#include <thread>

#include "reconciler/async.h"

namespace stack::api {

namespace asio = boost::asio;

namespace {

constexpr int kSocketTimeoutSeconds = 60;

void serve_blocking(int sock, std::string after, const std::string& protocol,
                    const std::function<void(int, std::string)>& serve) {
  timeval tv{kSocketTimeoutSeconds, 0};
  ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int flags = ::fcntl(sock, F_GETFL);
  ::fcntl(sock, F_SETFL, flags & ~O_NONBLOCK);
  if (!send_all(sock, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
                          protocol + "\r\n\r\n"))
    return;
  serve(sock, std::move(after));
}

}  // namespace

asio::awaitable<void> serve_upgraded(int fd, std::string after, std::string protocol,
                                     std::function<void(int, std::string)> serve) {
  // The thread closes DONE's other end when it has ended: that wakes this coroutine.
  int done[2];
  if (::pipe2(done, O_CLOEXEC) != 0) {
    ::close(fd);
    co_return;
  }
  asio::posix::stream_descriptor finished(co_await asio::this_coro::executor, done[0]);
  std::thread([fd, after = std::move(after), protocol = std::move(protocol),
               serve = std::move(serve), end = done[1]]() mutable {
    serve_blocking(fd, std::move(after), protocol, serve);
    ::close(fd);
    ::close(end);
  }).detach();
  co_await finished.async_wait(asio::posix::stream_descriptor::wait_read, reconciler::no_throw);
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

Result<size_t> FrameSource::read(char* buf, size_t n) {
  while (pending_.size() == offset_) {
    if (eof_) return size_t{0};
    auto f = frames_.next();
    if (!f) return fail(f.error());
    if (*f) {
      if ((*f)->type == exec::Type::stdin_eof)
        eof_ = true;
      else if ((*f)->type == exec::Type::stdin_data)
        pending_ = std::move((*f)->payload), offset_ = 0;
      else
        return fail("stream: unexpected frame from the client");
      continue;
    }
    char chunk[64 * 1024];
    ssize_t got = ::recv(sock_, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return fail_errno("stream: read from the client");
    if (got == 0) return fail("stream: the client closed before the end of the archive");
    frames_.feed(std::string_view(chunk, static_cast<size_t>(got)));
  }
  size_t k = std::min(n, pending_.size() - offset_);
  std::memcpy(buf, pending_.data() + offset_, k);
  offset_ += k;
  return k;
}

void FrameSource::drain() {
  char buf[64 * 1024];
  while (!eof_) {
    auto n = read(buf, sizeof buf);
    if (!n || *n == 0) return;
  }
}

}  // namespace stack::api
