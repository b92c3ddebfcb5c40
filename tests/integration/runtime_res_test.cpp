// config.json's devices, id mappings, mount options, cgroup mount and the resources crun is
// compared with, against stack-runtime and the same assertions against crun where installed
// (issue 17). Root; containers, cgroups, mounts and directories named stack-rt-<pid>-...,
// removed pass or fail.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "runtime_support.h"

using namespace stack::test::rt;

namespace {

// A tmpfs mounted on the host at DIR for the test's length (a bind source's submount).
struct HostTmpfs {
  fs::path dir;
  bool mounted = false;
  explicit HostTmpfs(fs::path d) : dir(std::move(d)) {
    fs::create_directories(dir);
    mounted = ::mount("stack-rt-sub", dir.c_str(), "tmpfs", 0, "size=1m") == 0;
  }
  ~HostTmpfs() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
};

// A mountinfo line's own options (field 6: ID PARENT MAJ:MIN ROOT TARGET OPTIONS), between
// commas for whole-word matching.
std::string own_options(const std::string& line) {
  std::istringstream in(line);
  std::string f[6];
  for (auto& x : f) in >> x;
  return "," + f[5] + ",";
}

}  // namespace

TEST_CASE("runtime makes fifo devices and device nodes owned by another user") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("devs");
    json c = config({"sh", "-c", "stat -c '%F %a %u:%g' /dev/stk-fifo /dev/stk-null > /tmp/dev"},
                    b.shared, id);
    c["linux"]["devices"] = {
        {{"path", "/dev/stk-fifo"}, {"type", "p"}, {"fileMode", 0620}, {"uid", 1000}, {"gid", 1001}},
        {{"path", "/dev/stk-null"}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"fileMode", 0640},
         {"uid", 1000}, {"gid", 1001}}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(stack::test::read_text(b.shared / "dev") ==
          "fifo 620 1000:1001\ncharacter special file 640 1000:1001\n");
  }
}

TEST_CASE("runtime writes several uid and gid ranges of a user namespace") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    fs::permissions(b.shared, fs::perms::all);  // the mapped root writes there
    // Owned by a host id of the second range: container ids 1005:1006.
    stack::test::write_text(b.shared / "f", "x");
    REQUIRE(::chown((b.shared / "f").c_str(), 3101005, 3101006) == 0);
    std::string id = unique("ranges");
    json c = config({"sh", "-c",
                     "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' ' > /tmp/maps; "
                     "stat -c %u:%g /tmp/f > /tmp/own"},
                    b.shared, id);
    c["linux"]["namespaces"].push_back({{"type", "user"}});
    json ranges = {{{"containerID", 0}, {"hostID", 3000000}, {"size", 1000}},
                   {{"containerID", 1000}, {"hostID", 3101000}, {"size", 1000}}};
    c["linux"]["uidMappings"] = ranges;
    c["linux"]["gidMappings"] = ranges;
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::string map = " 0 3000000 1000\n 1000 3101000 1000\n";
    CHECK(stack::test::read_text(b.shared / "maps") == map + map);
    CHECK(stack::test::read_text(b.shared / "own") == "1005:1006\n");
  }
}

TEST_CASE("runtime bind takes the source's own mount only and rbind its submounts too") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    auto data = b.dir / "data";
    HostTmpfs sub(data / "sub");
    REQUIRE(sub.mounted);
    stack::test::write_text(data / "sub" / "inner", "x");
    std::string id = unique("rbind");
    // Mount points the BusyBox root has (the shared fixture is not written).
    json c = config({"sh", "-c", "ls /root/sub > /tmp/b; ls /home/app/sub > /tmp/r"}, b.shared, id);
    c["mounts"].push_back({{"destination", "/root"}, {"type", "bind"},
                           {"source", data.string()}, {"options", {"bind"}}});
    c["mounts"].push_back({{"destination", "/home/app"}, {"type", "bind"},
                           {"source", data.string()}, {"options", {"rbind"}}});
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(stack::test::read_text(b.shared / "b") == "");
    CHECK(stack::test::read_text(b.shared / "r") == "inner\n");
  }
}

TEST_CASE("runtime mount options atime, nodiratime, nosymfollow, rro and tmpcopyup are applied") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    auto data = b.dir / "data";
    fs::create_directories(data);
    std::string id = unique("mntopts");
    json c = config({"sh", "-c",
                     "grep -E ' /(root|home/app) ' /proc/self/mountinfo > /tmp/mi; "
                     "cat /etc/passwd > /tmp/passwd; ls /etc > /tmp/etc"},
                    b.shared, id);
    c["mounts"].push_back({{"destination", "/root"}, {"type", "bind"}, {"source", data.string()},
                           {"options", {"rbind", "rro", "noatime", "nodiratime", "nosymfollow"}}});
    c["mounts"].push_back({{"destination", "/home/app"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                           {"options", {"noexec", "nosuid", "nodev", "noatime", "size=1m"}}});
    c["mounts"].push_back({{"destination", "/etc"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                           {"options", {"tmpcopyup", "nosuid", "nodev"}}});
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    auto mi = stack::test::read_text(b.shared / "mi");
    auto bline = mi.substr(0, mi.find('\n'));
    auto tline = mi.substr(mi.find('\n') + 1);
    REQUIRE_MESSAGE(bline.find(" /root ") != std::string::npos, mi);
    REQUIRE_MESSAGE(tline.find(" /home/app ") != std::string::npos, mi);
    for (const char* o : {",ro,", ",noatime,", ",nodiratime,"})
      CHECK_MESSAGE(own_options(bline).find(o) != std::string::npos, o, " in ", bline);
    // crun 1.8.1 takes nosymfollow on a bind and drops it (its mountinfo line lacks it).
    if (rt.name == "stack-runtime")
      CHECK_MESSAGE(own_options(bline).find(",nosymfollow,") != std::string::npos, bline);
    for (const char* o : {",noexec,", ",nosuid,", ",nodev,", ",noatime,"})
      CHECK_MESSAGE(own_options(tline).find(o) != std::string::npos, o, " in ", tline);
    CHECK(stack::test::read_text(b.shared / "passwd") ==
          stack::test::read_text(stack::test::busybox_rootfs() / "etc/passwd"));
  }
}

