// A started container seen from the host: is it still the process we started, signalling and
// stopping it through a pidfd, how it ended, and waiting for a command run in it. Root on the
// host. The container's init may not be our child (the engine that started it may have been
// restarted), so exits are observed through pidfds and the init's own record, never through
// wait() alone.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <string>

#include "common/files.h"
#include "common/unique_fd.h"
#include "engine/container.h"

namespace stack::engine {

namespace {

UniqueFd open_pidfd(const ContainerProcess& p) {
  if (p.pid <= 0) return UniqueFd();
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, p.pid, 0)));
  // Checked after opening: from here on the pidfd pins this exact process.
  if (fd && process_start_time(p.pid) != p.start_time) fd.reset();
  return fd;
}

// Waits for the pidfd to report exit; reaps the process if it happens to be our child.
bool wait_pidfd(int fd, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) {
      siginfo_t si{};
      ::waitid(static_cast<idtype_t>(3 /* P_PIDFD */), static_cast<id_t>(fd), &si,
               WEXITED | WNOHANG);
      return true;
    }
    if (left.count() <= 0) return false;
  }
}

}  // namespace

uint64_t process_start_time(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  // Field 2 (comm) may contain spaces and parentheses: count fields after the last ')'.
  auto pos = stat->rfind(')');
  if (pos == std::string::npos) return 0;
  std::string_view rest = std::string_view(*stat).substr(pos + 2);
  for (int field = 3; field < 22; field++) {
    auto sp = rest.find(' ');
    if (sp == std::string_view::npos) return 0;
    rest.remove_prefix(sp + 1);
  }
  uint64_t v = 0;
  std::from_chars(rest.data(), rest.data() + rest.size(), v);
  return v;
}

bool is_alive(const ContainerProcess& p) {
  if (p.pid <= 0) return false;
  auto stat = read_file("/proc/" + std::to_string(p.pid) + "/stat");
  if (!stat) return false;
  auto pos = stat->rfind(')');
  if (pos == std::string::npos || pos + 2 >= stat->size() || (*stat)[pos + 2] == 'Z') return false;
  return process_start_time(p.pid) == p.start_time;
}

Result<void> Engine::signal(const ContainerProcess& p, int sig) {
  UniqueFd fd = open_pidfd(p);
  if (!fd) return fail("container is not running");
  if (::syscall(SYS_pidfd_send_signal, fd.get(), sig, nullptr, 0) != 0)
    return fail_errno("signal " + std::to_string(sig));
  return {};
}

bool Engine::wait_exit(const ContainerProcess& p, std::chrono::milliseconds timeout) {
  UniqueFd fd = open_pidfd(p);
  if (!fd) return true;
  return wait_pidfd(fd.get(), timeout);
}

Result<void> Engine::stop(const ContainerProcess& p, int sig, std::chrono::milliseconds grace) {
  UniqueFd fd = open_pidfd(p);
  if (!fd) return {};  // already gone
  if (grace.count() > 0 && ::syscall(SYS_pidfd_send_signal, fd.get(), sig, nullptr, 0) == 0 &&
      wait_pidfd(fd.get(), grace))
    return {};
  // Killing PID 1 of the namespace takes every process in it along (pid_namespaces(7)).
  if (::syscall(SYS_pidfd_send_signal, fd.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
    return fail_errno("kill");
  if (!wait_pidfd(fd.get(), std::chrono::seconds(10)))
    return fail("container did not exit 10 s after SIGKILL");
  return {};
}

Result<ExitInfo> Engine::exit_info(const ContainerSpec& spec) {
  ExitInfo info;
  auto record = read_file(spec.dir / "exit");
  if (record) {
    std::string_view rest = *record;
    while (!rest.empty()) {
      auto nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
      auto eq = line.find('=');
      if (eq == std::string_view::npos) continue;
      auto key = line.substr(0, eq);
      auto val = line.substr(eq + 1);
      int64_t v = 0;
      std::from_chars(val.data(), val.data() + val.size(), v);
      if (key == "code") info.code = static_cast<int>(v);
      if (key == "finished_at") info.finished_at = v;
    }
  } else {
    info.code = 128 + SIGKILL;  // the init itself was killed before it could write
    info.finished_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  }
  if (auto kills = cgroups_.oom_kills(spec.cgroup); kills && *kills > 0) info.oom_killed = true;
  return info;
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

Result<void> Engine::remove(const ContainerSpec& spec) {
  if (auto r = release_cgroup(spec.cgroup); !r) return r;
  return remove_tree(spec.dir);
}

}  // namespace stack::engine
