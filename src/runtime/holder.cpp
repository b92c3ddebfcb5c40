// The holder and the create/start steps shared by create, start and run (see holder.h and
// the sequence at the top of runtime.cpp). Root on the host; prints nothing.
#include "runtime/holder.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/files.h"
#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "runtime/console.h"
#include "runtime/hooks.h"

namespace stack::runtime {
namespace {

using namespace std::chrono_literals;

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t w = ::write(fd, s.data(), s.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s.remove_prefix(static_cast<size_t>(w));
  }
}

}  // namespace

sockaddr_un socket_address(const std::filesystem::path& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  return a;
}

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

Result<Record> make_container(engine::Engine& eng, Bundle& b, const std::string& id,
                              const std::filesystem::path& bundle,
                              const std::filesystem::path& console_socket,
                              std::optional<engine::Created>& out) {
  Record r;
  r.id = id;
  r.bundle = bundle.string();
  r.created = rfc3339_now();
  r.cgroup = b.spec.cgroup;
  for (const auto& [k, v] : b.annotations) r.annotations[k] = v;
  // runtime-spec config.md "createContainer": in the container's namespaces after its mounts,
  // before pivot_root, the path resolved in the runtime's namespace (the host's tree is still
  // the mount namespace's root then); prestart and createRuntime in the runtime's.
  auto hooks = [&](pid_t pid, int pidfd) -> Result<void> {
    r.pid = pid;
    r.start_time = live_start_time(pid);
    // prestart (runtime-spec 1.0: "after the start operation is called") sees the container
    // created, as crun and the runtime-tools validation show it; the create hooks "creating".
    if (auto h = run_hooks(b.hooks.prestart, "prestart", state_json(r, "created").dump()); !h)
      return h;
    std::string st = state_json(r, "creating").dump();
    if (auto h = run_hooks(b.hooks.create_runtime, "createRuntime", st); !h) return h;
    return run_hooks_in(pidfd, b.spec.userns.has_value(), b.hooks.create_container,
                        "createContainer", st);
  };
  bool any = !b.hooks.prestart.empty() || !b.hooks.create_runtime.empty() ||
             !b.hooks.create_container.empty();
  auto created = eng.create(b.spec, any ? engine::Engine::BeforePivot(hooks) : nullptr);
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
  r.pid = created->pid();
  r.start_time = live_start_time(r.pid);
  out.emplace(std::move(*created));
  return r;
}

Result<void> check_console(const Bundle& b, const CreateOptions& o) {
  if (b.console.terminal && o.console_socket.empty())
    return fail("process.terminal: needs --console-socket (where the terminal's master goes)");
  if (!b.console.terminal && !o.console_socket.empty())
    return fail("--console-socket given but process.terminal is false");
  return {};
}

// A failing startContainer hook stops the container (the runtime spec: "stop the container",
// then delete as usual).
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

}  // namespace stack::runtime
