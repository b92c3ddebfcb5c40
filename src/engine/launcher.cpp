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

#include <algorithm>
#include <chrono>
#include <string>

#include "common/files.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"
#include "engine/container.h"
#include "engine/security.h"
#include "engine/userns.h"
#include "engine/wire.h"

namespace stack::engine {

namespace {

using namespace std::chrono_literals;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// execve(2) takes C strings: a NUL in an argument or an environment value would silently cut
// it short (and, in the engine's old message format, injected configuration). Refused here,
// before anything is made, naming what holds it.
Result<void> check_c_strings(const ProcessSpec& p) {
  for (size_t i = 0; i < p.argv.size(); i++)
    if (auto at = p.argv[i].find('\0'); at != std::string::npos)
      return fail("argument " + std::to_string(i) + " of the command holds a NUL byte at offset " +
                  std::to_string(at) + ": execve(2) cannot pass it");
  for (const auto& e : p.env)
    if (auto at = e.find('\0'); at != std::string::npos) {
      auto eq = e.find('=');
      std::string key = e.substr(0, std::min(eq, at));
      return fail("environment variable " + key + " holds a NUL byte" +
                  (eq < at ? " at offset " + std::to_string(at - eq - 1) + " of its value" : "") +
                  ": execve(2) cannot pass it");
    }
  if (p.cwd.find('\0') != std::string::npos) return fail("the working directory holds a NUL byte");
  return {};
}

// P's seccomp program, compiled (or found in the cache) with P's own capabilities: which rules
// of the default profile apply depends on them (CAP_SYS_ADMIN allows mount, ...).
struct Filter {
  std::shared_ptr<const std::string> program;  // null: none
  unsigned flags = 0;
};
Result<Filter> filter_for(const ProcessSpec& p) {
  SeccompSpec spec = p.seccomp;
  spec.capabilities = p.capabilities;
  Filter f;
  f.program = STACK_TRY_CTX(seccomp_program(spec), "seccomp");
  f.flags = STACK_TRY_CTX(seccomp_filter_flags(spec), "seccomp");
  return f;
}

void add_process(wire::Writer& w, const ProcessSpec& p, const Filter& filter) {
  for (const auto& a : p.argv) w.bytes(W_ARG, a);
  for (const auto& e : p.env) w.bytes(W_ENV, e);
  w.bytes(W_CWD, p.cwd.empty() ? "/" : p.cwd);
  w.u32(W_UID, p.uid).u32(W_GID, p.gid);
  for (gid_t g : p.groups) w.u32(W_GROUP, g);
  w.u64(W_CAPS, p.capabilities);
  w.u32(W_NO_NEW_PRIVS, p.no_new_privs ? 1 : 0);
  if (filter.program && !filter.program->empty()) {
    w.bytes(W_SECCOMP, *filter.program);
    if (filter.flags) w.u32(W_SECCOMP_FLAGS, filter.flags);
  }
}

// One reply of the init: READY, STARTED (its pid) or ERROR (why, any bytes). The init may
// have died instead.
Result<wire::Record> read_reply(int fd, std::chrono::milliseconds timeout, std::string& body) {
  auto msg = wire::receive(fd, timeout);
  if (!msg) return fail(msg.error());
  body = std::move(*msg);
  auto records = wire::decode(body);
  if (!records) return fail(records.error());
  if (records->size() != 1) return fail("malformed reply from container init");
  const auto& r = records->front();
  if (r.tag == W_ERROR) return fail(std::string(r.value));
  if (r.tag != W_READY && r.tag != W_STARTED)
    return fail("unexpected reply " + std::to_string(r.tag) + " from container init");
  return r;
}

Result<void> expect_reply(int fd, uint16_t tag, std::chrono::milliseconds timeout) {
  std::string body;
  auto r = read_reply(fd, timeout, body);
  if (!r) return fail(r.error());
  if (r->tag != tag)
    return fail("unexpected reply " + std::to_string(r->tag) + " from container init");
  if (tag == W_STARTED)
    if (auto pid = wire::as_u32(*r); !pid) return fail(pid.error());
  return {};
}

struct ChildArgs {
  const char* init;
  char* const* argv;
  int ctl;
  int fd4;
  int fd5;  // the user namespace for the init, or -1
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
  if (::dup2(a->ctl, 3) < 0) ::_exit(126);
  if (fd4 >= 0 && ::dup2(fd4, 4) < 0) ::_exit(126);
  if (fd5 >= 0 && ::dup2(fd5, 5) < 0) ::_exit(126);
  ::syscall(SYS_close_range, fd5 >= 0 ? 6u : 5u, ~0u, 0u);
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
  if (auto r = check_c_strings(spec.process); !r) return fail(r.error());
  auto filter = filter_for(spec.process);
  if (!filter) return fail(filter.error());
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
  CgroupLimits limits = spec.limits;
  if (!spec.privileged) limits.devices = default_device_rules();
  if (auto r = cgroups_.create(spec.cgroup, limits); !r) return fail(r.error());
  ScopeGuard drop_cgroup([&] { (void)cgroups_.remove(spec.cgroup); });

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return fail_errno("socketpair");
  UniqueFd ctl(sv[0]), child_ctl(sv[1]);
  UniqueFd dirfd(::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!dirfd) return fail_errno("open " + dir.string());
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));

