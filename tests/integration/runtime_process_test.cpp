// config.json's process settings the init applies before execve: umask, I/O priority,
// scheduler, capabilities of a user other than root, the memory policy; the time namespace and
// its offsets; exec into a container that joined a mount namespace by path.
// Run against crun too where crun 1.8.1 (Debian's) honours the field; where it silently ignores
// it (ioPriority, scheduler, memoryPolicy: it predates them) or fails it (a time namespace:
// "write to sync socket") the test says so and checks stack-runtime alone. Root; containers and
// cgroups named stack-rt-<pid>-..., removed pass or fail.
#include <sys/mount.h>
#include <sys/stat.h>

#include <functional>
#include <sstream>

#include "runtime_support.h"

using namespace stack::test::rt;

namespace {

// The runtimes that honour a field crun 1.8.1 does not know: stack-runtime alone.
std::vector<Oci> stack_only(const fs::path& dir, const char* why) {
  MESSAGE("checked against stack-runtime only: crun 1.8.1 " << std::string(why));
  return {runtimes(dir).front()};
}

// Fields 19 (nice), 40 (rt_priority) and 41 (policy) of /proc/self/stat, printed by the
// process reading it (a child of the service: it inherits the scheduling).
const std::string kSchedFields = "awk '{print $19, $40, $41}' /proc/self/stat";

// Runs CONFIG (edited by EDIT) to its end on RT; its stdout, or the failure.
RunResult run_with(const Oci& rt, const std::vector<std::string>& args,
                   const std::function<void(json&)>& edit) {
  Bundle b;
  std::string id = unique("proc");
  json c = config(args, b.shared, id);
  edit(c);
  b.write(c);
  b.made.emplace_back(&rt, id);
  return rt({"run", "--bundle", b.path(), id});
}

double uptime() {
  std::istringstream in(stack::test::read_text("/proc/uptime"));
  double up = 0;
  in >> up;
  return up;
}

}  // namespace

TEST_CASE("runtime applies process.user.umask to the service and to an exec") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("umask");
    json c = config({"sh", "-c", "umask > /tmp/umask; " + kWaitForGo[2]}, b.shared, id);
    c["process"]["user"]["umask"] = 027;
    b.write(c);
    b.made.emplace_back(&rt, id);
    REQUIRE(rt({"create", "--bundle", b.path(), id}).code == 0);
    REQUIRE(rt({"start", id}).code == 0);
    REQUIRE(wait_status(rt, id, "running"));
    json p = c["process"];
    p["args"] = {"sh", "-c", "umask; touch /tmp/made; stat -c %a /tmp/made"};
    p["user"]["umask"] = 077;
    stack::test::write_text(b.dir / "process.json", p.dump());
    auto e = rt({"exec", "--process", (b.dir / "process.json").string(), id});
    REQUIRE_MESSAGE(e.code == 0, e.err);
    CHECK(e.out == "0077\n600\n");
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, id, "stopped"));
    CHECK(stack::test::read_text(b.shared / "umask") == "0027\n");
  }
}

TEST_CASE("runtime sets process.ioPriority before execve") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : stack_only(roots.path(), "ignores process.ioPriority")) {
    CAPTURE(rt.name);
    // ionice(1) reads ioprio_get(2) of the shell itself.
    auto r = run_with(rt, {"sh", "-c", "ionice -p $$"}, [](json& c) {
      c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_BE"}, {"priority", 6}};
    });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "best-effort: prio 6\n");
    r = run_with(rt, {"sh", "-c", "ionice -p $$"}, [](json& c) {
      c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_RT"}, {"priority", 2}};
    });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "realtime: prio 2\n");
    r = run_with(rt, {"sh", "-c", "ionice -p $$"}, [](json& c) {
      c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_IDLE"}, {"priority", 0}};
    });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "idle\n");  // BusyBox prints no level for the idle class
    r = run_with(rt, {"true"}, [](json& c) {
      c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_NONE"}, {"priority", 0}};
    });
    CHECK(r.code != 0);
    CHECK(r.err.find("process.ioPriority.class") != std::string::npos);
    r = run_with(rt, {"true"}, [](json& c) {
      c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_BE"}, {"priority", 8}};
    });
    CHECK(r.code != 0);
    CHECK(r.err.find("process.ioPriority.priority") != std::string::npos);
  }
}

