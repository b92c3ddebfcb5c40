// Starting a container and entering one: the engine's half of the handshake documented at the
// top of src/engine/init/init.c. Root on the host. Between clone() and execve() the child may
// only do async-signal-safe work (the engine process may be threaded), so it execs the init at
// once and all configuration travels over a socket.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "common/files.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"
#include "engine/container.h"

namespace stack::engine {

namespace {

using namespace std::chrono_literals;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// NUL-separated key/value pairs, prefixed by their length (see read_config in init/setup.c).
class ConfigWriter {
 public:
  void add(std::string_view key, std::string_view value) {
    buf_.append(key).push_back('\0');
    buf_.append(value).push_back('\0');
  }
  void add_process(const ProcessSpec& p) {
    for (const auto& a : p.argv) add("arg", a);
    for (const auto& e : p.env) add("env", e);
    add("cwd", p.cwd.empty() ? "/" : p.cwd);
    add("uid", std::to_string(p.uid));
    add("gid", std::to_string(p.gid));
    for (gid_t g : p.groups) add("group", std::to_string(g));
    char caps[20];
    snprintf(caps, sizeof caps, "%llx", static_cast<unsigned long long>(p.capabilities));
    add("caps", caps);
  }
  [[nodiscard]] Result<void> send(int fd) const {
    uint32_t len = static_cast<uint32_t>(buf_.size());
    std::string msg(reinterpret_cast<const char*>(&len), sizeof len);
    msg += buf_;
    std::string_view rest = msg;
    while (!rest.empty()) {
      ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("send config to init");
      rest.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }

 private:
  std::string buf_;
};

// One line from the init: "R", "S<pid>" or "E<why>". The init may have died instead.
Result<std::string> read_reply(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return fail("container init did not answer within " +
                                 std::to_string(timeout.count()) + " ms");
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail_errno("poll init");
    if (r == 0) continue;
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("container init exited during setup");
    if (c == '\n') break;
    line.push_back(c);
  }
  if (!line.empty() && line[0] == 'E') return fail(line.substr(1));
  return line;
}

struct ChildArgs {
  const char* init;
  char* const* argv;
  int ctl;
  int fd4;
  int stdio[3];  // -1: keep the caller's
};

// Runs in the cloned child, sharing the parent's memory until execve (CLONE_VFORK): only
// async-signal-safe calls. Signals stay blocked as the parent left them; the init unblocks
// what it needs.
int child_main(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  for (int i = 0; i < 3; i++)
    if (a->stdio[i] >= 0) ::dup2(a->stdio[i], i);
  // fd 4 first: the ctl fd might currently be 4.
  int fd4 = a->fd4 >= 0 ? ::fcntl(a->fd4, F_DUPFD_CLOEXEC, 10) : -1;
  if (::dup2(a->ctl, 3) < 0) ::_exit(126);
  if (fd4 >= 0 && ::dup2(fd4, 4) < 0) ::_exit(126);
  ::syscall(SYS_close_range, 5u, ~0u, 0u);
  static char* const empty_env[] = {nullptr};
  ::execve(a->init, a->argv, empty_env);
  ::_exit(127);
}

// clone() with FLAGS and CLONE_VM|CLONE_VFORK: the child borrows our memory and we are
// suspended until it has exec'd, as posix_spawn does; no page tables are copied.
Result<pid_t> clone_exec(int flags, ChildArgs& args) {
  constexpr size_t kStack = 64 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
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

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

Result<std::string> lower_dirs(const std::vector<std::filesystem::path>& layers) {
  std::string out;
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {  // overlayfs: topmost first
    const std::string s = it->string();
    if (s.find_first_of(":,") != std::string::npos)
      return fail("layer path " + s + " contains ':' or ','");
    if (!out.empty()) out += ':';
    out += s;
  }
  if (out.empty()) return fail("image has no layers");
  return out;
}

}  // namespace

Engine::Engine(std::filesystem::path init_binary, CgroupDriver& cgroups)
    : init_(std::move(init_binary)), cgroups_(cgroups) {}

Result<ContainerProcess> Engine::start(const ContainerSpec& spec, const AttachFn& attach) {
  const auto& dir = spec.dir;
  // The overlay's root directory takes its owner and mode from the upper layer: 0755, or a
  // service running as another user could not even reach "/". The containers/ directory
  // above is 0711, so nothing here is listable by other host users.
  for (const char* sub : {"rootfs", "upper", "work"})
    if (auto r = make_dirs(dir / sub, 0755); !r) return fail(r.error());
  if (auto r = write_file(dir / "hostname", spec.hostname + "\n"); !r) return fail(r.error());
  if (auto r = write_file(dir / "hosts", spec.hosts); !r) return fail(r.error());
  if (!spec.resolv_conf.empty())
    if (auto r = write_file(dir / "resolv.conf", spec.resolv_conf); !r) return fail(r.error());
  ::unlink((dir / "exit").c_str());
  std::string lowers = STACK_TRY_CTX(lower_dirs(spec.layers), "rootfs");

  // A cgroup left by an earlier run would carry its OOM count; start from a fresh one. If an
  // engine died between starting this container and recording it, its processes are still
  // in there: they are killed, or they would run unrecorded beside the new one.
  if (auto stray = cgroups_.pids(spec.cgroup); stray && !stray->empty()) {
    for (pid_t p : *stray) ::kill(p, SIGKILL);
    for (int i = 0; i < 200 && !cgroups_.remove(spec.cgroup); i++) ::usleep(5000);
  }
  (void)cgroups_.remove(spec.cgroup);
  if (auto r = cgroups_.create(spec.cgroup, spec.limits); !r) return fail(r.error());
  ScopeGuard drop_cgroup([&] { (void)cgroups_.remove(spec.cgroup); });

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return fail_errno("socketpair");
  UniqueFd ctl(sv[0]), child_ctl(sv[1]);
  UniqueFd dirfd(::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!dirfd) return fail_errno("open " + dir.string());
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));

