// The terminal of `stack exec` with a tty: a pty pair opened in the container's own devpts
// instance (the one its /dev/pts is), so the command finds its terminal at /dev/pts/N inside
// (`tty`, ttyname(3)); a pty of the host's devpts would not exist there. Root on the host; the
// daemon keeps the master and pumps it. Nothing here follows a path the container controls
// out of the container: the ptmx is resolved inside its root and checked to be a devpts ptmx.
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "engine/container.h"

namespace stack::engine {

Result<Pty> open_pty(const ContainerProcess& p, uid_t owner) {
  UniqueFd root(::open(("/proc/" + std::to_string(p.pid) + "/root").c_str(),
                       O_PATH | O_DIRECTORY | O_CLOEXEC));
  // Checked after opening: the descriptor is of the process that was started, not of a
  // process that reused its PID.
  if (!root || process_start_time(p.pid) != p.start_time) return fail("container is not running");
  open_how how{};
  how.flags = O_RDWR | O_NOCTTY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd master(
      static_cast<int>(::syscall(SYS_openat2, root.get(), "dev/pts/ptmx", &how, sizeof how)));
  if (!master) return fail_errno("open the container's /dev/pts/ptmx");
  // The container's root user may have replaced /dev/pts/ptmx: only the ptmx of a devpts
  // instance is a terminal multiplexer (ptmx is char 5:2, pts(4)).
  struct stat st {};
  struct statfs sfs {};
  if (::fstat(master.get(), &st) != 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 ||
      minor(st.st_rdev) != 2 || ::fstatfs(master.get(), &sfs) != 0 ||
      sfs.f_type != DEVPTS_SUPER_MAGIC)
    return fail("the container's /dev/pts/ptmx is not a devpts multiplexer");
  int unlock = 0;
  if (::ioctl(master.get(), TIOCSPTLCK, &unlock) != 0) return fail_errno("unlock the pty");
  // TIOCGPTPEER (Linux 4.13) opens the slave through the master, not by a path the container
  // could swap (ioctl_tty(2)).
  UniqueFd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return fail_errno("open the pty's slave");
  // The command's own terminal, as login(1) makes it: its user's (group tty and mode 0620 come
  // from the devpts mount, gid=5,mode=0620).
  if (::fchown(slave.get(), owner, static_cast<gid_t>(-1)) != 0)
    return fail_errno("give the pty to its user");
  return Pty{std::move(master), std::move(slave)};
}

Result<void> resize_pty(int master, uint16_t cols, uint16_t rows) {
  winsize ws{};
  ws.ws_col = cols;
  ws.ws_row = rows;
  if (::ioctl(master, TIOCSWINSZ, &ws) != 0) return fail_errno("set the terminal size");
  return {};
}

}  // namespace stack::engine
