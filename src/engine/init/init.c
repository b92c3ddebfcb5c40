/* stack-init: PID 1 of every container. It builds the container's root, starts the service,
 * reaps zombies, forwards signals, writes the service's output as log lines, and records the
 * exit status in the container's directory on the host, so nothing is lost if the engine that
 * started it is gone. With "exec" it instead enters a running container for `stack exec`.
 * Every message on CTL, both ways, is wire.h's typed, length-prefixed format.
 *
 * Container sequence (engine = src/engine/launcher.cpp: Engine::create does steps 1-3, the
 * caller step 4, Engine::start the GO of step 4; its kernel calls go through engine/kernel.h):
 *  1. engine: socketpair (CTL), open the container directory (DIR); clone() with new PID, mount,
 *     UTS, IPC and network namespaces; the child only dup2()s CTL to fd 3 and DIR to fd 4 and
 *     execs this program (nothing else is safe between clone and exec in a threaded engine).
 *  2. engine: sends the configuration, then puts the new PID into the container's cgroups
 *     (device rules included) while the init works (a v1 cgroup move waits for an RCU grace
 *     period: overlap it). With a cgroup namespace of the container's own (W_CGROUPNS) the move
 *     comes first: the init makes that namespace before READY, rooted at its cgroup then.
 *  3. init: becomes non-dumpable, makes its mount tree private, mounts the overlay, /proc, /sys,
 *     /dev and the binds (every target resolved inside the new root), pivot_root()s, reopens
 *     its stdio on the container's /dev/null, masks Docker's paths, brings lo up, drops its
 *     bounding set to the container's capabilities, and answers READY (or ERROR and exits 1).
 *     The engine reads READY only after the cgroup move, so the service starts inside them;
 *     Engine::create returns then, with a pidfd and a descriptor of this network namespace.
 *  4. the caller (the reconciler, on its own loop) attaches networks: a veth born in this
 *     namespace. Then Engine::start sends GO. Engine::abandon instead kills this init (were
 *     CTL only closed before GO, the init would exit by itself).
 *  5. init: forks the service with stdout/stderr on pipes; the child sets its user,
 *     capabilities, no_new_privs and seccomp filter (process.c) and execs; a close-on-exec pipe
 *     tells init whether exec succeeded. init drops its own capabilities to the service's,
 *     answers STARTED (or ERROR), closes CTL, and supervises until the service exits. What it
 *     keeps of the host: DIR and the log file in it (logs and the exit record go there).
 *  6. init: records "exit" in DIR, exits with the service's status; the kernel then kills
 *     whatever else is left in the PID namespace.
 *
 * With a user namespace (userns_mode), step 1 clones only the PID and mount namespaces and
 * passes the namespace at fd 5; step 3 builds the root as root on the host (the layers
 * idmapped through it), then joins it, becomes its root, and only then makes the network, UTS,
 * IPC and a mount namespace of its own, mounts /sys and mqueue there, and pivot_root()s.
 *
 * Exec sequence: the engine joins the helper to the container's cgroups, passes CTL (fd 3) and
 * a pidfd of the container's init (fd 4) and the process's configuration; the helper setns()s
 * into its namespaces (its user namespace last), forks (to be inside the PID namespace), and
 * the child becomes CMD as in step 5. The helper drops its own capabilities, answers STARTED,
 * forwards signals and exits with CMD's status. With a terminal (W_TTY: stdin is the slave of a
 * pty the engine opened in the container's devpts), the child first makes a session of its own
 * and takes that terminal as its controlling one (TIOCSCTTY), as login(1) does. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "wire.h"

/* One reply to the engine: a message holding one record. */
static void reply(uint16_t tag, const void *val, uint32_t len) {
  unsigned char msg[4 + 6 + 4096];
  size_t used = 4;
  if (len > sizeof msg - 10) len = sizeof msg - 10; /* an error text, cut at 4 KiB */
  wire_put(msg, sizeof msg, &used, tag, val, len);
  uint32_t body = (uint32_t)(used - 4);
  for (int i = 0; i < 4; i++) msg[i] = (unsigned char)(body >> (8 * i));
  for (size_t off = 0; off < used;) {
    ssize_t w = write(CTL_FD, msg + off, used - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += (size_t)w;
  }
}

static void reply_error(const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
  reply(W_ERROR, msg, (uint32_t)n);
}

static void reply_started(pid_t pid) {
  unsigned char v[4];
  for (int i = 0; i < 4; i++) v[i] = (unsigned char)((uint32_t)pid >> (8 * i));
  reply(W_STARTED, v, sizeof v);
}

/* The engine's TAG (GO, PIVOT): a message with exactly one empty record of it. */
static int wait_for(uint16_t want) {
  char err[256];
  unsigned char *body;
  uint32_t len;
  if (read_message(CTL_FD, &body, &len, err, sizeof err) != 0) return -1;
  struct wire_reader r;
  wire_reader_init(&r, body, len);
  uint16_t tag;
  const unsigned char *val;
  uint32_t vlen;
  int ok = wire_next(&r, &tag, &val, &vlen) == 1 && tag == want && vlen == 0 &&
           wire_next(&r, &tag, &val, &vlen) == 0;
  free_message(body, len);
  return ok ? 0 : -1;
}

static int wait_go(void) { return wait_for(W_GO); }

int pause_before_pivot(char *err, size_t errlen) {
  reply(W_MOUNTED, NULL, 0);
  if (wait_for(W_PIVOT) != 0) {
    snprintf(err, errlen, "the engine stopped the create before pivot_root");
    return -1;
  }
  return 0;
}

/* Status as a shell reports it: the exit code, or 128 + the signal that killed it. */
static int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

static void record_exit(int status) {
  char buf[128];
  int n = snprintf(buf, sizeof buf, "code=%d\nsignal=%d\nfinished_at=%lld\n", status_code(status),
                   WIFSIGNALED(status) ? WTERMSIG(status) : 0, now_ms());
  int fd = openat(DIR_FD, "exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t w = write(fd, buf, (size_t)n);
  (void)w;
  fsync(fd);
  close(fd);
  renameat(DIR_FD, "exit.tmp", DIR_FD, "exit");
}

/* Forks the process described by CFG with the given stdio, in a session of its own with SESSION
 * (and with IN as its controlling terminal with CTTY); returns its pid, or -1 with a message in
 * ERR when it could not exec. */
static pid_t spawn(const struct config *cfg, int session, int ctty, int in, int out, int errfd,
                   char *err, size_t errlen) {
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) != 0) return snprintf(err, errlen, "pipe: %s", strerror(errno)), -1;
  pid_t pid = fork();
  if (pid < 0) return snprintf(err, errlen, "fork: %s", strerror(errno)), -1;
  if (pid == 0) {
    close(ep[0]);
    if (session) setsid();
    if (in >= 0) dup2(in, 0);
    if (out >= 0) dup2(out, 1);
    if (errfd >= 0) dup2(errfd, 2);
    /* Nothing of init's reaches the service; the report pipe closes itself on exec. */
    syscall(SYS_close_range, 3, (unsigned)ep[1] - 1, 0);
    syscall(SYS_close_range, (unsigned)ep[1] + 1, ~0u, 0);
    /* A session leader without a controlling terminal acquires the one it asks for
     * (ioctl_tty(2), TIOCSCTTY); the terminal's Ctrl-C then signals its foreground group. */
    if (ctty && ioctl(0, TIOCSCTTY, 0) != 0) {
      int report[2] = {ST_CTTY, errno};
      ssize_t w = write(ep[1], report, sizeof report);
      (void)w;
      _exit(126);
    }
    exec_process(cfg, ep[1]);
    _exit(errno == ENOENT ? 127 : 126);
  }
  close(ep[1]);
  int report[2];
  ssize_t r;
  do r = read(ep[0], report, sizeof report);
  while (r < 0 && errno == EINTR);
  close(ep[0]);
  if (r == (ssize_t)sizeof report) {
    static const char *stage[] = {"set user", "set capabilities", "chdir", "exec",
                                  "install the seccomp filter", "set no_new_privs",
                                  "set the controlling terminal", "set ulimits",
                                  "set the personality", "set the I/O priority",
                                  "set the scheduler", "set the memory policy"};
    const char *what = report[0] >= 0 && report[0] <= ST_MEMPOLICY ? stage[report[0]] : "start";
    int rt = cfg->sched.policy == 1 || cfg->sched.policy == 2; /* SCHED_FIFO, SCHED_RR */
    if (report[0] == ST_SCHED && report[1] == EPERM && rt)
      snprintf(err, errlen, "%s: %s (a realtime policy needs realtime runtime in the "
               "container's cpu cgroup: linux.resources.cpu.realtimeRuntime, sched(7))", what,
               strerror(report[1]));
    else if (report[0] == 2)
      snprintf(err, errlen, "%s %s: %s", what, cfg->cwd, strerror(report[1]));
    else if (report[0] == 3)
      snprintf(err, errlen, "%s \"%s\": %s", what, cfg->args.v[0], strerror(report[1]));
    else
      snprintf(err, errlen, "%s: %s", what, strerror(report[1]));
    waitpid(pid, NULL, 0);
    return -1;
  }
  return pid;
}

