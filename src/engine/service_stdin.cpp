// close_service_stdin: a copy of the init's control pipe (pidfd_getfd(2) of STDIN_CTL_FD, init.h)
// and one W_STDIN_CLOSE message on it, written whole (far below PIPE_BUF: atomic).
#include "engine/service_stdin.h"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common/unique_fd.h"
#include "engine/wire.h"

namespace stack::engine {

// STDIN_CTL_FD of init/init.h (a C header of the init's own declarations, not included here).
constexpr int kStdinCtlFd = 101;

Result<void> close_service_stdin(int pidfd) {
  UniqueFd ctl(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, kStdinCtlFd, 0)));
  if (!ctl) return fail_errno("take the stdin control pipe from the container's init");
  struct stat st {};
  if (::fstat(ctl.get(), &st) != 0 || !S_ISFIFO(st.st_mode))
    return fail("the init's stdin control descriptor is not a pipe");
  std::string message = wire::Writer().bytes(W_STDIN_CLOSE, "").message();
  // One write(2): a pipe takes a message this small whole or not at all (pipe(7), PIPE_BUF).
  ssize_t n;
  do n = ::write(ctl.get(), message.data(), message.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("close stdin: write to the container's init");
  if (static_cast<size_t>(n) != message.size()) return fail("close stdin: a short write");
  return {};
}

}  // namespace stack::engine