TEST_CASE("runtime sets process.scheduler before execve") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : stack_only(roots.path(), "ignores process.scheduler")) {
    CAPTURE(rt.name);
    // sched(7): SCHED_OTHER 0, FIFO 1, RR 2, BATCH 3, IDLE 5, DEADLINE 6.
    auto r = run_with(rt, {"sh", "-c", kSchedFields}, [](json& c) {
      c["process"]["scheduler"] = {{"policy", "SCHED_BATCH"}, {"nice", 7}};
    });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "7 0 3\n");
    r = run_with(rt, {"sh", "-c", kSchedFields}, [](json& c) {
      c["process"]["scheduler"] = {{"policy", "SCHED_IDLE"}};
    });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "0 0 5\n");
    // A realtime policy in cgroup v1 with RT group scheduling: the container's cpu cgroup needs
    // realtime runtime of its own (linux.resources.cpu.realtimeRuntime), else EPERM.
    r = run_with(rt, {"sh", "-c", kSchedFields}, [](json& c) {
      c["process"]["scheduler"] = {{"policy", "SCHED_RR"}, {"priority", 10}};
      c["linux"]["resources"]["cpu"] = {{"realtimeRuntime", 50000}};
    });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "0 10 2\n");
    if (fs::exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us")) {
      r = run_with(rt, {"true"}, [](json& c) {
        c["process"]["scheduler"] = {{"policy", "SCHED_FIFO"}, {"priority", 10}};
      });
      CHECK(r.code != 0);
      CHECK(r.err.find("process.scheduler") != std::string::npos);
      CHECK(r.err.find("realtimeRuntime") != std::string::npos);
    }
    // A deadline task may not fork (sched(7)): the service reads its own policy.
    r = run_with(rt, {"grep", "^policy", "/proc/self/sched"}, [](json& c) {
      c["process"]["scheduler"] = {{"policy", "SCHED_DEADLINE"},
                                   {"runtime", 1000000},
                                   {"deadline", 10000000},
                                   {"period", 10000000}};
    });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out.find(": ") != std::string::npos);
    CHECK(r.out.substr(r.out.find_last_of(' ') + 1) == "6\n");
    r = run_with(rt, {"true"}, [](json& c) {
      c["process"]["scheduler"] = {{"policy", "SCHED_BOGUS"}};
    });
    CHECK(r.code != 0);
    CHECK(r.err.find("process.scheduler.policy") != std::string::npos);
  }
}

TEST_CASE("runtime gives a user other than root the capabilities config.json lists") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  // Binds port 80 in the container's own network namespace: "bound" once it listens, "denied"
  // when nc gave up (bind: Permission denied).
  const std::string bind80 =
      "grep ^CapEff /proc/self/status; nc -l -p 80 & n=$!; "
      "while ! netstat -ltn | grep -q ':80 '; do "
      "kill -0 $n 2>/dev/null || { echo denied; exit 0; }; usleep 10000; done; "
      "echo bound; kill $n";
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    json one = {"CAP_NET_BIND_SERVICE"};  // bit 10: 0x400
    auto r = run_with(rt, {"sh", "-c", bind80}, [&](json& c) {
      c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
      c["process"]["capabilities"] = {{"bounding", one},
                                      {"effective", one},
                                      {"permitted", one},
                                      {"inheritable", one},
                                      {"ambient", one}};
    });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "CapEff:\t0000000000000400\nbound\n");
    // The same user without it: nothing effective, port 80 refused.
    r = run_with(rt, {"sh", "-c", bind80}, [&](json& c) {
      c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
      c["process"]["capabilities"] = {{"bounding", one}};
    });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "CapEff:\t0000000000000000\ndenied\n");
  }
}

TEST_CASE("runtime sets linux.memoryPolicy before execve") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : stack_only(roots.path(), "ignores linux.memoryPolicy")) {
    CAPTURE(rt.name);
    // numa_maps shows the task's policy for a mapping without one of its own (proc(5)).
    auto policy = [&](const json& mp) {
      auto r = run_with(rt, {"sh", "-c", "head -1 /proc/self/numa_maps | cut -d' ' -f2"},
                        [&](json& c) { c["linux"]["memoryPolicy"] = mp; });
      return r.code == 0 ? r.out : "failed: " + r.err;
    };
    CHECK(policy({{"mode", "MPOL_BIND"}, {"nodes", "0"}}) == "bind:0\n");
    CHECK(
        policy({{"mode", "MPOL_INTERLEAVE"}, {"nodes", "0"}, {"flags", {"MPOL_F_STATIC_NODES"}}}) ==
        "interleave=static:0\n");
    CHECK(policy({{"mode", "MPOL_PREFERRED"}, {"nodes", "0"}}) == "prefer:0\n");
    CHECK(policy({{"mode", "MPOL_LOCAL"}}) == "local\n");
    CHECK(policy({{"mode", "MPOL_DEFAULT"}}) == "default\n");
    // A node this host does not have is refused before anything is made.
    int nodes = 0;
    while (fs::exists("/sys/devices/system/node/node" + std::to_string(nodes))) nodes++;
    auto r = run_with(rt, {"true"}, [&](json& c) {
      c["linux"]["memoryPolicy"] = {{"mode", "MPOL_BIND"}, {"nodes", "0-" + std::to_string(nodes)}};
    });
    CHECK(r.code != 0);
    CHECK(r.err.find("linux.memoryPolicy.nodes") != std::string::npos);
    CHECK(r.err.find("node " + std::to_string(nodes)) != std::string::npos);
    r = run_with(rt, {"true"}, [](json& c) {
      c["linux"]["memoryPolicy"] = {{"mode", "MPOL_BIND"}};
    });
    CHECK(r.code != 0);
    CHECK(r.err.find("linux.memoryPolicy.nodes") != std::string::npos);
  }
}