static int block_signals(void) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  return signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Returns the pid reaped that was MAIN (status in *status), 0 if MAIN still runs. */
static pid_t reap(pid_t main, int *status) {
  pid_t found = 0;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p <= 0) break;
    if (p == main) found = p, *status = st;
  }
  return found;
}

static void drain(int fd, struct logfile *lf, int stream) {
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      log_feed(lf, stream, buf, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  log_flush(lf, stream);
}

/* The service's terminal: a pty of the container's own devpts (its /dev/pts, mounted by
 * setup_rootfs), so the service finds it at /dev/pts/N; the slave is opened through the master
 * (TIOCGPTPEER, ioctl_tty(2)), never by a path, and given to the service's user as login(1)
 * does. *MASTER is kept by the init, *SLAVE becomes the service's stdio. */
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
static int open_terminal(const struct config *cfg, int *master, int *slave, char *err,
                         size_t errlen) {
  int unlock = 0;
  *master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*master < 0) return snprintf(err, errlen, "open /dev/pts/ptmx: %s", strerror(errno)), -1;
  if (ioctl(*master, TIOCSPTLCK, &unlock) != 0)
    return snprintf(err, errlen, "unlock the terminal: %s", strerror(errno)), -1;
  *slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0) return snprintf(err, errlen, "open the terminal: %s", strerror(errno)), -1;
  if (fchown(*slave, cfg->uid, (gid_t)-1) != 0)
    return snprintf(err, errlen, "give the terminal to its user: %s", strerror(errno)), -1;
  return 0;
}

