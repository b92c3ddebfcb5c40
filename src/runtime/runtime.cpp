// The runtime spec's lifecycle over the engine (see runtime.h). The engine's create and start
// are two calls on one Created object holding the init's control socket, while `create` and
// `start` are two processes; between them a holder process keeps that object:
//  1. create: reads config.json (refusing what cannot be honoured), makes <root>/<id>/ (0700),
//     binds <root>/<id>/ctl.sock, forks the holder;
//  2. holder: Engine::create (namespaces, cgroup, root built, the init waiting for GO, its
//     stdio the caller's: conmon's pipes, or a terminal whose master it sends to
//     --console-socket); while the init waits between its mounts and pivot_root it runs the
//     prestart and createRuntime hooks here and the createContainer hooks in the container's
//     namespaces (runtime-spec's points; holder.cpp); then reports
//     "OK pid start_time" (or the error) on a pipe, puts /dev/null on its own stdio, and waits
//     on the socket and on the init's pidfd;
//  3. create: records state.json, writes --pid-file, exits 0 (the holder's report decides);
//  4. start: connects, sends 'S'; the holder runs the startContainer hooks in the container's
//     namespaces, calls Engine::start (GO), answers, exits. The init
//     is reparented to the caller's subreaper (conmon) or PID 1, which reaps it. delete of a
//     created container sends 'D' instead (Engine::abandon); an init killed before start makes
//     the holder abandon it and exit.
// `run` without --detach needs no holder: it creates and starts in-process and waits.
#include "runtime/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/files.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "engine/container.h"
#include "runtime/bundle.h"
#include "runtime/console.h"
#include "runtime/holder.h"
#include "runtime/hooks.h"
#include "runtime/realtime.h"
#include "runtime/record.h"