TEST_CASE("runtime makes a time namespace with linux.timeOffsets, joined by exec and by path") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : stack_only(roots.path(), "fails any time namespace here")) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("time");
    json c = config({"sh", "-c",
                     "cat /proc/self/timens_offsets > /tmp/offsets; cat /proc/uptime > /tmp/up; " +
                         kWaitForGo[2]},
                    b.shared, id);
    c["linux"]["namespaces"].push_back({{"type", "time"}});
    c["linux"]["timeOffsets"] = {{"monotonic", {{"secs", 5000}, {"nanosecs", 0}}},
                                 {"boottime", {{"secs", 100000}, {"nanosecs", 7}}}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    double before = uptime();
    auto cr = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    REQUIRE(rt({"start", id}).code == 0);
    REQUIRE(wait_status(rt, id, "running"));
    int pid = json::parse(rt({"state", id}).out)["pid"].get<int>();
    auto ns = fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/time").string();
    CHECK(ns != fs::read_symlink("/proc/self/ns/time").string());
    // An exec lands in the container's time namespace.
    auto e = rt({"exec", id, "readlink", "/proc/self/ns/time"});
    REQUIRE_MESSAGE(e.code == 0, e.err);
    CHECK(e.out == ns + "\n");
    // A second container joins it by path: the same clocks.
    auto r =
        run_with(rt, {"sh", "-c", "readlink /proc/self/ns/time; cat /proc/self/timens_offsets"},
                 [&](json& c2) {
                   c2["linux"]["namespaces"].push_back(
                       {{"type", "time"}, {"path", "/proc/" + std::to_string(pid) + "/ns/time"}});
                 });
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out.rfind(ns + "\n", 0) == 0);
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, id, "stopped"));
    std::istringstream offsets(stack::test::read_text(b.shared / "offsets"));
    std::string clock;
    long long secs = 0, nsecs = 0;
    offsets >> clock >> secs >> nsecs;
    CHECK(clock == "monotonic");
    CHECK(secs == 5000);
    CHECK(nsecs == 0);
    offsets >> clock >> secs >> nsecs;
    CHECK(clock == "boottime");
    CHECK(secs == 100000);
    CHECK(nsecs == 7);
    CHECK(r.out.find("boottime") != std::string::npos);
    // /proc/uptime is the boot clock: shifted by the offset.
    std::istringstream up(stack::test::read_text(b.shared / "up"));
    double inside = 0;
    up >> inside;
    CHECK(inside >= before + 100000);
    CHECK(inside < uptime() + 100000 + 1);
  }
  // Offsets without a time namespace of the container's own are refused by the field (runc).
  auto rt = runtimes(roots.path()).front();
  auto r = run_with(rt, {"true"}, [](json& c) {
    c["linux"]["timeOffsets"] = {{"boottime", {{"secs", 1}, {"nanosecs", 0}}}};
  });
  CHECK(r.code != 0);
  CHECK(r.err.find("linux.timeOffsets") != std::string::npos);
}

TEST_CASE("runtime exec into a container that joined a mount namespace lands in its root") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  // stack-runtime only: crun 1.8.1 here fails a bundle joining a mount namespace (see
  // runtime_namespaces_test.cpp).
  for (const auto& rt : {runtimes(roots.path()).front()}) {
    CAPTURE(rt.name);
    Bundle b;
    auto ns = b.dir / "mntns";
    stack::test::write_text(ns, "");
    REQUIRE(stack::test::run({"/usr/bin/unshare", "--mount=" + ns.string(), "--propagation",
                              "private", "/bin/true"})
                .code == 0);
    struct Unmount {
      fs::path p;
      ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{ns};
    std::string id = unique("mntexec");
    json c = config(kWaitForGo, b.shared, id);
    c["root"]["readonly"] = false;
    c["linux"]["namespaces"][4] = {{"type", "mount"}, {"path", ns.string()}};
    c["process"]["cwd"] = "/tmp";
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto cr = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    REQUIRE(rt({"start", id}).code == 0);
    REQUIRE(wait_status(rt, id, "running"));
    stack::test::write_text(b.shared / "marker", "in-the-container\n");
    // The container's root: its /tmp is the shared directory, its /bin/sh BusyBox.
    auto e = rt({"exec", id, "sh", "-c", "cat /tmp/marker; readlink /bin/sh; pwd"});
    REQUIRE_MESSAGE(e.code == 0, e.err);
    CHECK(e.out == "in-the-container\n/bin/busybox\n/tmp\n");
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, id, "stopped"));
  }
}
