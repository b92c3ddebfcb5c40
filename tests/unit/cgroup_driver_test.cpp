// The cgroup drivers against a fake cgroupfs: plain directories and files in a temp dir. In a
// fake tree mkdir creates no control files, so a write creates a plain file, and files the
// kernel would provide (memory.oom_control, memory.events) are pre-written by the test.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "common/files.h"
#include "engine/cgroup.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::engine;
namespace fs = std::filesystem;

namespace {

std::string content(const fs::path& p) {
  auto r = read_file(p);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  return *r;
}

// What the kernel does on rmdir of a cgroup: its control files go with it. A fake tree has
// plain files there, which would make rmdir fail with ENOTEMPTY.
void drop_control_files(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) fs::remove(e.path());
}

struct FakeV1 {
  test::TempDir dir{"stack-cgv1"};
  FakeV1() {
    for (const char* h : {"memory", "cpu", "pids", "cpuacct"}) fs::create_directories(dir / h);
  }
  fs::path at(const std::string& h, const std::string& rel) const { return dir.path() / h / rel; }
};

}  // namespace

TEST_CASE("cgroup v1: create writes each limit to its hierarchy") {
  FakeV1 fake;
  auto cg = make_cgroup_v1(fake.dir.path());
  CHECK(cg->name() == "v1");
  CgroupLimits limits;
  limits.memory_bytes = 33554432;
  limits.cpus = 0.5;
  limits.cpu_shares = 512;
  limits.pids = 50;
  auto r = cg->create("stack/demo/demo-web-1", limits);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));

  const std::string c = "stack/demo/demo-web-1";
  CHECK(content(fake.at("memory", c) / "memory.limit_in_bytes") == "33554432");
  CHECK(!fs::exists(fake.at("memory", c) / "memory.memsw.limit_in_bytes"));
  CHECK(content(fake.at("cpu", c) / "cpu.cfs_period_us") == "100000");
  CHECK(content(fake.at("cpu", c) / "cpu.cfs_quota_us") == "50000");
  CHECK(content(fake.at("cpu", c) / "cpu.shares") == "512");
  CHECK(content(fake.at("pids", c) / "pids.max") == "50");
  CHECK(fs::is_directory(fake.at("cpuacct", c)));
  CHECK(!fs::exists(fake.dir / "freezer"));  // absent hierarchies are skipped, not created

  // Idempotent.
  REQUIRE(cg->create("stack/demo/demo-web-1", limits));
}

TEST_CASE("cgroup v1: memsw gets the memory limit when swap accounting exists") {
  FakeV1 fake;
  test::write_text(fake.at("memory", "stack/x") / "memory.memsw.limit_in_bytes", "max\n");
  auto cg = make_cgroup_v1(fake.dir.path());
  CgroupLimits limits;
  limits.memory_bytes = 1048576;
  REQUIRE(cg->create("stack/x", limits));
  CHECK(content(fake.at("memory", "stack/x") / "memory.limit_in_bytes") == "1048576");
  CHECK(content(fake.at("memory", "stack/x") / "memory.memsw.limit_in_bytes") == "1048576");
}

TEST_CASE("cgroup v1: a limit for a missing hierarchy is an error naming it") {
  test::TempDir dir("stack-cgv1");
  fs::create_directories(dir / "memory");
  auto cg = make_cgroup_v1(dir.path());
  CgroupLimits limits;
  limits.pids = 10;
  auto r = cg->create("stack/x", limits);
  REQUIRE(!r);
  CHECK(r.error().message.find("cgroup v1: create stack/x: a pids limit needs the pids") == 0);
}

TEST_CASE("cgroup v1: bad paths are refused") {
  FakeV1 fake;
  auto cg = make_cgroup_v1(fake.dir.path());
  CHECK(!cg->create("/stack/x", {}));
  CHECK(!cg->create("stack/../../etc", {}));
  CHECK(!cg->create("", {}));
  CHECK(!cg->remove("stack/.."));
}