  std::string init = init_.string();
  char arg0[] = "stack-init";
  char* argv[] = {arg0, nullptr};
  ChildArgs args{init.c_str(), argv, child_ctl.get(), dirfd.get(),
                 {devnull.get(), devnull.get(), devnull.get()}};
  // Joining another container's network namespace: this thread enters it for the clone (a
  // child is born in its creating thread's namespaces), then returns to its own.
  UniqueFd own_netns, join_netns;
  if (!spec.join_netns.empty()) {
    own_netns.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    join_netns.reset(::open(spec.join_netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!own_netns || !join_netns) return fail_errno("open " + spec.join_netns);
    if (::setns(join_netns.get(), CLONE_NEWNET) != 0) return fail_errno("setns " + spec.join_netns);
  }
  auto cloned = clone_exec(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                               (spec.host_network || !spec.join_netns.empty() ? 0 : CLONE_NEWNET),
                           args);
  if (own_netns && ::setns(own_netns.get(), CLONE_NEWNET) != 0) std::abort();  // never left astray
  pid_t pid = STACK_TRY_CTX(std::move(cloned), "create namespaces");
  int64_t started_at = unix_ms();
  child_ctl.reset();
  ScopeGuard kill_child([&] { kill_and_reap(pid); });

  ConfigWriter cfg;
  cfg.add("rootfs", (dir / "rootfs").string());
  cfg.add("upper", (dir / "upper").string());
  cfg.add("work", (dir / "work").string());
  cfg.add("lowerdirs", lowers);
  cfg.add("hostname", spec.hostname);
  cfg.add("log_max_size", std::to_string(spec.log_max_size));
  cfg.add("log_max_files", std::to_string(spec.log_max_files));
  auto bind = [&](const std::filesystem::path& src, const std::string& dst, bool ro) {
    cfg.add("bind", src.string());
    cfg.add("bind_dst", dst);
    if (ro) cfg.add("bind_ro", "1");
  };
  bind(dir / "hostname", "/etc/hostname", false);
  bind(dir / "hosts", "/etc/hosts", false);
  if (!spec.resolv_conf.empty()) bind(dir / "resolv.conf", "/etc/resolv.conf", false);
  for (const auto& m : spec.mounts) bind(m.source, m.target, m.read_only);
  cfg.add_process(spec.process);
  if (auto r = cfg.send(ctl.get()); !r) return fail(r.error());
  // While the init builds the rootfs: on cgroup v1 moving a task waits for an RCU grace period
  // (cgroup_threadgroup_rwsem), the largest single cost of a start; the two overlap.
  if (auto r = cgroups_.attach(spec.cgroup, pid); !r) return fail(r.error());

  if (auto r = read_reply(ctl.get(), 10s); !r) return fail(r.error().wrap("set up container"));
  // Step 4 of the sequence: networks are attached here, while the init waits.
  if (attach)
    if (auto r = attach(pid); !r) return fail(r.error().wrap("attach networks"));
  if (::send(ctl.get(), "G", 1, MSG_NOSIGNAL) != 1) return fail_errno("start service");
  auto started = read_reply(ctl.get(), 10s);
  if (!started) return fail(started.error().wrap("start service"));

  ContainerProcess proc{pid, process_start_time(pid), started_at};
  kill_child.dismiss();
  drop_cgroup.dismiss();
  return proc;
}

Result<ExecProcess> Engine::spawn(const ContainerProcess& p, const std::string& cgroup,
                                  const ProcessSpec& process, const Stdio& stdio) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, p.pid, 0)));
  if (!pidfd || process_start_time(p.pid) != p.start_time) return fail("container is not running");
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return fail_errno("socketpair");
  UniqueFd ctl(sv[0]), child_ctl(sv[1]);
  std::string init = init_.string();
  char arg0[] = "stack-init";
  char arg1[] = "exec";
  char* argv[] = {arg0, arg1, nullptr};
  ChildArgs args{init.c_str(), argv, child_ctl.get(), pidfd.get(), {stdio.in, stdio.out, stdio.err}};
  pid_t pid = STACK_TRY_CTX(clone_exec(0, args), "start exec helper");
  child_ctl.reset();
  ScopeGuard kill_child([&] { kill_and_reap(pid); });
  // Into the cgroup before it enters the container, so the command is limited from its start.
  if (auto r = cgroups_.attach(cgroup, pid); !r) return fail(r.error());
  ConfigWriter cfg;
  cfg.add_process(process);
  if (auto r = cfg.send(ctl.get()); !r) return fail(r.error());
  if (auto r = read_reply(ctl.get(), 10s); !r) return fail(r.error());
  ExecProcess helper{pid, UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)))};
  if (!helper.pidfd) return fail_errno("pidfd of exec helper");
  kill_child.dismiss();
  return helper;
}

Result<int> Engine::exec(const ContainerProcess& p, const std::string& cgroup,
                         const ProcessSpec& process) {
  auto helper = spawn(p, cgroup, process, {});
  if (!helper) return fail(helper.error());
  // Like system(3): the terminal's Ctrl-C reaches the command directly, not us.
  struct sigaction ign {}, old_int{}, old_quit{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ign, &old_int);
  ::sigaction(SIGQUIT, &ign, &old_quit);
  int status = 0;
  pid_t r;
  do r = ::waitpid(helper->pid, &status, 0);
  while (r < 0 && errno == EINTR);
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGQUIT, &old_quit, nullptr);
  if (r < 0) return fail_errno("wait for exec helper");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace stack::engine
