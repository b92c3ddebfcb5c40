// See frame_socket.h.
#include "api/frame_socket.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace stack::api {

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