TEST_CASE("cgroup v1: attach writes the pid in every hierarchy") {
  FakeV1 fake;
  fs::create_directories(fake.dir / "freezer");
  fs::create_directories(fake.dir / "systemd");
  auto cg = make_cgroup_v1(fake.dir.path());
  REQUIRE(cg->create("stack/demo/w", {}));
  REQUIRE(cg->attach("stack/demo/w", 4242));
  for (const char* h : {"memory", "cpu", "pids", "cpuacct", "freezer", "systemd"})
    CHECK_MESSAGE(content(fake.at(h, "stack/demo/w") / "cgroup.procs") == "4242", h);

  auto pids = cg->pids("stack/demo/w");
  REQUIRE(pids);
  CHECK(*pids == std::vector<pid_t>{4242});

  auto missing = cg->attach("stack/demo/nope", 1);
  REQUIRE(!missing);
  CHECK(missing.error().message == "cgroup v1: attach 1 to stack/demo/nope: cgroup does not exist");
}

TEST_CASE("cgroup v1 in hybrid mode: the container leaves the daemon's cgroup2 tree too") {
  FakeV1 fake;
  fs::create_directories(fake.dir / "unified");
  auto cg = make_cgroup_v1(fake.dir.path());
  REQUIRE(cg->create("stack/demo/w", {}));
  REQUIRE(cg->attach("stack/demo/w", 4242));
  CHECK(content(fake.at("unified", "stack/demo/w") / "cgroup.procs") == "4242");
  drop_control_files(fake.dir / "unified");
  for (const char* h : {"memory", "cpu", "pids", "cpuacct"}) drop_control_files(fake.dir / h);
  REQUIRE(cg->remove("stack/demo/w"));
  CHECK(!fs::exists(fake.at("unified", "stack")));
}

TEST_CASE("cgroup v1: creating a cgroup races with a sibling's removal pruning the parents") {
  // Two containers of one project start at once: each first removes its stale cgroup, which
  // also removes empty parents - possibly the one the other has just made.
  FakeV1 fake;
  auto cg = make_cgroup_v1(fake.dir.path());
  std::atomic<int> failures{0};
  auto churn = [&](const std::string& path) {
    for (int i = 0; i < 2000; i++) {
      (void)cg->remove(path);
      if (!cg->create(path, {})) failures++;
      (void)cg->remove(path);
    }
  };
  std::thread a(churn, "stack/demo/demo-a-1"), b(churn, "stack/demo/demo-b-1");
  a.join();
  b.join();
  CHECK(failures == 0);
}

TEST_CASE("cgroup v1: a write error names the driver and the file") {
  FakeV1 fake;
  auto cg = make_cgroup_v1(fake.dir.path());
  // A directory where the control file should be: open(O_WRONLY) fails with EISDIR.
  fs::create_directories(fake.at("pids", "stack/x") / "pids.max");
  CgroupLimits limits;
  limits.pids = 5;
  auto r = cg->create("stack/x", limits);
  REQUIRE(!r);
  CHECK(r.error().message == "cgroup v1: write " +
                                 (fake.at("pids", "stack/x") / "pids.max").string() +
                                 ": Is a directory");
  CHECK(r.error().sys_errno == EISDIR);
}