/* After GO with W_STDIO_INHERIT (an OCI runtime): the service writes to the init's own stdio,
 * the caller's pipes or terminal; no log file. With W_TTY, TTY_SLAVE (opened before READY) is
 * its stdio and controlling terminal instead; the runtime took its master at TTY_MASTER_FD
 * before GO. The rest is run_container's. */
static int run_inherited(struct config *cfg, int sfd, int tty_slave) {
  char err[4096];
  int tty = tty_slave >= 0;
  pid_t main_pid = spawn(cfg, 1, tty, tty ? tty_slave : 0, tty ? tty_slave : 1,
                         tty ? tty_slave : 2, err, sizeof err);
  if (tty) {
    close(tty_slave);
    close(TTY_MASTER_FD);
  }
  if (main_pid < 0) {
    record_exit(127 << 8);
    reply_error("%s", err);
    return 127;
  }
  if (drop_own_caps(cfg) != 0) {
    reply_error("drop the init's capabilities: %s", strerror(errno));
    kill(main_pid, SIGKILL);
    return 1;
  }
  release_config(cfg);
  reply_started(main_pid);
  close(CTL_FD);
  /* Only the signals' descriptor: the service's output is none of the init's business. */
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    for (int i = 0; i < 3; i++) dup3(devnull, i, 0);
    close(devnull);
  }
  fcntl(sfd, F_SETFL, 0);
  int status = 0;
  for (;;) {
    struct signalfd_siginfo si;
    ssize_t r = read(sfd, &si, sizeof si);
    if (r != (ssize_t)sizeof si) continue;
    if (si.ssi_signo != SIGCHLD) kill(main_pid, (int)si.ssi_signo);
    if (reap(main_pid, &status)) break;
  }
  record_exit(status);
  return status_code(status);
}