namespace stack::runtime {

using json = nlohmann::json;
using namespace std::chrono_literals;

Runtime::Runtime(std::filesystem::path root, std::filesystem::path init,
                 std::function<void(const std::string&)> warn)
    : root_(std::move(root)), init_(std::move(init)), warn_(std::move(warn)) {}

Result<void> Runtime::create(const std::string& id, const CreateOptions& o) {
  if (auto r = check_id(id); !r) return r;
  if (auto r = make_dirs(root_, 0700); !r) return fail(r.error().wrap("state root"));
  ::chmod(root_.c_str(), 0700);
  auto dir = root_ / id;
  if (::mkdir(dir.c_str(), 0700) != 0)
    return errno == EEXIST ? fail("container " + id + " already exists")
                           : fail_errno("create " + dir.string());
  // Taken before the guard below: a failed create removes its directory while still holding
  // the lock, so a delete waiting for it finds nothing half-made.
  auto lock = lock_container(dir, id);
  if (!lock) return fail(lock.error());
  ScopeGuard drop_dir([&] { (void)remove_tree(dir); });
  std::error_code ec;
  auto bundle = std::filesystem::absolute(o.bundle, ec).lexically_normal();
  auto b = load_bundle(bundle, id, dir / "container");
  if (!b) return fail(b.error());
  if (auto c = check_console(*b, o); !c) return c;
  for (const auto& w : b->warnings) warn_(w);
  auto config = read_file(bundle / "config.json");
  if (!config) return fail(config.error());
  if (auto r = write_file_atomic(dir / "config.json", *config, 0600); !r) return r;

  auto sock = dir / "ctl.sock";
  if (sock.string().size() >= sizeof(sockaddr_un::sun_path))
    return fail("state root too long for a socket path: " + sock.string());
  UniqueFd listen_fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  auto a = socket_address(sock);
  if (!listen_fd || ::bind(listen_fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd.get(), 4) != 0)
    return fail_errno("listen on " + sock.string());
  int rp[2];
  if (::pipe2(rp, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd report_rd(rp[0]), report_wr(rp[1]);
  pid_t holder = ::fork();
  if (holder < 0) return fail_errno("fork");
  if (holder == 0) {
    report_rd.reset();
    lock->reset();  // the holder outlives this create: the lock is the caller's only
    hold(init_, *b, id, o, bundle, listen_fd.get(), report_wr.get());
  }
  report_wr.reset();
  listen_fd.reset();
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = ::read(report_rd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    report.append(buf, static_cast<size_t>(n));
  }
  if (report.rfind("OK ", 0) != 0) {
    ::waitpid(holder, nullptr, 0);
    return fail(report.rfind("ERR ", 0) == 0 ? report.substr(4)
                                             : "create " + id + ": the holder died");
  }
  Record r;
  r.id = id;
  r.bundle = bundle.string();
  r.created = rfc3339_now();
  r.cgroup = b->spec.cgroup;
  std::sscanf(report.c_str() + 3, "%d %lu", &r.pid, &r.start_time);
  for (const auto& [k, v] : b->annotations) r.annotations[k] = v;
  if (auto w = write_record(dir, r); !w) {
    (void)ask_holder(dir, 'D');
    return w;
  }
  if (auto w = write_pid_file(o.pid_file, r.pid); !w) {
    (void)ask_holder(dir, 'D');
    return w;
  }
  drop_dir.dismiss();
  return {};
}

Result<void> Runtime::start(const std::string& id) {
  if (auto r = check_id(id); !r) return r;
  auto dir = root_ / id;
  auto lock = lock_container(dir, id);
  if (!lock) return fail(lock.error());
  auto r = read_record(dir, id);
  if (!r) return fail(r.error());
  if (auto st = status_of(*r); st != "created")
    return fail("cannot start a container that is " + st + " (" + id + ")");
  auto reply = ask_holder(dir, 'S');
  if (!reply) return fail(reply.error().wrap("start " + id));
  r->started = true;
  if (auto w = write_record(dir, *r); !w) return w;
  std::filesystem::remove(dir / "ctl.sock");
  auto config = read_file(dir / "config.json");
  if (config)
    if (auto b = parse_config(*config, r->bundle, id, dir / "container"); b)
      run_hooks_warning(b->hooks.poststart, "poststart", state_json(*r, "running").dump(), warn_);
  return {};
}

Result<std::string> Runtime::state(const std::string& id) {
  if (auto r = check_id(id); !r) return fail(r.error());
  auto r = read_record(root_ / id, id);
  if (!r) return fail(r.error());
  return state_json(*r, status_of(*r)).dump(2);
}

Result<void> Runtime::kill(const std::string& id, int sig, bool all) {
  if (auto r = check_id(id); !r) return r;
  auto lock = lock_container(root_ / id, id);
  if (!lock) return fail(lock.error());
  auto r = read_record(root_ / id, id);
  if (!r) return fail(r.error());
  return signal(*r, sig, all);
}

Result<void> Runtime::signal(const Record& rec, int sig, bool all) {
  const Record* r = &rec;
  const std::string& id = rec.id;
  if (status_of(*r) == "stopped") return fail("container " + id + " is not running");
  if (all) {
    auto drv = cgroups();
    if (!drv) return fail(drv.error());
    auto pids = (*drv)->pids(r->cgroup);
    if (!pids) return fail(pids.error().wrap("kill " + id));
    for (pid_t p : *pids) ::kill(p, sig);
    return {};
  }
  // Through a pidfd checked against the recorded start time: a reused pid is never signalled.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, r->pid, 0)));
  if (!pidfd || live_start_time(r->pid) != r->start_time)
    return fail("container " + id + " is not running");
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0)
    return fail_errno("kill " + id);
  return {};
}

Result<void> Runtime::freeze(const std::string& id, bool frozen) {
  if (auto r = check_id(id); !r) return r;
  auto dir = root_ / id;
  auto lock = lock_container(dir, id);
  if (!lock) return fail(lock.error());
  auto r = read_record(dir, id);
  if (!r) return fail(r.error());
  auto st = status_of(*r);
  if (frozen && st != "running") return fail("cannot pause a container that is " + st);
  if (!frozen && st != "paused") return fail("cannot resume a container that is " + st);
  auto drv = cgroups();
  if (!drv) return fail(drv.error());
  if (auto f = (*drv)->freeze(r->cgroup, frozen); !f)
    return fail(f.error().wrap((frozen ? "pause " : "resume ") + id));
  r->paused = frozen;
  return write_record(dir, *r);
}

Result<void> Runtime::remove(const std::string& id, bool force) {
  if (auto r = check_id(id); !r) return r;
  auto dir = root_ / id;
  auto lock = lock_container(dir, id);
  if (!lock) return force ? Result<void>{} : fail(lock.error());
  auto r = read_record(dir, id);
  if (!r) {
    // Under the lock, a directory without state.json is no create in progress but one that
    // died half-way: --force clears it.
    if (force) return remove_tree(dir);
    return fail(r.error());
  }
  auto st = status_of(*r);
  if (st == "running" && !force)
    return fail("cannot delete container " + id + " that is running: stop it or use --force");
  if (st == "created") {
    if (auto a = ask_holder(dir, 'D'); !a) {  // no holder: kill the init ourselves
      ::kill(r->pid, SIGKILL);
    }
    wait_gone(r->pid, r->start_time, 10s);
  } else if (st == "running" || st == "paused") {
    if (st == "paused" && !force)
      return fail("cannot delete container " + id + " that is paused: resume it or use --force");
    if (auto k = signal(*r, SIGKILL, false); !k && status_of(*r) != "stopped") return k;
    if (st == "paused")  // a frozen task dies only once thawed
      if (auto drv = cgroups(); drv) (void)(*drv)->freeze(r->cgroup, false);
    if (!wait_gone(r->pid, r->start_time, 10s))
      return fail("delete " + id + ": the container did not exit after SIGKILL");
  }
  if (auto c = cleanup(dir, *r); !c) return fail(c.error().wrap("delete " + id));
  auto config = read_file(dir / "config.json");
  if (config)
    if (auto b = parse_config(*config, r->bundle, id, dir / "container"); b)
      run_hooks_warning(b->hooks.poststop, "poststop", state_json(*r, "stopped").dump(), warn_);
  return remove_tree(dir);
}

Result<int> Runtime::run(const std::string& id, const CreateOptions& o, bool detach) {
  if (detach) {
    if (auto c = create(id, o); !c) return fail(c.error());
    if (auto s = start(id); !s) {
      (void)remove(id, true);
      return fail(s.error());
    }
    return 0;
  }
  if (auto r = check_id(id); !r) return fail(r.error());
  if (auto r = make_dirs(root_, 0700); !r) return fail(r.error().wrap("state root"));
  auto dir = root_ / id;
  if (::mkdir(dir.c_str(), 0700) != 0)
    return errno == EEXIST ? fail("container " + id + " already exists")
                           : fail_errno("create " + dir.string());
  auto lock = lock_container(dir, id);  // until it runs (as create's, before the guard)
  if (!lock) return fail(lock.error());
  ScopeGuard drop_dir([&] { (void)remove_tree(dir); });
  std::error_code ec;
  auto bundle = std::filesystem::absolute(o.bundle, ec).lexically_normal();
  auto b = load_bundle(bundle, id, dir / "container");
  if (!b) return fail(b.error());
  if (auto c = check_console(*b, o); !c) return fail(c.error());
  for (const auto& w : b->warnings) warn_(w);
  auto config = read_file(bundle / "config.json");
  if (!config) return fail(config.error());
  if (auto w = write_file_atomic(dir / "config.json", *config, 0600); !w) return fail(w.error());
  // Signals for the container, forwarded to its init once it runs.
  sigset_t fwd;
  sigemptyset(&fwd);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH})
    sigaddset(&fwd, s);
  sigprocmask(SIG_BLOCK, &fwd, nullptr);
  UniqueFd sfd(::signalfd(-1, &fwd, SFD_CLOEXEC));
  auto drv = cgroups();
  if (!drv) return fail(drv.error());
  engine::Engine eng(init_, **drv);
  std::optional<engine::Created> c;
  auto r = make_container(eng, *b, id, bundle, o.console_socket, c);
  if (!r) return fail(r.error());
  if (auto w = write_record(dir, *r); !w) return fail(w.error());
  if (auto w = write_pid_file(o.pid_file, r->pid); !w) return fail(w.error());
  auto started = start_container(eng, *b, *r, c);
  if (!started) return fail(started.error());
  r->started = true;
  (void)write_record(dir, *r);
  run_hooks_warning(b->hooks.poststart, "poststart", state_json(*r, "running").dump(), warn_);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, r->pid, 0)));
  drop_dir.dismiss();
  lock->reset();  // kill and delete of a running container may come from others now
  for (;;) {
    pollfd p[2] = {{pidfd.get(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) continue;
    if (p[0].revents) break;
    signalfd_siginfo si{};
    if (::read(sfd.get(), &si, sizeof si) == sizeof si)
      ::syscall(SYS_pidfd_send_signal, pidfd.get(), static_cast<int>(si.ssi_signo), nullptr, 0);
  }
  int status = 0;
  while (::waitpid(r->pid, &status, 0) < 0 && errno == EINTR) {
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (auto d = remove(id, true); !d) return fail(d.error());
  return code;
}

// process.execCPUAffinity, set on this process: the engine's exec helper inherits it before it
// joins the container's cgroup ("initial"), and its command after. Joining changes it only into
// a cpuset of the container's own (sched_setaffinity(2) is reset to the cpuset's CPUs), so
// without one the mask set here is also the one the command runs on ("final").
static Result<void> set_exec_affinity(const ExecAffinity& a, const model::CgroupLimits& limits) {
  bool own_cpuset = !limits.cpuset_cpus.empty() || !limits.cpuset_mems.empty();
  if (!a.final.empty() && own_cpuset)
    return fail(
        "process.execCPUAffinity.final: not with linux.resources.cpu.cpus or mems "
        "(joining the container's cpuset resets the affinity after this runtime set it)");
  if (!a.initial.empty() && !a.final.empty() && a.initial != a.final)
    return fail(
        "process.execCPUAffinity: initial and final differ (this runtime sets the "
        "affinity once, before the exec joins the container's cgroup)");
  const auto& mask = a.final.empty() ? a.initial : a.final;
  if (mask.empty()) return {};
  cpu_set_t set;
  CPU_ZERO(&set);
  for (size_t n = 0; n < mask.size() * 64; n++)
    if (mask[n / 64] >> (n % 64) & 1) CPU_SET(n, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0)
    return fail_errno(std::string("process.execCPUAffinity.") +
                      (a.final.empty() ? "initial" : "final") + ": sched_setaffinity");
  return {};
}

Result<int> Runtime::exec(const std::string& id, const std::filesystem::path& process_file,
                          const std::vector<std::string>& args, const ExecOptions& o) {
  if (auto r = check_id(id); !r) return fail(r.error());
  auto dir = root_ / id;
  auto r = read_record(dir, id);
  if (!r) return fail(r.error());
  if (auto st = status_of(*r); st != "running")
    return fail("cannot exec in a container that is " + st + " (" + id + ")");
  auto config = read_file(dir / "config.json");
  if (!config) return fail(config.error());
  auto b = parse_config(*config, r->bundle, id, dir / "container");
  if (!b) return fail(b.error().wrap("config.json of " + id));
  model::ProcessSpec process = b->spec.process;
  Console console;
  if (!process_file.empty()) {
    auto text = read_file(process_file);
    if (!text) return fail(text.error());
    std::vector<std::string> warnings;
    ExecAffinity affinity;
    auto p = parse_process(*text, b->spec.process, console, &warnings, &affinity);
    if (!p) return fail(p.error().wrap(process_file.string()));
    for (const auto& w : warnings) warn_(process_file.string() + ": " + w);
    if (auto a = set_exec_affinity(affinity, b->spec.limits); !a)
      return fail(a.error().wrap(process_file.string()));
    process = std::move(*p);
    // The exec joins the container's cpu cgroup: its realtime runtime is the container's.
    if (process.scheduler)
      if (auto rt = check_realtime(process, b->spec.limits, realtime_host()); !rt)
        return fail(rt.error().wrap(process_file.string()));
  } else if (!args.empty()) {
    process.argv = args;
  } else {
    return fail("exec " + id + ": a command or --process is required");
  }
  auto drv = cgroups();
  if (!drv) return fail(drv.error());
  engine::Engine eng(init_, **drv);
  engine::ContainerProcess target{r->pid, r->start_time, 0};
  bool tty = o.tty || console.terminal;
  if (tty && o.console_socket.empty())
    return fail("exec " + id + ": a terminal needs --console-socket (where its master goes)");
  if (!tty && !o.console_socket.empty())
    return fail("exec " + id + ": --console-socket given without --tty or process.terminal");
  engine::Stdio stdio;
  std::optional<engine::Pty> pty;
  if (tty) {
    auto p = engine::open_pty(target, process.uid);
    if (!p) return fail(p.error().wrap("exec in " + id));
    pty.emplace(std::move(*p));
    stdio = {pty->slave.get(), pty->slave.get(), pty->slave.get(), true};
  }
  auto spawned = eng.spawn(target, r->cgroup, process, stdio);
  if (!spawned) return fail(spawned.error().wrap("exec in " + id));
  if (pty) {
    pty->slave.reset();
    if (auto s = send_console(o.console_socket, pty->master.get(), console.rows, console.cols);
        !s) {
      ::syscall(SYS_pidfd_send_signal, spawned->pidfd.get(), SIGKILL, nullptr, 0);
      return fail(s.error().wrap("exec in " + id));
    }
  }
  if (auto w = write_pid_file(o.pid_file, spawned->pid); !w) return fail(w.error());
  // Detached, the helper is reparented to the caller's subreaper (conmon), which reaps it.
  if (o.detach) return 0;
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(spawned->pidfd.get()), &info, WEXITED) != 0)
    if (errno != EINTR) return fail_errno("wait for exec in " + id);
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

Result<std::string> Runtime::list() {
  json out = json::array();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root_, ec)) {
    auto id = e.path().filename().string();
    auto r = read_record(e.path(), id);
    if (r) out.push_back(state_json(*r, status_of(*r)));
  }
  return out.dump(2);
}

