// Container start benchmarks, printed as medians over N runs (default 50), with crun as the
// yardstick in the same run when it is installed:
//   engine start       the whole start: Engine::create (files, cgroup, clone of the namespaces,
//                      the root built, READY) then Engine::start (GO to the service exec'd),
//                      with Docker's defaults (capability drop, no_new_privs, seccomp filter),
//                      and each phase on its own; interleaved in the same run, the whole start
//                      without the filter, without the capability drop (every capability), and
//                      without either
//   seccomp program    the cached compile of the default profile (what a start pays), its
//                      installation with seccomp(2) in a forked child, and a cold compile
//   engine lifecycle   start + /bin/true runs + exit seen + cgroup and directory removed
//   crun run           the same lifecycle by `crun run` of the same rootfs (whole process)
//   stack up+down      `stack up -d` then `stack down` of a one-service stack (whole processes)
//   init RSS           resident memory of a running container's init (the host cost)
// Run as root from the build directory: sudo ./bench/bench_start [RUNS] [--engine-only]
// (--engine-only: the engine's rows alone, in a second or so: for A/B runs of two builds).
// `bench_start --once ROOTFS`: one whole lifecycle of /bin/true on ROOTFS as a command of its
// own (process start included), as bench/run.sh times it beside `crun run`.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/container.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace stack;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Milliseconds of FN, N times after one warm-up.
std::vector<double> times(int n, const std::function<bool()>& fn) {
  std::vector<double> out;
  fn();
  for (int i = 0; i < n; i++) {
    auto t0 = Clock::now();
    if (!fn()) return {};
    out.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return out;
}

int run(const std::vector<std::string>& argv, const fs::path& cwd = {}) {
  pid_t pid = fork();
  if (pid == 0) {
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    int null = ::open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execvp(a[0], a.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// `crun run` N times, timed in a child process with a private mount namespace: crun refuses
// this host's hybrid cgroup layout while the unified tree has a controller (hugetlb), so the
// child hides that tree under a throwaway tmpfs (where crun's own cgroup directories go too).
// crun then runs on the v1 hierarchies, as stack does; nothing of it reaches the host.
std::vector<double> crun_times(int n, const fs::path& bundle) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) ||
        umount2("/sys/fs/cgroup/unified", MNT_DETACH) != 0 ||
        mount("tmpfs", "/sys/fs/cgroup/unified", "tmpfs", 0, "size=1m") != 0)
      _exit(1);
    int i = 0;
    auto t = times(n, [&] {
      return run({"crun", "run", "--bundle", bundle.string(),
                  "stack-bench-" + std::to_string(getpid()) + "-" + std::to_string(i++)}) == 0;
    });
    ssize_t w = write(fds[1], t.data(), t.size() * sizeof(double));
    _exit(w < 0);
  }
  close(fds[1]);
  std::vector<double> out(static_cast<size_t>(n));
  ssize_t got = read(fds[0], out.data(), out.size() * sizeof(double));
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  out.resize(got > 0 ? static_cast<size_t>(got) / sizeof(double) : 0);
  return out;
}

void print(const char* what, const std::vector<double>& v, double yardstick = 0) {
  if (v.empty()) {
    std::printf("%-22s failed\n", what);
    return;
  }
  std::printf("%-22s median %8.2f ms  (min %.2f, max %.2f, n=%zu)", what, median(v),
              *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()),
              v.size());
  if (yardstick > 0) std::printf("  = %.2fx crun run", median(v) / yardstick);
  std::printf("\n");
}

}  // namespace