/* A message on the stdin control pipe (W_STDIN_CLOSE): 0 to go on reading it, 1 once stdin is
 * closed or the pipe is of no more use. Messages are far below PIPE_BUF: each arrives whole. */
static int stdin_control(int fd) {
  unsigned char buf[64];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  if (n < 4) return 1;
  uint32_t len = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
                 (uint32_t)buf[3] << 24;
  if (len != (uint32_t)n - 4) return 0; /* not one whole message: ignored */
  struct wire_reader r;
  uint16_t tag;
  const unsigned char *val;
  uint32_t vlen;
  wire_reader_init(&r, buf + 4, len);
  if (wire_next(&r, &tag, &val, &vlen) != 1 || tag != W_STDIN_CLOSE || vlen != 0 ||
      wire_next(&r, &tag, &val, &vlen) != 0)
    return 0;
  /* Our copy of the stdin pipe's writing end: with the daemon's closed too, the service reads
   * EOF. A later attach finds no fd 3 and sends no input. */
  close(CTL_FD);
  close(STDIN_CTL_FD);
  return 1;
}

static int run_container(void) {
  char err[4096];
  struct config cfg;
  int sfd = block_signals();
  /* Before anything of the container exists: no ptrace, no /proc/1/mem, no /proc/1/fd/N for
   * the container's processes (ptrace_may_access needs CAP_SYS_PTRACE then). */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (read_config(CTL_FD, &cfg, err, sizeof err) != 0 ||
      (cfg.timens && enter_timens(&cfg, err, sizeof err) != 0) ||
      setup_rootfs(&cfg, err, sizeof err) != 0 || loopback_up(err, sizeof err) != 0) {
    reply_error("%s", err);
    return 1;
  }
  if (drop_bounding(&cfg) != 0) {
    reply_error("drop the capability bounding set: %s", strerror(errno));
    return 1;
  }
  /* An OCI runtime's terminal (process.terminal): opened now, in the container's devpts, so the
   * runtime can hand its master to its caller (--console-socket) at create, before GO. */
  int tty_slave = -1;
  if (cfg.stdio_inherit && cfg.tty) {
    int master = -1;
    if (open_terminal(&cfg, &master, &tty_slave, err, sizeof err) != 0) {
      reply_error("%s", err);
      return 1;
    }
    if (dup3(master, TTY_MASTER_FD, O_CLOEXEC) < 0) {
      reply_error("terminal: %s", strerror(errno));
      return 1;
    }
    close(master);
  }
  /* cgroup: private, before READY (an OCI runtime's `create` shows it, as crun's). Not at
   * clone: the namespace's root is the cgroup of its maker when made (cgroup_namespaces(7)),
   * and the engine moves us into ours after the clone, before it sends the config (W_CGROUPNS).
   * After setup_rootfs: with a user namespace, the namespace is then that one's. */
  if (cfg.cgroupns && unshare(CLONE_NEWCGROUP) != 0) {
    reply_error("cgroup namespace: %s", strerror(errno));
    return 1;
  }
  reply(W_READY, NULL, 0);
  if (wait_go() != 0) return 1; /* the engine gave up on this container */
  if (cfg.stdio_inherit) return run_inherited(&cfg, sfd, tty_slave);
  struct logfile *lf = log_open(DIR_FD, cfg.log_max_size, cfg.log_max_files, cfg.log_none);
  int outp[2], errp[2];
  if (!lf || pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    reply_error("log pipes: %s", strerror(errno));
    return 1;
  }
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  /* KEEP: what the init holds for `stack attach` (fd 3 once CTL is closed): the pty's master,
   * or the writing end of the service's stdin; the daemon takes a copy with pidfd_getfd(2). */
  int keep = -1, in = devnull, out = outp[1], errout = errp[1];
  int stdin_ctl = -1; /* stdin_open: the control pipe's reading end (W_STDIN_CLOSE) */
  if (cfg.tty) {
    if (open_terminal(&cfg, &keep, &in, err, sizeof err) != 0) {
      reply_error("%s", err);
      return 1;
    }
    out = errout = in;
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
  } else if (cfg.stdin_open) {
    int inp[2], ctlp[2];
    if (pipe2(inp, O_CLOEXEC) != 0 || pipe2(ctlp, O_CLOEXEC) != 0 ||
        dup3(ctlp[1], STDIN_CTL_FD, O_CLOEXEC) < 0) {
      reply_error("stdin pipe: %s", strerror(errno));
      return 1;
    }
    close(ctlp[1]);
    keep = inp[1];
    in = inp[0];
    stdin_ctl = ctlp[0];
  }
  pid_t main_pid = spawn(&cfg, 1, cfg.tty, in, out, errout, err, sizeof err);
  if (outp[1] >= 0) close(outp[1]);
  if (errp[1] >= 0) close(errp[1]);
  if (in != devnull) close(in);
  if (devnull >= 0) close(devnull);
  if (main_pid < 0) {
    log_line(lf, 1, err);
    record_exit(127 << 8);
    reply_error("%s", err);
    return 127;
  }
  if (drop_own_caps(&cfg) != 0) {
    reply_error("drop the init's capabilities: %s", strerror(errno));
    kill(main_pid, SIGKILL);
    return 1;
  }
  int tty = cfg.tty;
  release_config(&cfg);
  reply_started(main_pid);
  close(CTL_FD);
  if (keep >= 0) { /* at the place the daemon looks for it */
    dup3(keep, CTL_FD, O_CLOEXEC);
    close(keep);
    if (tty) {
      close(outp[0]);
      outp[0] = CTL_FD; /* the terminal's output is the service's stdout */
    }
  }

  int ep = epoll_create1(EPOLL_CLOEXEC);
  int fds[4] = {sfd, outp[0], errp[0], stdin_ctl};
  for (int i = 0; i < 4; i++) {
    if (fds[i] < 0) continue;
    fcntl(fds[i], F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
  }
  int status = 0;
  for (;;) {
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; i++) {
      int which = (int)evs[i].data.u32;
      if (which == 0) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
          if (si.ssi_signo == SIGCHLD) continue;
          kill(main_pid, (int)si.ssi_signo); /* the service decides what a signal means */
        }
        if (reap(main_pid, &status)) goto exited;
      } else if (which == 3) {
        if (stdin_control(stdin_ctl) != 0) { /* closed or done with: no more messages */
          epoll_ctl(ep, EPOLL_CTL_DEL, stdin_ctl, NULL);
          close(stdin_ctl);
          stdin_ctl = fds[3] = -1;
        }
      } else {
        char buf[8192];
        ssize_t r = read(fds[which], buf, sizeof buf);
        if (r > 0) {
          log_feed(lf, which - 1, buf, (size_t)r);
          if (tty) log_partial(lf, which - 1);
        } else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
          epoll_ctl(ep, EPOLL_CTL_DEL, fds[which], NULL); /* closed: wait for the exit */
      }
    }
  }
