// linux.namespaces[].path: a container joining another's network, pid, ipc, uts, cgroup and user
// namespaces by path (podman's pods, --network ns:PATH), what the engine cannot make refused by
// name.
// Run against crun too where installed. Root; containers and cgroups named stack-rt-<pid>-...,
// removed pass or fail.
#include <sys/mount.h>
#include <sys/stat.h>

#include "runtime_support.h"

using namespace stack::test::rt;

namespace {

std::string ns_link(int pid, const char* kind) {
  return fs::read_symlink(fs::path("/proc") / std::to_string(pid) / "ns" / kind).string();
}

}  // namespace

TEST_CASE("runtime joins network, pid and ipc namespaces by path") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string first = unique("nsa");
    b.write(config(kWaitForGo, b.shared, first));
    b.made.emplace_back(&rt, first);
    REQUIRE(rt({"create", "--bundle", b.path(), first}).code == 0);
    REQUIRE(rt({"start", first}).code == 0);
    REQUIRE(wait_status(rt, first, "running"));
    int pid = json::parse(rt({"state", first}).out)["pid"].get<int>();

    Bundle b2;
    std::string second = unique("nsb");
    json c = config({"sh", "-c",
                     "for k in net pid ipc; do readlink /proc/self/ns/$k; done > /tmp/ns; "
                     "ls /proc | grep -c '^[0-9]' >> /tmp/ns"},
                    b2.shared, second);
    auto proc_ns = [&](const char* k) { return "/proc/" + std::to_string(pid) + "/ns/" + k; };
    c["linux"]["namespaces"] = {{{"type", "pid"}, {"path", proc_ns("pid")}},
                                {{"type", "network"}, {"path", proc_ns("net")}},
                                {{"type", "ipc"}, {"path", proc_ns("ipc")}},
                                {{"type", "uts"}},
                                {{"type", "mount"}}};
    b2.write(c);
    b2.made.emplace_back(&rt, second);
    auto r = rt({"run", "--bundle", b2.path(), second});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    auto lines = stack::test::read_text(b2.shared / "ns");
    CHECK(lines.find(ns_link(pid, "net") + "\n" + ns_link(pid, "pid") + "\n" +
                     ns_link(pid, "ipc") + "\n") == 0);
    // The first container's processes are seen from the second: more than its own shell's.
    CHECK(std::stoi(lines.substr(lines.rfind('\n', lines.size() - 2) + 1)) > 2);
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, first, "stopped"));
  }
  // What the engine cannot make is refused by the field.
  auto rt = runtimes(roots.path()).front();
  Bundle b;
  std::string id = unique("nsbogus");
  json c = config({"true"}, b.shared, id);
  c["linux"]["namespaces"].push_back({{"type", "bogus"}});
  b.write(c);
  b.made.emplace_back(&rt, id);
  auto r = rt({"create", "--bundle", b.path(), id});
  CHECK(r.code != 0);
  CHECK(r.err.find("linux.namespaces (bogus)") != std::string::npos);
  CHECK(status(rt, id) == "absent");
}

TEST_CASE("runtime joins uts and cgroup namespaces by path") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string first = unique("utsa");
    json a = config(kWaitForGo, b.shared, first);
    a["hostname"] = "rt-joined";
    a["linux"]["namespaces"].push_back({{"type", "cgroup"}});
    b.write(a);
    b.made.emplace_back(&rt, first);
    REQUIRE(rt({"create", "--bundle", b.path(), first}).code == 0);
    REQUIRE(rt({"start", first}).code == 0);
    REQUIRE(wait_status(rt, first, "running"));
    int pid = json::parse(rt({"state", first}).out)["pid"].get<int>();
    auto proc_ns = [&](const char* k) { return "/proc/" + std::to_string(pid) + "/ns/" + k; };

    Bundle b2;
    std::string second = unique("utsb");
    json c = config({"sh", "-c",
                     "hostname > /tmp/out; readlink /proc/self/ns/uts >> /tmp/out; "
                     "readlink /proc/self/ns/cgroup >> /tmp/out; "
                     "grep ':memory:' /proc/self/cgroup | cut -d: -f3 >> /tmp/out"},
                    b2.shared, second);
    c.erase("hostname");  // the joined namespace keeps its name
    c["linux"]["namespaces"] = {{{"type", "pid"}},
                                {{"type", "network"}},
                                {{"type", "ipc"}},
                                {{"type", "uts"}, {"path", proc_ns("uts")}},
                                {{"type", "cgroup"}, {"path", proc_ns("cgroup")}},
                                {{"type", "mount"}}};
    b2.write(c);
    b2.made.emplace_back(&rt, second);
    auto r = rt({"run", "--bundle", b2.path(), second});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    // Its cgroup seen from the first container's cgroup namespace, whose root is the first's.
    CHECK(stack::test::read_text(b2.shared / "out") ==
          "rt-joined\n" + ns_link(pid, "uts") + "\n" + ns_link(pid, "cgroup") + "\n/../" +
              second + "\n");
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, first, "stopped"));
  }
}

