// Creating and starting a container, and entering one: the engine's half of the handshake
// documented at the top of src/engine/init/init.c, in two phases (create, then start: the
// caller attaches networks between). Root on the host. Every kernel call goes through the
// KernelSeams and the CgroupDriver: nothing here includes a syscall header.
#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "common/scope_guard.h"
#include "common/unique_fd.h"
#include "engine/container.h"
#include "engine/init_message.h"
#include "engine/wire.h"

namespace stack::engine {

namespace {

using namespace std::chrono_literals;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* reply_name(uint16_t tag) {
  return tag == W_READY     ? "READY"
         : tag == W_STARTED ? "STARTED"
         : tag == W_MOUNTED ? "MOUNTED"
         : tag == W_ERROR   ? "ERROR"
                            : "?";
}

// One reply of the init: TAG (READY, or STARTED with its pid), or ERROR (why, any bytes). The
// init may have died instead.
Result<void> expect_reply(InitChannel& ctl, uint16_t tag, std::chrono::milliseconds timeout) {
  auto body = ctl.receive(timeout);
  if (!body) return fail(body.error());
  auto records = wire::decode(*body);
  if (!records) return fail(records.error());
  if (records->size() != 1) return fail("malformed reply from container init");
  const auto& r = records->front();
  if (r.tag == W_ERROR) return fail(std::string(r.value));
  if (r.tag != tag)
    return fail("unexpected reply " + std::string(reply_name(r.tag)) + " (" +
                std::to_string(r.tag) + ") from container init, expected " + reply_name(tag));
  if (tag == W_STARTED)
    if (auto pid = wire::as_u32(r); !pid) return fail(pid.error());
  return {};
}

}  // namespace

Created::Created(Created&& o) noexcept
    : engine_(std::exchange(o.engine_, nullptr)),
      name_(std::move(o.name_)),
      cgroup_(std::move(o.cgroup_)),
      pid_(std::exchange(o.pid_, 0)),
      start_time_(o.start_time_),
      pidfd_(std::move(o.pidfd_)),
      netns_(std::move(o.netns_)),
      ctl_(std::move(o.ctl_)) {}

Created& Created::operator=(Created&& o) noexcept {
  if (this != &o) {
    release();
    engine_ = std::exchange(o.engine_, nullptr);
    name_ = std::move(o.name_);
    cgroup_ = std::move(o.cgroup_);
    pid_ = std::exchange(o.pid_, 0);
    start_time_ = o.start_time_;
    pidfd_ = std::move(o.pidfd_);
    netns_ = std::move(o.netns_);
    ctl_ = std::move(o.ctl_);
  }
  return *this;
}

Created::~Created() { release(); }

void Created::release() {
  if (engine_) std::exchange(engine_, nullptr)->discard(*this);
}

Engine::Engine(std::filesystem::path init_binary, CgroupDriver& cgroups, KernelSeams kernel)
    : init_(std::move(init_binary)), cgroups_(cgroups), kernel_(kernel) {}

void Engine::discard(Created& c) {
  // The init first: a cgroup holding a process cannot be removed. Closing CTL alone would do
  // (the init exits when GO never comes), but not before it has finished building the root.
  c.ctl_.reset();
  kernel_.processes.kill(c.pid_, c.pidfd_.get());
  kernel_.processes.reap(c.pid_);
  c.pidfd_.reset();
  c.netns_.reset();
  (void)cgroups_.remove(c.cgroup_);
}

Result<void> Engine::release_cgroup(const std::string& cgroup) {
  auto stray = cgroups_.pids(cgroup);
  if (!stray || stray->empty()) return cgroups_.remove(cgroup);
  for (pid_t p : *stray) kernel_.processes.kill(p);
  Result<void> removed;
  for (int i = 0; i < 200 && !(removed = cgroups_.remove(cgroup)); i++)
    std::this_thread::sleep_for(5ms);  // a killed task leaves its cgroup when it has exited
  return removed;
}

Result<Created> Engine::create(const ContainerSpec& spec, const BeforePivot& before_pivot) {
  if (auto r = check_c_strings(spec.process); !r) return fail(r.error());
  auto filter = filter_for(spec.process);
  if (!filter) return fail(filter.error());
  // A user namespace made here owns the container's other namespaces: never the host's, nor
  // another container's, except where an OCI bundle joins the user namespace itself (its
  // other namespaces then belong to that one, as with crun).
  bool own_userns = spec.userns && spec.join_userns.empty();
  if (spec.userns && (spec.host_network || (own_userns && !spec.join_netns.empty())))
    return fail("a user namespace needs the container's own network namespace");
  if (spec.userns &&
      (spec.host_uts || spec.host_ipc || (own_userns && !spec.join_ipcns.empty())))
    return fail("a user namespace needs the container's own UTS and IPC namespaces");
  if (spec.userns && (spec.host_pid || (own_userns && !spec.join_pidns.empty())))
    return fail("a user namespace needs the container's own PID namespace");
  if (!spec.join_userns.empty() && !spec.userns)
    return fail("a joined user namespace needs its mapping (for the container's directory)");
  if (spec.root_in_place && ((spec.userns && spec.join_mntns.empty()) || spec.layers.size() != 1))
    return fail("a root in place is one directory, without a user namespace");
  if (!spec.join_mntns.empty() && !spec.root_in_place)
    return fail("a joined mount namespace needs the root in place (its directory there)");
  std::string lowers = STACK_TRY_CTX(lower_dirs(spec.layers), "rootfs");
  auto& files = kernel_.files;
  auto& processes = kernel_.processes;
  const auto& dir = spec.dir;
  // The overlay's root directory takes its owner and mode from the upper layer: 0755, or a
  // service running as another user could not even reach "/". The containers/ directory
  // above is 0711, so nothing here is listable by other host users.
  for (const char* sub : {"rootfs", "upper", "work"})
    if (auto r = files.make_dir(dir / sub, 0755); !r) return fail(r.error());
  if (auto r = files.write(dir / "hostname", spec.hostname + "\n"); !r) return fail(r.error());
  if (auto r = files.write(dir / "hosts", spec.hosts); !r) return fail(r.error());
  if (!spec.resolv_conf.empty())
    if (auto r = files.write(dir / "resolv.conf", spec.resolv_conf); !r) return fail(r.error());
  files.remove(dir / "exit");

  // A cgroup left by an earlier run would carry its OOM count; start from a fresh one. If an
  // engine died between starting this container and recording it, its processes are still
  // in there: they are killed, or they would run unrecorded beside the new one.
  (void)release_cgroup(spec.cgroup);
  CgroupLimits limits = spec.limits;
  if (!spec.privileged) {
    // Allow rules only, so their order decides nothing; the container's own come first, in
    // their order, as crun lists them in v1's devices.list (the OCI validation reads them so).
    limits.devices = spec.device_rules;
    const auto& defaults = default_device_rules();
    limits.devices->insert(limits.devices->end(), defaults.begin(), defaults.end());
  }
  if (auto r = cgroups_.create(spec.cgroup, limits); !r) return fail(r.error());
  ScopeGuard drop_cgroup([&] { (void)cgroups_.remove(spec.cgroup); });

  auto dirfd = files.open_dir(dir);
  if (!dirfd) return fail(dirfd.error());
  // A user namespace: made here with the maps written; the init joins it once it has built
  // the root as root on the host (step 3), and makes the network, UTS and IPC namespaces
  // then, so that they belong to it.
  UniqueFd userns;
  bool layers_shifted = false;  // copies owned by the mapped ids: mounted as they are
  if (spec.userns) {
    if (auto r = kernel_.userns.own_for(dir, *spec.userns); !r)
      return fail(r.error().wrap("user namespace"));
    userns = spec.join_userns.empty()
                 ? STACK_TRY_CTX(kernel_.userns.make(*spec.userns), "start " + spec.name)
                 : STACK_TRY_CTX(kernel_.userns.open(spec.join_userns), "user namespace");
    using LO = ContainerSpec::LayerOwnership;
    layers_shifted = !spec.root_in_place &&
                     (spec.userns_layers == LO::kCopy ||
                      (spec.userns_layers == LO::kAuto && !spec.layers.empty() &&
                       !kernel_.userns.idmap_supported(spec.layers.front(), userns.get())));
    if (layers_shifted) {
      // The copies shift owners by one range (userns_layers.cpp).
      if (!spec.userns->uid_map.empty() || !spec.userns->gid_map.empty())
        return fail("user namespace: several id ranges need idmapped layers, which " +
                    spec.layers.front().string() + "'s filesystem does not support");
      if (spec.userns_layer_cache.empty()) return fail("user namespace: no cache for layer copies");
      std::vector<std::filesystem::path> copies;
      for (const auto& layer : spec.layers)
        copies.push_back(STACK_TRY_CTX(
            kernel_.userns.shifted_layer(layer, *spec.userns, spec.userns_layer_cache),
            "user namespace"));
      lowers = STACK_TRY_CTX(lower_dirs(copies), "rootfs");
    }
  }
  InitLaunch how;
  how.namespaces = (spec.join_mntns.empty() ? unsigned{kMountNs} : 0u) |
                   (spec.host_pid || !spec.join_pidns.empty() ? 0u : unsigned{kPidNs});
  if (!spec.userns)
    how.namespaces |= (spec.host_uts || !spec.join_utsns.empty() ? 0u : unsigned{kUtsNs}) |
                      (spec.host_ipc || !spec.join_ipcns.empty() ? 0u : unsigned{kIpcNs}) |
                      (spec.host_network || !spec.join_netns.empty() ? 0u : unsigned{kNetNs});
  how.fd4 = dirfd->get();
  how.userns_fd = userns.get();
  how.join_netns = spec.join_netns;
  how.join_pidns = spec.join_pidns;
  how.join_ipcns = spec.join_ipcns;
  how.join_utsns = spec.join_utsns;
  how.join_cgroupns = spec.join_cgroupns;
  how.join_mntns = spec.join_mntns;
  how.inherit_stdio = spec.inherit_stdio;
  auto launched = kernel_.launcher.launch(init_, how);
  userns.reset();
  dirfd->reset();
  if (!launched) return fail(launched.error().wrap("create namespaces"));

  Created c;
  c.name_ = spec.name;
  c.cgroup_ = spec.cgroup;
  c.pid_ = launched->pid;
  c.ctl_ = std::move(launched->ctl);
  // From here on a failure kills and reaps the init, then removes the cgroup; c becomes the
  // caller's (and its destructor the one to discard it) only once READY is in.
  drop_cgroup.dismiss();
  ScopeGuard discard_c([&] { discard(c); });
  // The init is our child and unreaped: its PID cannot be reused while we hold it, so the
  // pidfd and the start time are those of this very process.
  c.pidfd_ = STACK_TRY_CTX(processes.open_pidfd(c.pid_), "create namespaces");
  c.start_time_ = processes.start_time(c.pid_);

  // A cgroup namespace of its own is made by the init before READY (at create, as crun's) and
  // takes the init's cgroup then as its root: the move must come first.
  if (spec.cgroupns)
    if (auto r = cgroups_.attach(spec.cgroup, c.pid_); !r) return fail(r.error());
  if (auto r = c.ctl_->send(
          container_config(spec, lowers, layers_shifted, *filter, bool(before_pivot)));
      !r)
    return fail(r.error().wrap("set up container"));
  // Else while the init builds the rootfs: on cgroup v1 moving a task waits for an RCU grace
  // period (cgroup_threadgroup_rwsem), the largest single cost of a start; the two overlap.
  if (!spec.cgroupns)
    if (auto r = cgroups_.attach(spec.cgroup, c.pid_); !r) return fail(r.error());
  if (before_pivot) {
    // A failure here (a hook's) discards the init: its mounts die with its mount namespace.
    if (auto r = expect_reply(*c.ctl_, W_MOUNTED, 10s); !r)
      return fail(r.error().wrap("set up container"));
    if (auto r = before_pivot(c.pid_, c.pidfd_.get()); !r) return fail(r.error());
    if (auto r = c.ctl_->send(wire::Writer().bytes(W_PIVOT, "").message()); !r)
      return fail(r.error().wrap("set up container"));
  }
  if (auto r = expect_reply(*c.ctl_, W_READY, 10s); !r)
    return fail(r.error().wrap("set up container"));
  // Only now: with a user namespace the init made its network namespace in step 3.
  if (how.namespaces & kNetNs || spec.userns)
    c.netns_ = STACK_TRY_CTX(processes.open_netns(c.pid_), "set up container");
  discard_c.dismiss();
  c.engine_ = this;
  return c;
}

Result<ContainerProcess> Engine::start(Created created) {
  Created c = std::move(created);
  if (!c.engine_) return fail("start: not a created container (started, abandoned or moved from)");
  if (c.engine_ != this) return fail("start " + c.name_ + ": created by another engine");
  int64_t started_at = unix_ms();
  if (auto r = c.ctl_->send(wire::Writer().bytes(W_GO, "").message()); !r)
    return fail(r.error().wrap("start service"));  // c's destructor discards it
  if (auto r = expect_reply(*c.ctl_, W_STARTED, 10s); !r)
    return fail(r.error().wrap("start service"));
  ContainerProcess proc{c.pid_, c.start_time_, started_at};
  c.engine_ = nullptr;  // running: no longer ours to discard
  return proc;
}

void Engine::abandon(Created created) {
  Created c = std::move(created);
  if (c.engine_) std::exchange(c.engine_, nullptr)->discard(c);
}

Result<ExecProcess> Engine::spawn(const ContainerProcess& p, const std::string& cgroup,
                                  const ProcessSpec& process, const Stdio& stdio) {
  if (auto r = check_c_strings(process); !r) return fail(r.error());
  auto filter = filter_for(process);
  if (!filter) return fail(filter.error());
  auto pidfd = kernel_.processes.open_pidfd(p.pid);
  if (!pidfd || kernel_.processes.start_time(p.pid) != p.start_time)
    return fail("container is not running");
  InitLaunch how;
  how.mode = InitLaunch::Mode::kExec;
  how.fd4 = pidfd->get();
  how.stdio[0] = stdio.in, how.stdio[1] = stdio.out, how.stdio[2] = stdio.err;
  auto launched = kernel_.launcher.launch(init_, how);
  if (!launched) return fail(launched.error().wrap("start exec helper"));
  pid_t pid = launched->pid;
  auto& ctl = *launched->ctl;
  ScopeGuard kill_child([&] {
    kernel_.processes.kill(pid);
    kernel_.processes.reap(pid);
  });
  // Into the cgroup before it enters the container, so the command is limited from its start.
  if (auto r = cgroups_.attach(cgroup, pid); !r) return fail(r.error());
  wire::Writer cfg;
  add_process(cfg, process, *filter);
  if (kernel_.userns.in_other(p.pid)) cfg.u32(W_USERNS, 1);
  if (stdio.terminal) cfg.u32(W_TTY, 1);
  if (auto r = ctl.send(cfg.message()); !r) return fail(r.error());
  if (auto r = expect_reply(ctl, W_STARTED, 10s); !r) return fail(r.error());
  auto helper = kernel_.processes.open_pidfd(pid);
  if (!helper) return fail(helper.error().wrap("pidfd of exec helper"));
  kill_child.dismiss();
  return ExecProcess{pid, std::move(*helper)};
}

}  // namespace stack::engine