exited:
  /* Take what the service wrote before it died; descendants still holding the pipes are killed
   * with the namespace when we return. */
  drain(outp[0], lf, 0);
  if (errp[0] >= 0) drain(errp[0], lf, 1);
  record_exit(status);
  return status_code(status);
}

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x80
#endif

/* The container's init (the process of the pidfd at PIDFD_FD, its pid in fdinfo's "Pid:"):
 * an O_PATH descriptor of its root, and CLONE_NEWTIME in *EXTRA when its time namespace is
 * not ours (a container's own: joining it by pidfd needs the flag; asking for our own would
 * fail). */
static int open_init_root(int *root, unsigned *extra, char *err, size_t errlen) {
  char buf[512], path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", PIDFD_FD);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0) close(fd);
  const char *at = n > 0 ? (buf[n] = 0, strstr(buf, "\nPid:")) : NULL;
  int pid = at ? atoi(at + 5) : 0;
  if (pid <= 0) return snprintf(err, errlen, "the container's init: no pid in its pidfd"), -1;
  snprintf(path, sizeof path, "/proc/%d/root", pid);
  *root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (*root < 0) return snprintf(err, errlen, "open %s: %s", path, strerror(errno)), -1;
  struct stat ours, theirs;
  snprintf(path, sizeof path, "/proc/%d/ns/time", pid);
  if (stat("/proc/self/ns/time", &ours) == 0 && stat(path, &theirs) == 0 &&
      ours.st_ino != theirs.st_ino)
    *extra |= CLONE_NEWTIME;
  return 0;
}