Result<std::vector<int>> Runtime::pids(const std::string& id) {
  if (auto r = check_id(id); !r) return fail(r.error());
  auto r = read_record(root_ / id, id);
  if (!r) return fail(r.error());
  auto drv = cgroups();
  if (!drv) return fail(drv.error());
  auto p = (*drv)->pids(r->cgroup);
  if (!p) return fail(p.error().wrap("ps " + id));
  return std::vector<int>(p->begin(), p->end());
}

Result<int> parse_signal(const std::string& s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) {
    int n = std::stoi(s);
    if (n > 0 && n < 65) return n;
    return fail("invalid signal \"" + s + "\"");
  }
  std::string name = s.rfind("SIG", 0) == 0 ? s.substr(3) : s;
  for (int n = 1; n < 32; n++)
    if (const char* abbrev = sigabbrev_np(n); abbrev && name == abbrev) return n;
  return fail("invalid signal \"" + s + "\"");
}

std::string features_json() {
  json f{{"ociVersionMin", "1.0.0"},
         {"ociVersionMax", "1.1.0"},
         {"hooks",
          {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
           "poststop"}},
         {"mountOptions",
          {"ro", "rw", "bind", "rbind", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
           "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
           "runbindable", "idmap", "ridmap", "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev",
           "rnoexec", "rexec", "relatime", "norelatime", "noatime", "atime", "strictatime",
           "nostrictatime", "nodiratime", "diratime", "nosymfollow", "symfollow", "rrelatime",
           "rnorelatime", "rnoatime", "ratime", "rstrictatime", "rnostrictatime", "rnodiratime",
           "rdiratime", "rnosymfollow", "rsymfollow", "tmpcopyup"}},
         {"linux",
          {{"namespaces", {"pid", "mount", "network", "uts", "ipc", "user", "cgroup", "time"}},
           {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
           {"seccomp", {{"enabled", true}}},
           {"apparmor", {{"enabled", false}}},
           {"selinux", {{"enabled", false}}},
           {"mountExtensions", {{"idmap", {{"enabled", true}}}}},
           {"memoryPolicy",
            {{"modes",
              {"MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
               "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"}},
             {"flags",
              {"MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"}}}}}}};
  return f.dump(2);
}

}  // namespace stack::runtime
