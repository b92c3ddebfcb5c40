// The runtime spec's lifecycle over the engine (see runtime.h). The engine's create and start
// are two calls on one Created object holding the init's control socket, while `create` and
// `start` are two processes; between them a holder process keeps that object:
//  1. create: reads config.json (refusing what cannot be honoured), makes <root>/<id>/ (0700),
//     binds <root>/<id>/ctl.sock, forks the holder;
//  2. holder: Engine::create (namespaces, cgroup, root built, the init waiting for GO, its
//     stdio the caller's: conmon's pipes, or a terminal whose master it sends to
//     --console-socket), runs the prestart and createRuntime hooks, reports
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
#include "runtime/hooks.h"
#include "runtime/record.h"

namespace stack::runtime {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;


void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t w = ::write(fd, s.data(), s.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s.remove_prefix(static_cast<size_t>(w));
  }
}

sockaddr_un socket_address(const std::filesystem::path& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  return a;
}

// One request to a container's holder ('S' start, 'D' discard) and its one-line answer.
Result<std::string> ask_holder(const std::filesystem::path& dir, char what) {
  auto path = dir / "ctl.sock";
  UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s) return fail_errno("socket");
  auto a = socket_address(path);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return fail_errno("connect " + path.string());
  if (::send(s.get(), &what, 1, MSG_NOSIGNAL) != 1) return fail_errno("send");
  pollfd p{s.get(), POLLIN, 0};
  if (::poll(&p, 1, 30000) != 1) return fail("no answer from the container's holder");
  char buf[4096];
  ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
  if (n <= 0) return fail("the container's holder went away");
  std::string reply(buf, static_cast<size_t>(n));
  if (reply.rfind("OK", 0) != 0) return fail(reply.substr(reply.rfind("ERR ", 0) == 0 ? 4 : 0));
  return reply.substr(2);
}

Result<void> write_pid_file(const std::filesystem::path& file, pid_t pid) {
  if (file.empty()) return {};
  // Atomically: a caller polling for the file never reads it half-written.
  return write_file_atomic(file, std::to_string(pid), 0644).map_error([&](Error e) {
    return e.wrap("pid file");
  });
}

// Engine::create and the create-time hooks, in the calling process. The record is returned
// with the init's pid; the Created object is handed to the caller through OUT.
Result<Record> make_container(engine::Engine& eng, Bundle& b, const std::string& id,
                              const std::filesystem::path& bundle,
                              const std::filesystem::path& console_socket,
                              std::optional<engine::Created>& out) {
  auto created = eng.create(b.spec);
  if (!created) return fail(created.error().wrap("create " + id));
  if (b.console.terminal) {
    auto master = take_init_terminal(created->pidfd());
    Result<void> sent = master ? send_console(console_socket, master->get(), b.console.rows,
                                              b.console.cols)
                               : fail(master.error());
    if (!sent) {
      eng.abandon(std::move(*created));
      return fail(sent.error().wrap("create " + id));
    }
  }
  Record r;
  r.id = id;
  r.bundle = bundle.string();
  r.created = rfc3339_now();
  r.cgroup = b.spec.cgroup;
  r.pid = created->pid();
  r.start_time = live_start_time(r.pid);
  for (const auto& [k, v] : b.annotations) r.annotations[k] = v;
  std::string st = state_json(r, "creating").dump();
  for (auto [hooks, kind] : {std::pair{&b.hooks.prestart, "prestart"},
                             std::pair{&b.hooks.create_runtime, "createRuntime"}})
    if (auto h = run_hooks(*hooks, kind, st); !h) {
      eng.abandon(std::move(*created));
      return fail(h.error().wrap("create " + id));
    }
  out.emplace(std::move(*created));
  return r;
}

// runc's rule: a terminal's master needs somewhere to go, and a socket nothing to send.
Result<void> check_console(const Bundle& b, const CreateOptions& o) {
  if (b.console.terminal && o.console_socket.empty())
    return fail("process.terminal: needs --console-socket (where the terminal's master goes)");
  if (!b.console.terminal && !o.console_socket.empty())
    return fail("--console-socket given but process.terminal is false");
  return {};
}

// The startContainer hooks, in the container's namespaces, then GO. A failing hook stops the
// container (the runtime spec: "stop the container", then delete as usual).
Result<engine::ContainerProcess> start_container(engine::Engine& eng, const Bundle& b,
                                                 const Record& r,
                                                 std::optional<engine::Created>& c) {
  if (auto h = run_hooks_in(c->pidfd(), b.spec.userns.has_value(), b.hooks.start_container,
                            "startContainer", state_json(r, "created").dump());
      !h) {
    eng.abandon(std::move(*c));
    return fail(h.error().wrap("start " + r.id));
  }
  auto started = eng.start(std::move(*c));
  if (!started) return fail(started.error().wrap("start " + r.id));
  return started;
}

