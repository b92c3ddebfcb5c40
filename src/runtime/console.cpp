// --console-socket (see console.h).
#include "runtime/console.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/container.h"

namespace stack::runtime {

namespace {
// src/engine/init/init.h's TTY_MASTER_FD (a C header of the init's own: not included here).
constexpr int kInitTerminalFd = 100;
}  // namespace

Result<void> send_console(const std::filesystem::path& socket, int master, uint16_t rows,
                          uint16_t cols) {
  if (rows != 0 && cols != 0)
    if (auto r = engine::resize_pty(master, cols, rows); !r) return fail(r.error());
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket.string().size() >= sizeof a.sun_path)
    return fail("--console-socket: path too long: " + socket.string());
  std::strncpy(a.sun_path, socket.c_str(), sizeof a.sun_path - 1);
  UniqueFd s;
  int err = 0;
  for (int type : {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM}) {
    s.reset(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    if (!s) return fail_errno("socket");
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) break;
    err = errno;
    s.reset();
    if (err != EPROTOTYPE) break;
  }
  if (!s) {
    errno = err;
    return fail_errno("--console-socket: connect " + socket.string());
  }
  // runc sends the terminal's name as the data; receivers take only the descriptor.
  char name[] = "/dev/ptmx";
  iovec iov{name, sizeof name - 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &master, sizeof(int));
  ssize_t n;
  do n = ::sendmsg(s.get(), &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("--console-socket: send the terminal");
  return {};
}

Result<UniqueFd> take_init_terminal(int init_pidfd) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_getfd, init_pidfd, kInitTerminalFd, 0)));
  if (!fd) return fail_errno("take the container's terminal from its init");
  return fd;
}

}  // namespace stack::runtime