  std::string init = init_.string();
  char arg0[] = "stack-init";
  char* argv[] = {arg0, nullptr};
  // A user namespace: made here with the maps written; the init joins it once it has built
  // the root as root on the host (step 3), and makes the network, UTS and IPC namespaces
  // then, so that they belong to it.
  UniqueFd userns;
  bool layers_shifted = false;  // copies owned by the mapped ids: mounted as they are
  if (spec.userns) {
    if (spec.host_network || !spec.join_netns.empty())
      return fail("a user namespace needs the container's own network namespace");
    if (auto r = own_for(dir, *spec.userns); !r) return fail(r.error().wrap("user namespace"));
    userns = STACK_TRY_CTX(make_userns(*spec.userns), "start " + spec.name);
    using LO = ContainerSpec::LayerOwnership;
    layers_shifted = spec.userns_layers == LO::kCopy ||
                     (spec.userns_layers == LO::kAuto && !spec.layers.empty() &&
                      !idmap_supported(spec.layers.front(), userns.get()));
    if (layers_shifted) {
      if (spec.userns_layer_cache.empty()) return fail("user namespace: no cache for layer copies");
      std::vector<std::filesystem::path> copies;
      for (const auto& layer : spec.layers)
        copies.push_back(STACK_TRY_CTX(shifted_layer(layer, *spec.userns, spec.userns_layer_cache),
                                       "user namespace"));
      lowers = STACK_TRY_CTX(lower_dirs(copies), "rootfs");
    }
  }
  ChildArgs args{init.c_str(), argv, child_ctl.get(), dirfd.get(), userns.get(),
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
  int ns = CLONE_NEWPID | CLONE_NEWNS;
  if (!spec.userns)
    ns |= CLONE_NEWUTS | CLONE_NEWIPC |
          (spec.host_network || !spec.join_netns.empty() ? 0 : CLONE_NEWNET);
  auto cloned = clone_exec(ns, args);
  userns.reset();
  if (own_netns && ::setns(own_netns.get(), CLONE_NEWNET) != 0) std::abort();  // never left astray
  pid_t pid = STACK_TRY_CTX(std::move(cloned), "create namespaces");
  int64_t started_at = unix_ms();
  child_ctl.reset();
  ScopeGuard kill_child([&] { kill_and_reap(pid); });

  wire::Writer cfg;
  cfg.bytes(W_ROOTFS, (dir / "rootfs").string())
      .bytes(W_UPPER, (dir / "upper").string())
      .bytes(W_WORK, (dir / "work").string())
      .bytes(W_LOWERDIRS, lowers)
      .bytes(W_HOSTNAME, spec.hostname)
      .u64(W_LOG_MAX_SIZE, static_cast<uint64_t>(spec.log_max_size))
      .u32(W_LOG_MAX_FILES, static_cast<uint32_t>(spec.log_max_files));
  auto bind = [&](const std::filesystem::path& src, const std::string& dst, bool ro) {
    cfg.nested(W_MOUNT, wire::Writer()
                            .bytes(W_MOUNT_SRC, src.string())
                            .bytes(W_MOUNT_DST, dst)
                            .u32(W_MOUNT_FLAGS, ro ? WIRE_MOUNT_RO : 0));
  };
  bind(dir / "hostname", "/etc/hostname", false);
  bind(dir / "hosts", "/etc/hosts", false);
  if (!spec.resolv_conf.empty()) bind(dir / "resolv.conf", "/etc/resolv.conf", false);
  for (const auto& m : spec.mounts) bind(m.source, m.target, m.read_only);
  for (const auto& d : spec.privileged ? host_devices() : default_devices())
    cfg.nested(W_DEVICE, wire::Writer()
                             .bytes(W_DEV_PATH, d.path)
                             .u32(W_DEV_TYPE, static_cast<uint32_t>(d.type))
                             .u32(W_DEV_MAJOR, d.major)
                             .u32(W_DEV_MINOR, d.minor)
                             .u32(W_DEV_MODE, d.mode));
  if (spec.userns) cfg.u32(W_USERNS, 1);
  if (layers_shifted) cfg.u32(W_LAYERS_SHIFTED, 1);
  if (spec.privileged) {
    cfg.u32(W_SYS_RW, 1);
  } else {
    for (const auto& m : masked_paths()) cfg.bytes(W_MASKED, m);
    for (const auto& r : readonly_paths()) cfg.bytes(W_READONLY, r);
  }
  add_process(cfg, spec.process, *filter);
  if (auto r = wire::send(ctl.get(), cfg.message()); !r) return fail(r.error());
  // While the init builds the rootfs: on cgroup v1 moving a task waits for an RCU grace period
  // (cgroup_threadgroup_rwsem), the largest single cost of a start; the two overlap.
  if (auto r = cgroups_.attach(spec.cgroup, pid); !r) return fail(r.error());

  if (auto r = expect_reply(ctl.get(), W_READY, 10s); !r)
    return fail(r.error().wrap("set up container"));
  // Step 4 of the sequence: networks are attached here, while the init waits.
  if (attach)
    if (auto r = attach(pid); !r) return fail(r.error().wrap("attach networks"));
  if (auto r = wire::send(ctl.get(), wire::Writer().bytes(W_GO, "").message()); !r)
    return fail(r.error().wrap("start service"));
  if (auto r = expect_reply(ctl.get(), W_STARTED, 10s); !r)
    return fail(r.error().wrap("start service"));

  ContainerProcess proc{pid, process_start_time(pid), started_at};
  kill_child.dismiss();
  drop_cgroup.dismiss();
  return proc;
}

Result<ExecProcess> Engine::spawn(const ContainerProcess& p, const std::string& cgroup,
                                  const ProcessSpec& process, const Stdio& stdio) {
  if (auto r = check_c_strings(process); !r) return fail(r.error());
  auto filter = filter_for(process);
  if (!filter) return fail(filter.error());
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, p.pid, 0)));
  if (!pidfd || process_start_time(p.pid) != p.start_time) return fail("container is not running");
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return fail_errno("socketpair");
  UniqueFd ctl(sv[0]), child_ctl(sv[1]);
  std::string init = init_.string();
  char arg0[] = "stack-init";
  char arg1[] = "exec";
  char* argv[] = {arg0, arg1, nullptr};
  ChildArgs args{init.c_str(), argv, child_ctl.get(),
                 pidfd.get(),  -1,   {stdio.in, stdio.out, stdio.err}};
  pid_t pid = STACK_TRY_CTX(clone_exec(0, args), "start exec helper");
  child_ctl.reset();
  ScopeGuard kill_child([&] { kill_and_reap(pid); });
  // Into the cgroup before it enters the container, so the command is limited from its start.
  if (auto r = cgroups_.attach(cgroup, pid); !r) return fail(r.error());
  wire::Writer cfg;
  add_process(cfg, process, *filter);
  if (in_other_userns(p.pid)) cfg.u32(W_USERNS, 1);
  if (stdio.terminal) cfg.u32(W_TTY, 1);
  if (auto r = wire::send(ctl.get(), cfg.message()); !r) return fail(r.error());
  if (auto r = expect_reply(ctl.get(), W_STARTED, 10s); !r) return fail(r.error());
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