TEST_CASE("runtime joins a user namespace by path") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    // The mapped root writes the shared directories: open to it.
    fs::permissions(b.shared, fs::perms::all);
    std::string first = unique("usera");
    json a = config(kWaitForGo, b.shared, first);
    a["linux"]["namespaces"].push_back({{"type", "user"}});
    a["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
    a["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
    b.write(a);
    b.made.emplace_back(&rt, first);
    auto cr = rt({"create", "--bundle", b.path(), first});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    REQUIRE(rt({"start", first}).code == 0);
    REQUIRE(wait_status(rt, first, "running"));
    int pid = json::parse(rt({"state", first}).out)["pid"].get<int>();

    Bundle b2;
    fs::permissions(b2.shared, fs::perms::all);
    std::string second = unique("userb");
    json c = config({"sh", "-c",
                     "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' ' > /tmp/out; "
                     "readlink /proc/self/ns/user >> /tmp/out; id -u >> /tmp/out"},
                    b2.shared, second);
    c["linux"]["namespaces"].push_back(
        {{"type", "user"}, {"path", "/proc/" + std::to_string(pid) + "/ns/user"}});
    b2.write(c);
    b2.made.emplace_back(&rt, second);
    auto r = rt({"run", "--bundle", b2.path(), second});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(stack::test::read_text(b2.shared / "out") ==
          " 0 100000 65536\n 0 100000 65536\n" + ns_link(pid, "user") + "\n0\n");
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, first, "stopped"));
  }
}

TEST_CASE("runtime joins a mount namespace by path, building the root there") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  // stack-runtime only: crun 1.8.1 here fails the same bundle ("cannot setns ...: Invalid
  // argument") in its own init, so it cannot check this assertion.
  for (const auto& rt : {runtimes(roots.path()).front()}) {
    CAPTURE(rt.name);
    Bundle b;
    // A mount namespace of the test's own, kept by a bind of its nsfs file (unshare(1)), and
    // unmounted pass or fail: the mounts made in it go with it.
    auto ns = b.dir / "mntns";
    stack::test::write_text(ns, "");
    REQUIRE(stack::test::run({"/usr/bin/unshare", "--mount=" + ns.string(), "--propagation",
                              "private", "/bin/true"})
                .code == 0);
    struct Unmount {
      fs::path p;
      ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{ns};
    std::string id = unique("mntns");
    json c = config({"sh", "-c", "readlink /proc/self/ns/mnt > /tmp/out"}, b.shared, id);
    c["root"]["readonly"] = false;  // the root is no mount of the container's own there
    c["linux"]["namespaces"][4] = {{"type", "mount"}, {"path", ns.string()}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    struct stat st {};
    REQUIRE(::stat(ns.c_str(), &st) == 0);
    CHECK(stack::test::read_text(b.shared / "out") == "mnt:[" + std::to_string(st.st_ino) + "]\n");
    // Nothing of it was mounted in the host's namespace.
    CHECK(stack::test::read_text("/proc/self/mountinfo").find(
              (stack::test::busybox_rootfs() / "proc").string()) == std::string::npos);
  }
}

TEST_CASE("runtime makes the cgroup namespace at create, rooted at the container's cgroup") {
  // runtime-tools' linux_ns_nopath reads /proc/<pid>/ns/cgroup right after `create`.
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("cgns");
    json c = config({"sh", "-c", "grep ':memory:' /proc/self/cgroup | cut -d: -f3 > /tmp/out"},
                    b.shared, id);
    c["linux"]["namespaces"].push_back({{"type", "cgroup"}});
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    int pid = json::parse(rt({"state", id}).out)["pid"].get<int>();
    CHECK(ns_link(pid, "cgroup") != ns_link(getpid(), "cgroup"));
    REQUIRE(rt({"start", id}).code == 0);
    REQUIRE(wait_status(rt, id, "stopped"));
    CHECK(stack::test::read_text(b.shared / "out") == "/\n");
  }
}

TEST_CASE("runtime runs uidMappings without a user namespace with the host's ids, warning") {
  // runtime-tools' linux_uid_mappings sets maps and no user namespace; crun and runc read the
  // maps only for a user namespace and run the container with the host's ids.
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("nouserns");
    json c = config({"sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map > /tmp/out"}, b.shared,
                    id);
    c["linux"]["uidMappings"] = {{{"containerID", 1000}, {"hostID", 0}, {"size", 3200}}};
    c["linux"]["gidMappings"] = {{{"containerID", 1000}, {"hostID", 0}, {"size", 3200}}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    auto maps = stack::test::read_text(b.shared / "out");
    CHECK_MESSAGE(maps.find("4294967295") != std::string::npos, maps);  // the host's identity
    CHECK_MESSAGE(maps.find("1000") == std::string::npos, maps);
    if (rt.name == "stack-runtime")
      CHECK_MESSAGE(r.err.find("warning: linux.uidMappings, linux.gidMappings: ignored without a "
                               "user namespace") != std::string::npos,
                    r.err);
  }
}