TEST_CASE("runtime cgroup mount shows the container's own cgroups read-only") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("cgmount");
    json c = config({"sh", "-c",
                     "cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /tmp/limit; "
                     "ls /sys/fs/cgroup > /tmp/ls; "
                     "grep ' /sys/fs/cgroup/memory ' /proc/self/mountinfo > /tmp/mi"},
                    b.shared, id);
    c["mounts"].push_back({{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"},
                           {"source", "cgroup"},
                           {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}});
    c["linux"]["resources"]["memory"] = {{"limit", 67108864}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(stack::test::read_text(b.shared / "limit") == "67108864\n");
    auto ls = stack::test::read_text(b.shared / "ls");
    for (const char* h : {"cpu\n", "memory\n", "pids\n", "devices\n"})
      CHECK_MESSAGE(ls.find(h) != std::string::npos, h, " in ", ls);
    auto mi = stack::test::read_text(b.shared / "mi");
    // The container's own cgroup, not the hierarchy's root, read-only.
    CHECK_MESSAGE(mi.find(" /" + id + " /sys/fs/cgroup/memory ro,") != std::string::npos, mi);
  }
}

TEST_CASE("runtime kernelTCP sets the memory cgroup's kernel TCP limit") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("ktcp");
    json c = config({"true"}, b.shared, id);
    c["linux"]["resources"]["memory"] = {{"limit", 67108864}, {"kernelTCP", 33554432}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto cr = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    CHECK(stack::test::read_text("/sys/fs/cgroup/memory/" + id +
                                 "/memory.kmem.tcp.limit_in_bytes") == "33554432\n");
    CHECK(rt({"delete", "--force", id}).code == 0);
  }
}

TEST_CASE("runtime device cgroup rules are listed in config.json's order, first") {
  // runtime-tools' linux_cgroups_devices reads devices.list line by line against the config.
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("devorder");
    json c = config({"true"}, b.shared, id);
    c["linux"]["resources"]["devices"] = {
        {{"allow", false}, {"access", "rwm"}},
        {{"allow", true}, {"type", "c"}, {"major", 10}, {"minor", 229}, {"access", "rwm"}},
        {{"allow", true}, {"type", "b"}, {"major", 8}, {"minor", 20}, {"access", "rw"}}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto cr = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    auto list = stack::test::read_text("/sys/fs/cgroup/devices/" + id + "/devices.list");
    CHECK_MESSAGE(list.rfind("c 10:229 rwm\nb 8:20 rw\n", 0) == 0, list);
    CHECK(rt({"delete", "--force", id}).code == 0);
  }
}

TEST_CASE("runtime hugepageLimits and network fail here, with crun too") {
  // This host has the hugetlb, net_cls and net_prio controllers but mounts none: crun fails
  // opening their cgroup directories, stack-runtime refuses naming the field.
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    for (auto [key, value] :
         {std::pair<std::string, json>{"hugepageLimits", {{{"pageSize", "2MB"}, {"limit", 4194304}}}},
          std::pair<std::string, json>{"network", {{"classID", 1048577}}}}) {
      CAPTURE(key);
      Bundle b;
      std::string id = unique("nores");
      json c = config({"true"}, b.shared, id);
      c["linux"]["resources"][key] = value;
      b.write(c);
      b.made.emplace_back(&rt, id);
      auto r = rt({"run", "--bundle", b.path(), id});
      CHECK(r.code != 0);
      if (rt.name == "stack-runtime") {
        CHECK_MESSAGE(r.err.find("linux.resources." + key) != std::string::npos, r.err);
        CHECK_FALSE(cgroup_exists(id));
      } else {
        // crun leaves the cgroups it made, and has no state for `delete` to find them by.
        std::error_code ec;
        for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec))
          ::rmdir((h.path() / id).c_str());
      }
    }
  }
}

TEST_CASE("runtime refuses mount options it does not know, naming them") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  auto rt = runtimes(roots.path()).front();
  struct Case {
    json mount;
    std::string says;
  };
  Bundle b;
  std::vector<Case> cases = {
      {{{"destination", "/mnt/b"}, {"type", "bind"}, {"source", b.shared.string()},
        {"options", {"rbind", "tmpcopyup"}}},
       "\"tmpcopyup\" is not supported on a bind mount"},
      {{{"destination", "/mnt/t"}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", {"suid"}}},
       "\"suid\": a tmpfs is always nosuid here"},
      {{{"destination", "/mnt/t"}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", {"mand"}}},
       "\"mand\" is not supported on a tmpfs"}};
  for (const auto& k : cases) {
    std::string id = unique("badopt");
    json c = config({"true"}, b.shared, id);
    c["mounts"].push_back(k.mount);
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"create", "--bundle", b.path(), id});
    CHECK(r.code != 0);
    CHECK_MESSAGE(r.err.find(k.says) != std::string::npos, r.err);
    CHECK(status(rt, id) == "absent");
    CHECK_FALSE(cgroup_exists(id));
  }
}
