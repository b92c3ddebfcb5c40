// post_start and pre_stop: each hook is an exec with the service's process as its base. The
// output is read here and written to container.log in the init's record format, so `stack
// logs` shows it with the service's own lines; the init's size rotation sees it at its next
// write. Touches only the container's log and the hook's process.
#include "reconciler/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "reconciler/service_fields.h"
#include "spec/service_fields.h"

namespace stack::reconciler {
namespace {

// One record line as stack-init writes it (engine/init/log.c).
std::string record(const char* stream, const std::string& text) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char head[64];
  std::snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s F ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec, stream);
  return head + text + "\n";
}

// Appends whole lines of BUF (a partial last line stays in BUF unless FLUSH) to LOG.
void drain(int log, std::string& buf, const char* stream, bool flush) {
  size_t start = 0;
  for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = record(stream, buf.substr(start, nl - start));
    (void)!::write(log, line.data(), line.size());  // O_APPEND: one record per write
  }
  buf.erase(0, start);
  if (flush && !buf.empty()) {
    std::string line = record(stream, buf);
    (void)!::write(log, line.data(), line.size());
    buf.clear();
  }
}

}  // namespace

Result<void> build_hooks(const spec::Service& svc, const fs::Image& image,
                         model::RuntimeRecord& r) {
  for (const char* key : {"post_start", "pre_stop"}) {
    auto hooks = spec::lifecycle_hooks(svc, key);
    if (!hooks) return fail(hooks.error().wrap(where(svc, key)));
    auto& out = std::string(key) == "post_start" ? r.post_start : r.pre_stop;
    for (const auto& h : *hooks) {
      engine::ProcessSpec p = r.spec.process;
      p.argv = h.argv;
      if (!h.working_dir.empty()) p.cwd = h.working_dir;
      for (const auto& [k, v] : h.environment) {
        std::string prefix = k + "=";
        std::erase_if(p.env, [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
        p.env.push_back(prefix + v);
      }
      if (!h.user.empty())
        if (auto u = engine::resolve_user(h.user, image.layers, p); !u)
          return fail(u.error().wrap(where(svc, key) + ": " + key + " user " + h.user));
      if (h.privileged) {
        p.capabilities = engine::all_capabilities();
        p.seccomp = {engine::SeccompSpec::Mode::kUnconfined, "", 0};
      }
      out.push_back(std::move(p));
    }
  }
  return {};
}

Result<void> run_hook(engine::Engine& engine, const engine::ContainerProcess& proc,
                      const std::string& cgroup, const engine::ProcessSpec& hook,
                      const std::filesystem::path& dir, const std::string& what,
                      std::chrono::milliseconds timeout) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fail_errno(what + ": pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return fail_errno(what + ": pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd log(::open((dir / "container.log").c_str(),
                      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  auto child = engine.spawn(proc, cgroup, hook, {null.get(), out_w.get(), err_w.get()});
  if (!child) return fail(child.error().wrap(what));
  out_w.reset();
  err_w.reset();
  std::string bufs[2];
  const char* streams[2] = {"stdout", "stderr"};
  int fds[2] = {out_r.get(), err_r.get()};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool open[2] = {true, true}, exited = false, timed_out = false;
  // Until it has exited and both pipes are closed (a child it left may hold them: the
  // deadline bounds that too).
  while (open[0] || open[1] || !exited) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = !exited;
      break;
    }
    pollfd pfd[3] = {{open[0] ? fds[0] : -1, POLLIN, 0},
                     {open[1] ? fds[1] : -1, POLLIN, 0},
                     {exited ? -1 : child->pidfd.get(), POLLIN, 0}};
    if (::poll(pfd, 3, static_cast<int>(std::min<int64_t>(left.count(), 1000))) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (!open[i] || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char chunk[4096];
      ssize_t n = ::read(fds[i], chunk, sizeof chunk);
      if (n <= 0) {
        open[i] = false;
        continue;
      }
      bufs[i].append(chunk, static_cast<size_t>(n));
      if (log) drain(log.get(), bufs[i], streams[i], false);
    }
    if (pfd[2].revents & POLLIN) exited = true;
  }
  for (int i = 0; i < 2; i++)
    if (log) drain(log.get(), bufs[i], streams[i], true);
  if (timed_out) ::syscall(SYS_pidfd_send_signal, child->pidfd.get(), SIGKILL, nullptr, 0);
  siginfo_t si{};
  int rc = ::waitid(static_cast<idtype_t>(3 /* P_PIDFD */), static_cast<id_t>(child->pidfd.get()),
                    &si, WEXITED);
  if (timed_out)
    return fail(what + " did not finish within " + std::to_string(timeout.count()) +
                " ms and was killed");
  if (rc != 0) return {};  // not ours to reap: its status is unknown, count it as done
  if (si.si_code == CLD_EXITED && si.si_status == 0) return {};
  if (si.si_code == CLD_EXITED)
    return fail(what + " exited with status " + std::to_string(si.si_status));
  return fail(what + " was killed by signal " + std::to_string(si.si_status));
}

}  // namespace stack::reconciler