// One lifecycle with Docker's default security, timed from outside: what `crun run` does.
int once(const fs::path& rootfs) {
  fs::path build = fs::canonical("/proc/self/exe").parent_path().parent_path();
  auto cgroups = engine::detect_cgroup_driver();
  if (!cgroups) return 1;
  engine::Engine eng(build / "stack-init", **cgroups);
  std::string name = "bench-once-" + std::to_string(getpid());
  engine::ContainerSpec s;
  s.name = name;
  s.cgroup = "stack/" + name;
  s.dir = fs::temp_directory_path() / ("stack-" + name);
  s.layers = {rootfs};
  s.hostname = name;
  s.process.argv = {"/bin/true"};
  s.process.env = {"PATH=/bin:/usr/bin"};
  s.process.capabilities = engine::default_capabilities();
  s.limits.memory_bytes = 64 << 20;
  s.limits.pids = 100;
  auto c = eng.create(s);
  if (!c) {
    std::fprintf(stderr, "create: %s\n", c.error().message.c_str());
    return 1;
  }
  auto p = eng.start(std::move(*c));
  if (!p) {
    std::fprintf(stderr, "start: %s\n", p.error().message.c_str());
    (void)eng.remove(s);
    return 1;
  }
  eng.wait_exit(*p, std::chrono::seconds(5));
  auto removed = eng.remove(s);
  std::error_code ec;
  fs::remove_all(s.dir, ec);
  if (!removed) std::fprintf(stderr, "remove: %s\n", removed.error().message.c_str());
  return removed ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--once") return once(argv[2]);
  int n = 50;
  bool engine_only = false;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--engine-only") engine_only = true;
    if (arg != "--engine-only") n = std::atoi(arg.c_str());
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "bench_start: run as root\n");
    return 2;
  }
  fs::path build = fs::canonical("/proc/self/exe").parent_path().parent_path();
  fs::path source = STACK_SOURCE_DIR;
  fs::path work = fs::temp_directory_path() / ("stack-bench-" + std::to_string(getpid()));
  fs::path rootfs = work / "bundle/rootfs";
  fs::create_directories(work);
  if (run({(source / "scripts/make-busybox-rootfs.sh").string(), rootfs.string()}) != 0) {
    std::fprintf(stderr, "bench_start: could not build the busybox rootfs\n");
    return 1;
  }

  auto cgroups = engine::detect_cgroup_driver().value();
  engine::Engine eng(build / "stack-init", *cgroups);
  int seq = 0;
  auto spec = [&](std::vector<std::string> argv) {
    engine::ContainerSpec s;
    s.name = "bench-" + std::to_string(seq++);
    s.cgroup = "stack/bench-" + std::to_string(getpid()) + "/" + s.name;
    s.dir = work / "containers" / s.name;
    s.layers = {rootfs};
    s.hostname = s.name;
    s.process.argv = std::move(argv);
    s.process.env = {"PATH=/bin:/usr/bin"};
    s.process.capabilities = engine::default_capabilities();
    s.limits.memory_bytes = 64 << 20;
    s.limits.pids = 100;
    return s;
  };

  std::printf("container start, %d runs each (median, ms)\n", n);
  // The four security variants, one start of each per round so that drift on a shared machine
  // hits them alike.
  struct Variant {
    const char* name;
    bool seccomp, drop;
    std::vector<double> t, create, start;  // whole, and each phase
  };
  std::vector<Variant> variants = {{"engine start", true, true, {}, {}, {}},
                                   {"  without seccomp", false, true, {}, {}, {}},
                                   {"  without cap drop", true, false, {}, {}, {}},
                                   {"  without either", false, false, {}, {}, {}}};
  auto start_once = [&](Variant& v, bool record) {
    auto s = spec({"/bin/true"});
    if (!v.seccomp) s.process.seccomp.mode = engine::SeccompSpec::Mode::kUnconfined;
    if (!v.drop) s.process.capabilities = engine::all_capabilities();
    auto t0 = Clock::now();
    auto c = eng.create(s);
    auto t1 = Clock::now();
    if (!c) {
      std::fprintf(stderr, "create: %s\n", c.error().message.c_str());
      return false;
    }
    auto p = eng.start(std::move(*c));
    auto t2 = Clock::now();
    if (!p) {
      std::fprintf(stderr, "start: %s\n", p.error().message.c_str());
      return false;
    }
    auto ms = [](auto a, auto b) {
      return std::chrono::duration<double, std::milli>(b - a).count();
    };
    if (record) {
      v.t.push_back(ms(t0, t2));
      v.create.push_back(ms(t0, t1));
      v.start.push_back(ms(t1, t2));
    }
    eng.wait_exit(*p, std::chrono::seconds(5));
    auto removed = eng.remove(s);
    if (!removed) std::fprintf(stderr, "remove: %s\n", removed.error().message.c_str());
    return static_cast<bool>(removed);
  };
  for (auto& v : variants) start_once(v, false);  // warm-up, and the filter compiled once
  std::vector<double> lifecycle;
  for (int i = 0; i < n; i++)
    for (auto& v : variants) {
      auto t0 = Clock::now();
      if (!start_once(v, true)) break;
      if (&v == &variants[0])
        lifecycle.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }

  if (engine_only) {
    for (const auto& v : variants) {
      print(v.name, v.t);
      if (&v != &variants[0]) continue;
      print("  create", v.create);
      print("  start", v.start);
    }
    print("engine lifecycle", lifecycle);
    fs::remove_all(work);
    return 0;
  }

  // What the filter costs a start once cached: the lookup, then installing it in the child.
  engine::SeccompSpec def;
  def.capabilities = engine::default_capabilities();
  std::vector<double> hit, cold;
  for (int i = 0; i < 1000; i++) {
    auto t0 = Clock::now();
    auto prog = engine::seccomp_program(def);
    hit.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (!prog) return 1;
  }
  // Installing it, as the service's child does before execve: timed in forked children.
  std::vector<double> install;
  if (auto prog = engine::seccomp_program(def); prog && *prog) {
    for (int i = 0; i < 50; i++) {
      int fds[2];
      if (pipe(fds) != 0) break;
      pid_t pid = fork();
      if (pid == 0) {
        sock_fprog fp{static_cast<unsigned short>((*prog)->size() / sizeof(sock_filter)),
                      reinterpret_cast<sock_filter*>(const_cast<char*>((*prog)->data()))};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        auto t0 = Clock::now();
        long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (rc != 0) ms = -1;
        ssize_t w = write(fds[1], &ms, sizeof ms);
        _exit(w == sizeof ms ? 0 : 1);
      }
      double ms = -1;
      if (read(fds[0], &ms, sizeof ms) == sizeof ms && ms >= 0) install.push_back(ms);
      close(fds[0]);
      close(fds[1]);
      waitpid(pid, nullptr, 0);
    }
  }
  for (int i = 0; i < 5; i++) {  // a capability set never seen: a compile each time
    engine::SeccompSpec fresh = def;
    fresh.capabilities |= 1ull << (32 + i);
    auto t0 = Clock::now();
    (void)engine::seccomp_program(fresh);
    cold.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }

  std::vector<double> crun;
  double crun_median = 0;
  if (run({"sh", "-c", "command -v crun"}) == 0) {
    // An OCI bundle of the same rootfs running /bin/true, no terminal.
    run({"crun", "spec"}, work / "bundle");
    std::ifstream in(work / "bundle/config.json");
    auto cfg = nlohmann::json::parse(in);
    cfg["process"]["terminal"] = false;
    cfg["process"]["args"] = {"/bin/true"};
    cfg["root"]["readonly"] = false;
    std::ofstream(work / "bundle/config.json") << cfg.dump(2);
    crun = crun_times(n, work / "bundle");
    crun_median = median(crun);
  }
  for (const auto& v : variants) {
    print(v.name, v.t, &v == &variants[0] ? crun_median : 0);
    if (&v != &variants[0]) continue;
    print("  create", v.create);
    print("  start", v.start);
  }
  std::printf("  filter + drop cost     %.2f ms (median of the difference with neither)\n",
              median(variants[0].t) - median(variants[3].t));
  std::sort(hit.begin(), hit.end());
  std::printf(
      "%-22s median %8.2f us (max %.2f us, n=%zu): the whole cost of the filter's compile\n",
      "seccomp cache hit", hit[hit.size() / 2] * 1000, hit.back() * 1000, hit.size());
  std::sort(install.begin(), install.end());
  if (!install.empty())
    std::printf("%-22s median %8.2f us (max %.2f us, n=%zu): seccomp(2) of the %zu-byte program\n",
                "seccomp install", install[install.size() / 2] * 1000, install.back() * 1000,
                install.size(), engine::seccomp_program(def).value()->size());
  print("seccomp compile (cold)", cold);
  print("engine lifecycle", lifecycle, crun_median);
  if (!crun.empty()) print("crun run /bin/true", crun);
  else std::printf("crun run /bin/true     (crun not installed)\n");

  // The whole CLI: a one-service stack up and down.
  fs::path root = work / "root";
  fs::path project = work / "project";
  fs::create_directories(project);
  std::ofstream(project / "stack.yaml")
      << "name: bench\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n";
  std::vector<std::string> stack = {(build / "stack").string(), "--root", root.string(),
                                    "--run-root", (work / "run").string()};
  auto with = [&](std::vector<std::string> extra) {
    auto a = stack;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  run(with({"image", "import", "busybox:latest", rootfs.string()}));
  auto updown = times(n, [&] {
    return run(with({"up", "-d"}), project) == 0 && run(with({"down", "-t", "0"}), project) == 0;
  });
  print("stack up -d + down", updown, crun_median);
  auto up_noop = times(n, [&] {  // a no-op up: answered from state and /proc
    static bool once = run(with({"up", "-d"}), project) == 0;
    return once && run(with({"up", "-d"}), project) == 0;
  });
  print("stack up (no-op)", up_noop);

  // Host memory of one running container: its init is all there is on the host.
  auto s = spec({"sleep", "300"});
  auto c = eng.create(s);
  if (auto p = c ? eng.start(std::move(*c)) : Result<engine::ContainerProcess>(fail(c.error()))) {
    std::ifstream status("/proc/" + std::to_string(p->pid) + "/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmRSS:", 0) == 0)
        std::printf("container init RSS     %s\n", line.c_str() + 6);
    (void)eng.stop(*p, SIGKILL, std::chrono::milliseconds(0));
    (void)eng.remove(s);
  }
  run(with({"down", "-t", "0"}), project);
  run(with({"daemon", "stop"}));
  fs::remove_all(work);
  return 0;
}
