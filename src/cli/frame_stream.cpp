// See frame_stream.h.
#include "cli/frame_stream.h"

#include <sys/socket.h>

#include <cerrno>

namespace stack::cli {

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

Result<api::exec::Frame> DaemonFrames::next() {
  for (;;) {
    auto f = reader_.next();
    if (!f) return fail(f.error());
    if (*f) return std::move(**f);
    char buf[64 * 1024];
    ssize_t n = ::recv(sock_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno(what_ + "read from the daemon");
    if (n == 0) return fail(what_ + "the daemon closed the stream before the end (did it stop?)");
    reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace stack::cli
