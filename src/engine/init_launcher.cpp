// The real InitLauncher: clone() into new namespaces and execve() of stack-init, its control
// socket at fd 3 (step 1 of the sequence at the top of init/init.c). Root on the host. Between
// clone() and execve() the child may only do async-signal-safe work (the engine process may be
// threaded), so it execs the init at once and all configuration travels over the socket.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "engine/kernel.h"
#include "engine/kernel_real.h"
#include "engine/wire.h"

namespace stack::engine {

namespace {

struct ChildArgs {
  const char* init;
  char* const* argv;
  int ctl;
  int fd4;
  int fd5;       // the user namespace for the init, or -1
  int fd6;       // a mount namespace for the init to join, or -1
  int stdio[3];  // -1: keep the caller's
};

// Runs in the cloned child, sharing the parent's memory until execve (CLONE_VFORK): only
// async-signal-safe calls. Signals stay blocked as the parent left them; the init unblocks
// what it needs.
int child_main(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  for (int i = 0; i < 3; i++)
    if (a->stdio[i] >= 0) ::dup2(a->stdio[i], i);
  // Out of the way first: the ctl fd might currently be 4 or 5.
  int fd4 = a->fd4 >= 0 ? ::fcntl(a->fd4, F_DUPFD_CLOEXEC, 10) : -1;
  int fd5 = a->fd5 >= 0 ? ::fcntl(a->fd5, F_DUPFD_CLOEXEC, 10) : -1;
  int fd6 = a->fd6 >= 0 ? ::fcntl(a->fd6, F_DUPFD_CLOEXEC, 10) : -1;
  if (::dup2(a->ctl, 3) < 0) ::_exit(126);
  if (fd4 >= 0 && ::dup2(fd4, 4) < 0) ::_exit(126);
  if (fd5 >= 0 && ::dup2(fd5, 5) < 0) ::_exit(126);
  // fd 6 alone (no user namespace) leaves 5 closed: the init only looks at 6 then.
  if (fd6 >= 0 && ::dup2(fd6, 6) < 0) ::_exit(126);
  ::syscall(SYS_close_range, fd6 >= 0 ? 7u : fd5 >= 0 ? 6u : 5u, ~0u, 0u);
  if (fd6 >= 0 && fd5 < 0) ::close(5);
  static char* const empty_env[] = {nullptr};
  ::execve(a->init, a->argv, empty_env);
  ::_exit(127);
}

// clone() with FLAGS and CLONE_VM|CLONE_VFORK: the child borrows our memory and we are
// suspended until it has exec'd, as posix_spawn does; no page tables are copied.
Result<pid_t> clone_exec(int flags, ChildArgs& args) {
  constexpr size_t kStack = 64 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return fail_errno("mmap clone stack");
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::clone(child_main, static_cast<char*>(stack) + kStack,
                      flags | CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  int err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kStack);
  if (pid < 0) return fail_errno("clone", err);
  return pid;
}

int clone_flags(unsigned namespaces) {
  int flags = 0;
  if (namespaces & kPidNs) flags |= CLONE_NEWPID;
  if (namespaces & kMountNs) flags |= CLONE_NEWNS;
  if (namespaces & kUtsNs) flags |= CLONE_NEWUTS;
  if (namespaces & kIpcNs) flags |= CLONE_NEWIPC;
  if (namespaces & kNetNs) flags |= CLONE_NEWNET;
  return flags;
}

class SocketChannel final : public InitChannel {
 public:
  explicit SocketChannel(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<void> send(std::string_view message) override { return wire::send(fd_.get(), message); }
  Result<std::string> receive(std::chrono::milliseconds timeout) override {
    return wire::receive(fd_.get(), timeout);
  }

 private:
  UniqueFd fd_;
};

class ForkExecLauncher final : public InitLauncher {
 public:
  Result<LaunchedInit> launch(const std::filesystem::path& init, const InitLaunch& how) override {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return fail_errno("socketpair");
    UniqueFd ctl(sv[0]), child_ctl(sv[1]);
    bool exec_mode = how.mode == InitLaunch::Mode::kExec;
    UniqueFd devnull;
    int stdio[3] = {how.stdio[0], how.stdio[1], how.stdio[2]};
    if (!exec_mode && !how.inherit_stdio) {
      devnull.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!devnull) return fail_errno("open /dev/null");
      for (int& fd : stdio) fd = devnull.get();
    }
    std::string path = init.string();
    char arg0[] = "stack-init";
    char arg1[] = "exec";
    char* argv[] = {arg0, exec_mode ? arg1 : nullptr, nullptr};
    UniqueFd mntns;
    if (!how.join_mntns.empty()) {
      mntns.reset(::open(how.join_mntns.c_str(), O_RDONLY | O_CLOEXEC));
      if (!mntns) return fail_errno("open " + how.join_mntns.string());
    }
    ChildArgs args{path.c_str(), argv,          child_ctl.get(), how.fd4,
                   how.userns_fd, mntns.get(), {stdio[0], stdio[1], stdio[2]}};
    // Joining another container's namespaces: this thread enters them for the clone (a child
    // is born in its creating thread's network and IPC namespaces, and in its PID namespace
    // for children, setns(2)), then returns to its own. Per-thread: the pool's other threads
    // are untouched.
    struct Join {
      const std::filesystem::path& path;
      int type;
      const char* own;
    };
    // UTS and cgroup namespaces are per-thread too (nsproxy); mount and user namespaces are
    // not joinable by a threaded process (setns(2), EINVAL): the init joins those.
    const Join joins[] = {{how.join_netns, CLONE_NEWNET, "/proc/thread-self/ns/net"},
                          {how.join_ipcns, CLONE_NEWIPC, "/proc/thread-self/ns/ipc"},
                          {how.join_utsns, CLONE_NEWUTS, "/proc/thread-self/ns/uts"},
                          {how.join_cgroupns, CLONE_NEWCGROUP, "/proc/thread-self/ns/cgroup"},
                          {how.join_pidns, CLONE_NEWPID, "/proc/thread-self/ns/pid_for_children"}};
    std::vector<std::pair<UniqueFd, int>> back;  // our own namespaces, to return to
    auto go_back = [&back] {
      // Never left astray: every later clone of this (pool) thread would land there.
      for (auto& [fd, type] : back)
        if (::setns(fd.get(), type) != 0) std::abort();
      back.clear();
    };
    for (const Join& j : joins) {
      if (j.path.empty()) continue;
      UniqueFd own(::open(j.own, O_RDONLY | O_CLOEXEC));
      UniqueFd target(::open(j.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!own || !target) {
        int err = errno;
        go_back();
        return fail_errno("open " + j.path.string(), err);
      }
      if (::setns(target.get(), j.type) != 0) {
        int err = errno;
        go_back();
        return fail_errno("setns " + j.path.string(), err);
      }
      back.emplace_back(std::move(own), j.type);
    }
    auto cloned = clone_exec(clone_flags(how.namespaces), args);
    go_back();
    if (!cloned) return fail(cloned.error());
    return LaunchedInit{*cloned, std::make_unique<SocketChannel>(std::move(ctl))};
  }
};

}  // namespace

std::string namespace_names(unsigned namespaces) {
  static constexpr std::pair<unsigned, const char*> kNames[] = {
      {kPidNs, "PID"}, {kMountNs, "NS"}, {kUtsNs, "UTS"}, {kIpcNs, "IPC"}, {kNetNs, "NET"}};
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if (!(namespaces & bit)) continue;
    if (!out.empty()) out += '|';
    out += name;
  }
  return out.empty() ? "none" : out;
}

InitLauncher& real_launcher() {
  static ForkExecLauncher launcher;
  return launcher;
}

}  // namespace stack::engine