TEST_CASE("cgroup v1: oom kills, pids and stats are read from the kernel's files") {
  FakeV1 fake;
  auto cg = make_cgroup_v1(fake.dir.path());
  REQUIRE(cg->create("stack/x", {}));
  test::write_text(fake.at("memory", "stack/x") / "memory.oom_control",
                   "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  auto oom = cg->oom_kills("stack/x");
  REQUIRE_MESSAGE(oom, (oom ? "" : oom.error().message));
  CHECK(*oom == 1);

  test::write_text(fake.at("pids", "stack/x") / "cgroup.procs", "10\n11\n12\n");
  auto pids = cg->pids("stack/x");
  REQUIRE(pids);
  CHECK(*pids == std::vector<pid_t>{10, 11, 12});

  test::write_text(fake.at("memory", "stack/x") / "memory.usage_in_bytes", "2097152\n");
  test::write_text(fake.at("pids", "stack/x") / "pids.current", "3\n");
  test::write_text(fake.at("cpuacct", "stack/x") / "cpuacct.usage", "123456789\n");
  auto st = cg->stats("stack/x");
  REQUIRE_MESSAGE(st, (st ? "" : st.error().message));
  CHECK(st->memory_bytes == 2097152);
  CHECK(st->pids == 3);
  CHECK(st->cpu_usage_ns == 123456789);
  CHECK(st->memory_limit == 0);  // no limit file in the fake tree: none

  // stack stats: a limit, and the kernel's "no limit" (PAGE_COUNTER_MAX pages) read as none.
  test::write_text(fake.at("memory", "stack/x") / "memory.limit_in_bytes", "67108864\n");
  CHECK(cg->stats("stack/x")->memory_limit == 67108864);
  test::write_text(fake.at("memory", "stack/x") / "memory.limit_in_bytes",
                   "9223372036854771712\n");
  CHECK(cg->stats("stack/x")->memory_limit == 0);

  auto none = cg->oom_kills("stack/nope");
  REQUIRE(!none);
  CHECK(none.error().message.find("cgroup v1: open ") == 0);
}

TEST_CASE("cgroup v1: remove takes the leaf and empty parents, keeps siblings") {
  FakeV1 fake;
  auto cg = make_cgroup_v1(fake.dir.path());
  CgroupLimits limits;
  limits.memory_bytes = 33554432;
  REQUIRE(cg->create("stack/demo/a", limits));
  REQUIRE(cg->create("stack/demo/b", {}));
  REQUIRE(cg->create("stack/other/c", {}));
  drop_control_files(fake.dir.path());

  REQUIRE(cg->remove("stack/demo/a"));
  for (const char* h : {"memory", "cpu", "pids", "cpuacct"}) {
    CHECK(!fs::exists(fake.at(h, "stack/demo/a")));
    CHECK(fs::exists(fake.at(h, "stack/demo/b")));  // demo still has b: kept
  }
  REQUIRE(cg->remove("stack/demo/b"));
  REQUIRE(cg->remove("stack/other/c"));
  for (const char* h : {"memory", "cpu", "pids", "cpuacct"}) {
    CHECK(!fs::exists(fake.at(h, "stack/demo")));
    CHECK(!fs::exists(fake.at(h, "stack/other")));
    CHECK(!fs::exists(fake.at(h, "stack")));  // the last one out removes stack/ too
  }
  REQUIRE(cg->remove("stack/demo/a"));  // missing: not an error
}

TEST_CASE("cgroup v1: remove of a cgroup with children fails naming it, other hierarchies go") {
  FakeV1 fake;
  auto cg = make_cgroup_v1(fake.dir.path());
  REQUIRE(cg->create("stack/x", {}));
  drop_control_files(fake.dir.path());
  fs::create_directories(fake.at("pids", "stack/x/child"));
  auto r = cg->remove("stack/x");
  REQUIRE(!r);
  CHECK(r.error().message.find("cgroup v1: rmdir " + fake.at("pids", "stack/x").string()) == 0);
  CHECK(!fs::exists(fake.at("memory", "stack/x")));  // the other hierarchies still went
}

TEST_CASE("cgroup v2: create writes limits and enables controllers on ancestors") {
  test::TempDir dir("stack-cgv2");
  auto cg = make_cgroup_v2(dir.path());
  CHECK(cg->name() == "v2");
  test::write_text(dir / "stack/demo/web/memory.swap.max", "max\n");
  CgroupLimits limits;
  limits.memory_bytes = 33554432;
  limits.cpus = 0.5;
  limits.cpu_shares = 1024;
  limits.pids = 50;
  auto r = cg->create("stack/demo/web", limits);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  const fs::path leaf = dir / "stack/demo/web";
  CHECK(content(leaf / "memory.max") == "33554432");
  CHECK(content(leaf / "memory.swap.max") == "0");
  CHECK(content(leaf / "cpu.max") == "50000 100000");
  CHECK(content(leaf / "cpu.weight") == "39");
  CHECK(content(leaf / "pids.max") == "50");
  for (const fs::path& anc : {dir.path(), dir / "stack", dir / "stack/demo"}) {
    std::string sc = content(anc / "cgroup.subtree_control");
    CHECK_MESSAGE(sc.find("+memory") != std::string::npos, anc);
    CHECK_MESSAGE(sc.find("+cpu") != std::string::npos, anc);
    CHECK_MESSAGE(sc.find("+pids") != std::string::npos, anc);
  }
  // The leaf will hold processes: it must not enable controllers for children.
  CHECK(!fs::exists(leaf / "cgroup.subtree_control"));
}

TEST_CASE("cgroup v2: cpu shares convert to cpu.weight as runc does") {
  struct Case {
    int64_t shares, weight;
  };
  for (Case c : {Case{2, 1}, Case{1024, 39}, Case{262144, 10000}}) {
    test::TempDir dir("stack-cgv2");
    auto cg = make_cgroup_v2(dir.path());
    CgroupLimits limits;
    limits.cpu_shares = c.shares;
    REQUIRE(cg->create("stack/x", limits));
    CHECK_MESSAGE(content(dir / "stack/x/cpu.weight") == std::to_string(c.weight), c.shares);
  }
  test::TempDir dir("stack-cgv2");
  auto cg = make_cgroup_v2(dir.path());
  CgroupLimits limits;
  limits.cpu_shares = 1;
  CHECK(!cg->create("stack/x", limits));
}

TEST_CASE("cgroup v2: attach, pids, oom kills and stats") {
  test::TempDir dir("stack-cgv2");
  auto cg = make_cgroup_v2(dir.path());
  REQUIRE(cg->create("stack/x", {}));
  REQUIRE(cg->attach("stack/x", 777));
  CHECK(content(dir / "stack/x/cgroup.procs") == "777");
  CHECK(*cg->pids("stack/x") == std::vector<pid_t>{777});

  test::write_text(dir / "stack/x/memory.events",
                   "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n");
  auto oom = cg->oom_kills("stack/x");
  REQUIRE_MESSAGE(oom, (oom ? "" : oom.error().message));
  CHECK(*oom == 2);

  test::write_text(dir / "stack/x/memory.current", "4096\n");
  test::write_text(dir / "stack/x/pids.current", "1\n");
  test::write_text(dir / "stack/x/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
  auto st = cg->stats("stack/x");
  REQUIRE_MESSAGE(st, (st ? "" : st.error().message));
  CHECK(st->memory_bytes == 4096);
  CHECK(st->pids == 1);
  CHECK(st->cpu_usage_ns == 1500000);
}

TEST_CASE("cgroup v2: remove takes empty parents up to the top stack directory") {
  test::TempDir dir("stack-cgv2");
  auto cg = make_cgroup_v2(dir.path());
  REQUIRE(cg->create("stack/demo/web", {}));
  for (const auto& e : fs::recursive_directory_iterator(dir / "stack"))
    if (e.is_regular_file()) fs::remove(e.path());
  REQUIRE(cg->remove("stack/demo/web"));
  CHECK(!fs::exists(dir / "stack/demo"));
  CHECK(!fs::exists(dir / "stack"));
  REQUIRE(cg->remove("stack/demo/web"));
}

TEST_CASE("detect: a plain directory with memory/ is v1: without it, an error") {
  test::TempDir dir("stack-cgdetect");
  auto none = detect_cgroup_driver(dir.path());
  REQUIRE(!none);
  CHECK(none.error().message.find("cgroup: " + dir.path().string()) == 0);
  fs::create_directories(dir / "memory");
  auto d = detect_cgroup_driver(dir.path());
  REQUIRE(d);
  CHECK((*d)->name() == "v1");
}

TEST_CASE("cgroup v1: pause writes FROZEN to the freezer and frozen reads it back") {
  FakeV1 fake;
  fs::create_directories(fake.dir / "freezer");
  auto cg = make_cgroup_v1(fake.dir.path());
  const std::string c = "stack/demo/demo-web-1";
  REQUIRE(cg->create(c, {}));
  CHECK(*cg->frozen(c) == false);
  // The fake file reads back what was written at once; the kernel says FREEZING first.
  REQUIRE(cg->freeze(c, true));
  CHECK(content(fake.at("freezer", c) / "freezer.state") == "FROZEN");
  CHECK(*cg->frozen(c) == true);
  REQUIRE(cg->freeze(c, false));
  CHECK(content(fake.at("freezer", c) / "freezer.state") == "THAWED");
  CHECK(*cg->frozen(c) == false);
  // A cgroup that does not exist is not frozen, and cannot be frozen.
  CHECK(*cg->frozen("stack/demo/gone") == false);
  auto missing = cg->freeze("stack/demo/gone", true);
  REQUIRE(!missing);
  CHECK(missing.error().message.find("cgroup does not exist") != std::string::npos);
  CHECK(!cg->freeze("../escape", true));
}

TEST_CASE("cgroup v1: pause without a freezer hierarchy says so") {
  FakeV1 fake;
  auto cg = make_cgroup_v1(fake.dir.path());
  REQUIRE(cg->create("stack/demo/demo-web-1", {}));
  auto r = cg->freeze("stack/demo/demo-web-1", true);
  REQUIRE(!r);
  CHECK(r.error().message.find("no freezer hierarchy") != std::string::npos);
}