// The holder (step 2 of the sequence at the top). Never returns.
[[noreturn]] void hold(const std::filesystem::path& init, Bundle& b, const std::string& id,
                       const CreateOptions& o, const std::filesystem::path& bundle, int listen_fd,
                       int report_fd) {
  ::setsid();  // a terminal's ^C to the caller's group is not for us
  auto drv = cgroups();
  if (!drv) {
    write_all(report_fd, "ERR " + drv.error().message);
    ::_exit(1);
  }
  engine::Engine eng(init, **drv);
  std::optional<engine::Created> c;
  auto r = make_container(eng, b, id, bundle, o.console_socket, c);
  if (!r) {
    write_all(report_fd, "ERR " + r.error().message);
    ::_exit(1);
  }
  write_all(report_fd, "OK " + std::to_string(r->pid) + " " + std::to_string(r->start_time));
  ::close(report_fd);
  if (int null = ::open("/dev/null", O_RDWR | O_CLOEXEC); null >= 0) {
    for (int fd = 0; fd < 3; fd++) ::dup2(null, fd);
    ::close(null);
  }
  for (;;) {
    pollfd p[2] = {{listen_fd, POLLIN, 0}, {c->pidfd(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) continue;
    if (p[1].revents) {  // the init died before start (kill of a created container)
      eng.abandon(std::move(*c));
      ::_exit(0);
    }
    UniqueFd conn(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    char what = 0;
    if (::recv(conn.get(), &what, 1, 0) != 1) continue;
    std::string reply;
    if (what == 'S') {
      auto started = start_container(eng, b, *r, c);
      reply = started ? "OK " + std::to_string(started->pid) : "ERR " + started.error().message;
    } else if (what == 'D') {
      eng.abandon(std::move(*c));
      reply = "OK";
    } else {
      continue;
    }
    ::send(conn.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
    ::_exit(0);
  }
}

// The container's cgroup emptied and removed, its directory gone (as Engine::remove).
Result<void> cleanup(const std::filesystem::path& dir, const Record& r) {
  auto drv = cgroups();
  if (!drv) return fail(drv.error());
  // Whatever is left in the cgroup (processes that escaped the init's PID namespace kill
  // through --all kills, or a killed init's descendants on their way out).
  for (int i = 0; i < 400; i++) {
    auto pids = (*drv)->pids(r.cgroup);
    if (!pids || pids->empty()) break;
    for (pid_t p : *pids) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(5ms);
  }
  Result<void> removed;
  for (int i = 0; i < 200; i++)  // a killed task leaves its cgroup once it has exited
    if ((removed = (*drv)->remove(r.cgroup))) break;
    else std::this_thread::sleep_for(5ms);
  if (!removed) return fail(removed.error().wrap("remove cgroup " + r.cgroup));
  return remove_tree(dir / "container");
}

// Waits up to TIMEOUT for PID (not our child) to be gone.
bool wait_gone(pid_t pid, uint64_t start_time, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  while (live_start_time(pid) == start_time && start_time != 0) {
    if (std::chrono::steady_clock::now() > until) return false;
    if (pidfd) {
      pollfd p{pidfd.get(), POLLIN, 0};
      ::poll(&p, 1, 10);
    } else {
      std::this_thread::sleep_for(2ms);
    }
  }
  return true;
}

}  // namespace

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
      if (auto h = run_hooks(b->hooks.poststart, "poststart", state_json(*r, "running").dump());
          !h)
        warn_(h.error().message);
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
      if (auto h = run_hooks(b->hooks.poststop, "poststop", state_json(*r, "stopped").dump()); !h)
        warn_(h.error().message);
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
  if (auto h = run_hooks(b->hooks.poststart, "poststart", state_json(*r, "running").dump()); !h)
    warn_(h.error().message);
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
    auto p = parse_process(*text, b->spec.process, console);
    if (!p) return fail(p.error().wrap(process_file.string()));
    process = std::move(*p);
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
         {"hooks", {"prestart", "createRuntime", "startContainer", "poststart", "poststop"}},
         {"mountOptions",
          {"ro", "rw", "bind", "rbind", "nosuid", "nodev", "private", "rprivate", "shared",
           "rshared", "slave", "rslave", "unbindable", "runbindable", "relatime", "noatime",
           "strictatime"}},
         {"linux",
          {{"namespaces", {"pid", "mount", "network", "uts", "ipc", "user", "cgroup"}},
           {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
           {"seccomp", {{"enabled", true}}},
           {"apparmor", {{"enabled", false}}},
           {"selinux", {{"enabled", false}}},
           {"mountExtensions", {{"idmap", {{"enabled", false}}}}}}}};
  return f.dump(2);
}

}  // namespace stack::runtime
