// The daemon's side of `stack kill` and `stack top`: signals to a project's running containers
// and the processes of their cgroups read from /proc. Neither makes nor removes a container, so
// neither is a plan; kill takes the project's lock like every operation that changes state.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "engine/container.h"
#include "reconciler/async.h"
#include "reconciler/daemon.h"
#include "reconciler/project_lock.h"
#include "state/store.h"

namespace stack::reconciler {

namespace {

// Signals a service is sent to be told something (reload, resize, job control), not to end:
// the container stays as it is, and its restart policy with it.
bool ends_process(int sig) {
  static const int kNotify[] = {SIGHUP,  SIGUSR1, SIGUSR2, SIGCHLD, SIGCONT, SIGSTOP,
                                SIGTSTP, SIGTTIN, SIGTTOU, SIGURG,  SIGWINCH};
  return std::find(std::begin(kNotify), std::end(kNotify), sig) == std::end(kNotify);
}

bool wanted(const std::vector<std::string>& services, const std::string& service) {
  return services.empty() || std::count(services.begin(), services.end(), service) > 0;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The boot time in unix ms (/proc/stat btime): /proc/PID/stat gives start times in clock
// ticks since boot (proc(5)).
int64_t boot_ms() {
  std::istringstream in(read_all("/proc/stat"));
  std::string key;
  int64_t value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value * 1000;
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

// One process as ps(1) would list it; nullopt when it exited while we read it.
std::optional<Daemon::Process> read_process(int pid, int64_t boot, long hz) {
  std::string dir = "/proc/" + std::to_string(pid);
  std::string stat = read_all(dir + "/stat");
  auto close = stat.rfind(')');
  if (stat.empty() || close == std::string::npos) return std::nullopt;
  // Fields from 3 (state) on; comm (2) may hold spaces and parentheses, hence the last ')'.
  std::istringstream in(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string w; in >> w;) f.push_back(w);
  if (f.size() < 20) return std::nullopt;
  Daemon::Process p;
  p.pid = pid;
  p.ppid = std::stoi(f[1]);
  int tty = std::stoi(f[4]);
  // tty_nr: major in bits 8-15, minor in 0-7 and 20-31; 136-143 are the pts majors.
  int major = (tty >> 8) & 0xfff, minor = (tty & 0xff) | ((tty >> 12) & 0xfff00);
  p.tty = tty == 0 ? "?" : major >= 136 && major <= 143 ? "pts/" + std::to_string((major - 136) * 256 + minor)
                                                        : std::to_string(major) + ":" + std::to_string(minor);
  p.cpu_ms = (std::stoull(f[11]) + std::stoull(f[12])) * 1000 / static_cast<uint64_t>(hz);
  p.started_at = boot + static_cast<int64_t>(std::stoull(f[19]) * 1000 / static_cast<uint64_t>(hz));
  std::istringstream status(read_all(dir + "/status"));
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Uid:", 0) == 0) p.uid = static_cast<uint32_t>(std::stoul(line.substr(4)));
  std::string cmdline = read_all(dir + "/cmdline");
  while (!cmdline.empty() && cmdline.back() == '\0') cmdline.pop_back();
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  if (cmdline.empty())  // a kernel thread or a zombie: its name, bracketed as ps does
    cmdline = "[" + stat.substr(stat.find('(') + 1, close - stat.find('(') - 1) + "]";
  p.command = cmdline;
  return p;
}

}  // namespace

awaitable<Result<std::vector<std::string>>> Daemon::kill(std::string project,
                                                         std::vector<std::string> services,
                                                         int signal,
                                                         std::vector<std::string> containers) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  if (auto r = check_services(project, services); !r) co_return fail(r.error());
  auto& store = controller_->store();
  auto records = store.list_containers(project);
  if (!records) co_return fail(records.error());
  std::vector<std::string> signalled;
  for (auto& rec : *records) {
    if (!wanted(services, rec.service)) continue;
    if (!containers.empty() && !std::count(containers.begin(), containers.end(), rec.name))
      continue;
    if (auto r = controller_->refresh(rec); !r) co_return fail(r.error());
    if (rec.state != state::ContainerState::kRunning) continue;
    // Marked before the signal: the supervisor sees the exit as the user's, not as a crash.
    if (ends_process(signal)) {
      rec.user_stopped = true;
      if (auto r = store.put_container(rec); !r) co_return fail(r.error());
    }
    if (auto r = controller_->engine().signal({rec.pid, rec.pid_start_time, rec.started_at}, signal);
        !r)
      co_return fail(r.error().wrap("kill " + rec.name));
    // A paused container gets the signal when it is thawed: thawed now for one that ends it,
    // as the user asked for it to end.
    auto& cgroups = controller_->engine().cgroups();
    if (ends_process(signal) && rec.runtime)
      if (auto f = cgroups.frozen(rec.runtime->spec.cgroup); f && *f)
        if (auto r = cgroups.freeze(rec.runtime->spec.cgroup, false); !r)
          co_return fail(r.error().wrap("kill " + rec.name));
    events_.publish({0, "kill", rec.project, rec.service, rec.name,
                     {{"signal", std::to_string(signal)}}});
    signalled.push_back(rec.name);
  }
  co_return signalled;
}

awaitable<Result<std::vector<std::string>>> Daemon::pause(std::string project,
                                                          std::vector<std::string> services,
                                                          bool paused) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  if (auto r = check_services(project, services); !r) co_return fail(r.error());
  auto records = controller_->store().list_containers(project);
  if (!records) co_return fail(records.error());
  auto& cgroups = controller_->engine().cgroups();
  std::vector<std::string> done;
  for (auto& rec : *records) {
    if (!wanted(services, rec.service)) continue;
    if (auto r = controller_->refresh(rec); !r) co_return fail(r.error());
    if (rec.state != state::ContainerState::kRunning || !rec.runtime) continue;
    const std::string& cgroup = rec.runtime->spec.cgroup;
    auto frozen = cgroups.frozen(cgroup);
    if (!frozen) co_return fail(frozen.error().wrap(rec.name));
    if (*frozen == paused) continue;
    if (auto r = cgroups.freeze(cgroup, paused); !r) co_return fail(r.error().wrap(rec.name));
    events_.publish({0, paused ? "pause" : "unpause", rec.project, rec.service, rec.name, {}});
    done.push_back(rec.name);
  }
  changed().notify();
  co_return done;
}

Result<std::vector<Daemon::Top>> Daemon::top(const std::string& project,
                                             const std::vector<std::string>& services) {
  if (auto r = check_services(project, services); !r) return fail(r.error());
  auto records = controller_->store().list_containers(project);
  if (!records) return fail(records.error());
  int64_t boot = boot_ms();
  long hz = ::sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  std::vector<Top> out;
  for (auto& rec : *records) {
    if (!wanted(services, rec.service)) continue;
    if (auto r = controller_->refresh(rec); !r) return fail(r.error());
    if (rec.state != state::ContainerState::kRunning || !rec.runtime) continue;
    auto pids = controller_->engine().cgroups().pids(rec.runtime->spec.cgroup);
    if (!pids) return fail(pids.error().wrap("top " + rec.name));
    std::sort(pids->begin(), pids->end());
    Top t{rec.name, rec.service, {}};
    for (int pid : *pids)
      if (auto p = read_process(pid, boot, hz)) t.processes.push_back(std::move(*p));
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace stack::reconciler
