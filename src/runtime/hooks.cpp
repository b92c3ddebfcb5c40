// Hooks: fork + execve with the state on a pipe to stdin (see hooks.h), in our namespaces or a
// container's. The runtime is single threaded, so the child may do ordinary work between fork
// and exec.
#include "runtime/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "common/unique_fd.h"

namespace stack::runtime {
namespace {

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the child: joins the namespaces of NS_PIDFD and forks again (a PID namespace applies to
// children only); the first child waits for the hook and exits with its status, the hook dies
// with it (a timeout kills the first child). Returns in the process that execs the hook.
void enter(int ns_pidfd, bool userns) {
  int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID |
              CLONE_NEWCGROUP | (userns ? CLONE_NEWUSER : 0);
  // setns(2) with a pidfd (Linux 5.8) enters every namespace of FLAGS at once; entering the
  // mount namespace sets our root and cwd to its root: the container's.
  if (::setns(ns_pidfd, flags) != 0) ::_exit(126);
  pid_t hook = ::fork();
  if (hook < 0) ::_exit(126);
  if (hook > 0) {
    int status = 0;
    while (::waitpid(hook, &status, 0) < 0 && errno == EINTR) {
    }
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
}

Result<void> run_one(const Hook& h, const std::string& state, int ns_pidfd, bool userns) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd rd(in[0]), wr(in[1]);
  std::vector<std::string> args = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
  std::vector<std::string> env = h.env;
  auto argv = c_strings(args);
  auto envp = c_strings(env);
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    // Closed before exec (CLOEXEC) only in the hook: the first child of a hook in a container
    // never execs, and its copy would keep the hook's stdin from ending.
    wr.reset();
    if (ns_pidfd >= 0) enter(ns_pidfd, userns);
    ::dup2(rd.get(), 0);
    ::execve(h.path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  rd.reset();
  // A hook that does not read its stdin must not block us: a state is far below a pipe's
  // buffer, and SIGPIPE is ignored by the runtime's main.
  for (size_t off = 0; off < state.size();) {
    ssize_t w = ::write(wr.get(), state.data() + off, state.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  wr.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (h.timeout > 0 && pidfd) {
    pollfd p{pidfd.get(), POLLIN, 0};
    int r;
    do r = ::poll(&p, 1, h.timeout * 1000);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return fail("timed out after " + std::to_string(h.timeout) + "s");
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return fail("could not be executed");
  if (WIFSIGNALED(status)) return fail("killed by signal " + std::to_string(WTERMSIG(status)));
  return fail("exited with status " + std::to_string(WEXITSTATUS(status)));
}

}  // namespace

Result<void> run_hooks(const std::vector<Hook>& hooks, const char* kind,
                       const std::string& state_json) {
  return run_hooks_in(-1, false, hooks, kind, state_json);
}

void run_hooks_warning(const std::vector<Hook>& hooks, const char* kind,
                       const std::string& state_json,
                       const std::function<void(const std::string&)>& warn) {
  for (size_t i = 0; i < hooks.size(); i++)
    if (auto r = run_one(hooks[i], state_json, -1, false); !r)
      warn(r.error().wrap(std::string(kind) + " hook " + std::to_string(i) + " (" + hooks[i].path +
                          ")")
               .message);
}

Result<void> run_hooks_in(int init_pidfd, bool userns, const std::vector<Hook>& hooks,
                          const char* kind, const std::string& state_json) {
  for (size_t i = 0; i < hooks.size(); i++)
    if (auto r = run_one(hooks[i], state_json, init_pidfd, userns); !r)
      return fail(r.error().wrap(std::string(kind) + " hook " + std::to_string(i) + " (" +
                                 hooks[i].path + ")"));
  return {};
}

}  // namespace stack::runtime
