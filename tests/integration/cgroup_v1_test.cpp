// The cgroup drivers on the real kernel (this host: cgroup v1 hierarchies under /sys/fs/cgroup,
// plus a controller-less cgroup2 mount at /sys/fs/cgroup/unified). Needs root. Every cgroup it
// makes is under stack-test-<pid>/ and removed by a guard, pass or fail.
#include <doctest/doctest.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/files.h"
#include "support/fixtures.h"
#include "engine/cgroup.h"

using namespace stack;
using namespace stack::engine;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot = "/sys/fs/cgroup";
// Every hierarchy the v1 driver may make a directory in (src/engine/cgroup_v1.cpp), so the
// guard removes the test's top directory from each: devices was missing, and its stack-test-PID
// directories stayed behind.
const char* kHierarchies[] = {"memory", "cpu",     "pids",    "devices", "cpuacct",
                              "freezer", "systemd", "unified", "cpuset",  "blkio"};

std::string top() { return "stack-test-" + std::to_string(::getpid()); }

// Kills and reaps the child, then removes what the test created, even after a failed check.
struct Cleanup {
  pid_t child = 0;
  std::vector<fs::path> dirs;  // removed deepest first
  ~Cleanup() {
    if (child > 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
    }
    for (const auto& d : dirs) {
      for (int i = 0; i < 20 && ::rmdir(d.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(5000);
    }
  }
};

pid_t spawn_sleeper() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::sleep(60);
    ::_exit(0);
  }
  return pid;
}

std::string cgroup_line(pid_t pid, const std::string& controller) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    // "4:memory:/path" (or "1:name=systemd:/path")
    auto a = line.find(':');
    auto b = line.find(':', a + 1);
    std::string ctrls = line.substr(a + 1, b - a - 1);
    if (controller.empty() && ctrls.empty()) return line.substr(b + 1);  // "0::/path", cgroup2
    std::stringstream ss(ctrls);
    std::string c;
    while (std::getline(ss, c, ','))
      if (c == controller) return line.substr(b + 1);
  }
  return {};
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

TEST_CASE("cgroup v1 on the real kernel: limits, attach, stats, remove") {
  if (::geteuid() != 0 || !fs::is_directory(kRoot / "memory")) {
    test::report_skip("needs root and a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory");
    return;
  }
  auto detected = detect_cgroup_driver(kRoot);
  REQUIRE_MESSAGE(detected, (detected ? "" : detected.error().message));
  CHECK((*detected)->name() == "v1");

  auto cg = make_cgroup_v1(kRoot);
  const std::string path = top() + "/c1";
  Cleanup cleanup;
  for (const char* h : kHierarchies) cleanup.dirs.push_back(kRoot / h / path);
  for (const char* h : kHierarchies) cleanup.dirs.push_back(kRoot / h / top());

  CgroupLimits limits;
  limits.memory_bytes = 32 * 1024 * 1024;
  limits.pids = 10;
  limits.cpus = 0.5;
  auto created = cg->create(path, limits);
  REQUIRE_MESSAGE(created, (created ? "" : created.error().message));
  CHECK(read_file(kRoot / "memory" / path / "memory.limit_in_bytes").value() == "33554432\n");
  CHECK(read_file(kRoot / "pids" / path / "pids.max").value() == "10\n");
  CHECK(read_file(kRoot / "cpu" / path / "cpu.cfs_quota_us").value() == "50000\n");
  REQUIRE(cg->create(path, limits));  // idempotent on the real tree too

  cleanup.child = spawn_sleeper();
  REQUIRE(cleanup.child > 0);
  auto attached = cg->attach(path, cleanup.child);
  REQUIRE_MESSAGE(attached, (attached ? "" : attached.error().message));
  for (const char* c : {"memory", "pids", "cpu", "cpuacct", "freezer", "name=systemd", ""}) {
    std::string h = c == std::string("name=systemd") ? "systemd" : *c ? c : "unified";
    if (!fs::is_directory(kRoot / h)) continue;
    CHECK_MESSAGE(ends_with(cgroup_line(cleanup.child, c), "/" + path), c, " ",
                  cgroup_line(cleanup.child, c));
  }

  auto pids = cg->pids(path);
  REQUIRE(pids);
  CHECK(*pids == std::vector<pid_t>{cleanup.child});
  auto oom = cg->oom_kills(path);
  REQUIRE_MESSAGE(oom, (oom ? "" : oom.error().message));
  CHECK(*oom == 0);
  auto st = cg->stats(path);
  REQUIRE_MESSAGE(st, (st ? "" : st.error().message));
  CHECK(st->pids == 1);
  CHECK(st->memory_bytes >= 0);

  // A busy cgroup cannot go.
  CHECK(!cg->remove(path));

  ::kill(cleanup.child, SIGKILL);
  ::waitpid(cleanup.child, nullptr, 0);
  cleanup.child = 0;
  auto removed = cg->remove(path);
  REQUIRE_MESSAGE(removed, (removed ? "" : removed.error().message));
  for (const char* h : kHierarchies) CHECK_MESSAGE(!fs::exists(kRoot / h / path), h);
  REQUIRE(cg->remove(path));  // already gone: fine
}

TEST_CASE("cgroup v2 on a controller-less cgroup2 mount: plain cgroups work, limits say why not") {
  const fs::path root = kRoot / "unified";
  struct statfs st {};
  if (::geteuid() != 0 || ::statfs(root.c_str(), &st) != 0 || st.f_type != CGROUP2_SUPER_MAGIC) {
    test::report_skip("needs root and a cgroup2 mount at /sys/fs/cgroup/unified");
    return;
  }
  auto detected = detect_cgroup_driver(root);
  REQUIRE(detected);
  CHECK((*detected)->name() == "v2");
  auto cg = make_cgroup_v2(root);
  const std::string path = top() + "/c1";
  Cleanup cleanup;
  cleanup.dirs = {root / path, root / top()};

  std::string available = read_file(root / "cgroup.controllers").value();
  if (available.find("memory") == std::string::npos) {
    CgroupLimits limits;
    limits.memory_bytes = 32 * 1024 * 1024;
    auto r = cg->create(path, limits);
    REQUIRE(!r);
    CHECK_MESSAGE(r.error().message.find("memory controller is not available") != std::string::npos,
                  r.error().message);
    CHECK(!fs::exists(root / path));  // undone
  }

  auto created = cg->create(path, {});
  REQUIRE_MESSAGE(created, (created ? "" : created.error().message));
  cleanup.child = spawn_sleeper();
  REQUIRE(cg->attach(path, cleanup.child));
  CHECK(*cg->pids(path) == std::vector<pid_t>{cleanup.child});
  auto stats = cg->stats(path);
  REQUIRE_MESSAGE(stats, (stats ? "" : stats.error().message));
  ::kill(cleanup.child, SIGKILL);
  ::waitpid(cleanup.child, nullptr, 0);
  cleanup.child = 0;
  auto removed = cg->remove(path);
  REQUIRE_MESSAGE(removed, (removed ? "" : removed.error().message));
  CHECK(!fs::exists(root / path));
}
