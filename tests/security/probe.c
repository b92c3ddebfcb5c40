/* security-probe: what an attacker inside a container would try, one syscall-level probe per
 * subcommand, printing "ok" or the errno and exiting 0 (allowed) or 1 (refused). A static
 * program (musl) bind-mounted into the test containers read-only; BusyBox has no keyctl,
 * ptrace or chroot-escape. Harmless if a probe succeeds: writes put back what they read. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int result(int rc) {
  if (rc == 0) {
    puts("ok");
    return 0;
  }
  printf("errno=%d %s\n", errno, strerror(errno));
  return 1;
}

/* Opens PATH and reads from it: both must work for "ok". */
static int probe_read(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return result(-1);
  char c;
  ssize_t n = read(fd, &c, 1);
  if (n < 0) return result(-1);
  printf("ok read=%zd\n", n);
  return 0;
}

/* Writes back what PATH holds: a success changes nothing. */
static int probe_write(const char *path) {
  char buf[4096];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return result(-1);
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n <= 0) n = 0;
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return result(-1);
  ssize_t w = write(fd, n ? buf : "\n", n ? (size_t)n : 1);
  int err = errno;
  close(fd);
  errno = err;
  return result(w < 0 ? -1 : 0);
}

static int probe_ptrace(pid_t pid) {
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) return result(-1);
  ptrace(PTRACE_DETACH, pid, 0, 0);
  return result(0);
}

/* The classic escape: chroot into a subdirectory while holding a descriptor of the current
 * root, fchdir to it and walk up. Contained when the walk ends at the container's own root. */
static int probe_chroot_escape(const char *host_marker) {
  int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  mkdir("/tmp/escape", 0700);
  if (chroot("/tmp/escape") != 0) return result(-1);
  if (fchdir(root) != 0) return result(-1);
  for (int i = 0; i < 64; i++)
    if (chdir("..") != 0) break;
  if (chroot(".") != 0) return result(-1);
  if (access(host_marker, F_OK) == 0) {
    puts("escaped");
    return 0;
  }
  puts("contained");
  return 1;
}

static int probe_unshare(const char *what) {
  int flag = !strcmp(what, "user")    ? CLONE_NEWUSER
             : !strcmp(what, "mount") ? CLONE_NEWNS
             : !strcmp(what, "net")   ? CLONE_NEWNET
             : !strcmp(what, "pid")   ? CLONE_NEWPID
                                      : 0;
  return result(unshare(flag));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: probe read|write|ptrace|keyctl|chroot-escape|unshare|mount|settime|"
                    "mknod ARGS\n");
    return 2;
  }
  const char *cmd = argv[1], *arg = argc > 2 ? argv[2] : "";
  if (!strcmp(cmd, "read")) return probe_read(arg);
  if (!strcmp(cmd, "write")) return probe_write(arg);
  if (!strcmp(cmd, "ptrace")) return probe_ptrace((pid_t)atoi(arg));
  if (!strcmp(cmd, "keyctl")) /* KEYCTL_JOIN_SESSION_KEYRING, anonymous */
    return result(syscall(SYS_keyctl, 1, NULL) < 0 ? -1 : 0);
  if (!strcmp(cmd, "chroot-escape")) return probe_chroot_escape(arg);
  if (!strcmp(cmd, "unshare")) return probe_unshare(arg);
  if (!strcmp(cmd, "mount")) return result(mount("tmpfs", arg, "tmpfs", 0, "size=1m"));
  if (!strcmp(cmd, "settime")) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return result(clock_settime(CLOCK_REALTIME, &ts));
  }
  if (!strcmp(cmd, "mknod") && argc == 5) /* mknod PATH MAJOR MINOR: a block device */
    return result(mknod(arg, S_IFBLK | 0600, makedev(atoi(argv[3]), atoi(argv[4]))));
  fprintf(stderr, "probe: unknown probe %s\n", cmd);
  return 2;
}