static int run_exec(void) {
  char err[4096];
  struct config cfg;
  int sfd = block_signals();
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (read_config(CTL_FD, &cfg, err, sizeof err) != 0) {
    reply_error("%s", err);
    return 126;
  }
  /* The init's root as it sees it, opened while /proc is still the host's: in a mount
   * namespace joined by path the init chroot(2)ed into it, so it is not that namespace's root. */
  int initroot = -1;
  unsigned extra = 0;
  if (open_init_root(&initroot, &extra, err, sizeof err) != 0) {
    reply_error("%s", err);
    return 126;
  }
  /* setns(2) with a pidfd joins several namespaces of that process atomically (Linux 5.8).
   * Joining the mount namespace also moves our root and cwd to that namespace's root; the
   * init's own root is then taken with chroot, before the user namespace (CAP_SYS_CHROOT). */
  if (setns(PIDFD_FD, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID |
                          CLONE_NEWCGROUP | extra)) {
    reply_error("enter the container's namespaces: %s", strerror(errno));
    return 126;
  }
  if (fchdir(initroot) != 0 || chroot(".") != 0) {
    reply_error("enter the container's root: %s", strerror(errno));
    return 126;
  }
  close(initroot);
  /* Its user namespace last: joining it gives up every capability outside it, which joining
   * the PID namespace (owned by the host's) still needed. */
  if (cfg.userns && setns(PIDFD_FD, CLONE_NEWUSER)) {
    reply_error("enter the container's user namespace: %s", strerror(errno));
    return 126;
  }
  close(PIDFD_FD);
  pid_t pid = spawn(&cfg, cfg.tty, cfg.tty, 0, 1, 2, err, sizeof err);
  if (pid < 0) {
    reply_error("%s", err);
    return 127;
  }
  if (drop_bounding(&cfg) != 0 || drop_own_caps(&cfg) != 0) {
    reply_error("drop the exec helper's capabilities: %s", strerror(errno));
    kill(pid, SIGKILL);
    return 126;
  }
  release_config(&cfg);
  reply_started(pid);
  close(CTL_FD);
  for (;;) {
    struct signalfd_siginfo si;
    fcntl(sfd, F_SETFL, 0);
    if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si) continue;
    if (si.ssi_signo != SIGCHLD) {
      kill(pid, (int)si.ssi_signo);
      continue;
    }
    int status = 0;
    if (reap(pid, &status)) return status_code(status);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "exec")) return run_exec();
  if (argc > 1) {
    fprintf(stderr, "stack-init: started by the stack engine, not by hand\n");
    return 2;
  }
  return run_container();
}
