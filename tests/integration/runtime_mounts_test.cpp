// config.json's mount and root settings against stack-runtime, the same assertions against crun
// where installed: an idmapped bind, nosuid/nodev/noexec on a bind, linux.rootfsPropagation,
// linux.personality, linux.resources.blockIO, the inheritable and ambient sets. Root;
// containers, cgroups and directories named stack-rt-<pid>-..., removed pass or fail.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <sstream>

#include "runtime_support.h"

using namespace stack::test::rt;

namespace {

// BusyBox with CAP_SYS_ADMIN (it mounts) and no seccomp filter (config() has none).
json admin_config(const std::vector<std::string>& args, const fs::path& shared,
                  const std::string& id) {
  json c = config(args, shared, id);
  for (const char* set : {"bounding", "effective", "permitted"})
    c["process"]["capabilities"][set].push_back("CAP_SYS_ADMIN");
  return c;
}

}  // namespace

TEST_CASE("runtime idmapped bind mount shows a host directory owned by 1000 as 0") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    auto data = b.dir / "data";
    fs::create_directories(data);
    stack::test::write_text(data / "f", "x");
    REQUIRE(::chown(data.c_str(), 1000, 1000) == 0);
    REQUIRE(::chown((data / "f").c_str(), 1000, 1000) == 0);
    std::string id = unique("idmap");
    json c = config({"sh", "-c", "stat -c %u:%g /var/www /var/www/f > /tmp/own"}, b.shared, id);
    c["mounts"].push_back({{"destination", "/var/www"},
                           {"type", "bind"},
                           {"source", data.string()},
                           {"options", {"bind", "idmap"}},
                           // The source's 1000 as 0 (uid_map(5) "1000 0 1", crun's reading).
                           {"uidMappings", {{{"containerID", 1000}, {"hostID", 0}, {"size", 1}}}},
                           {"gidMappings", {{{"containerID", 1000}, {"hostID", 0}, {"size", 1}}}}});
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(stack::test::read_text(b.shared / "own") == "0:0\n0:0\n");
    struct stat st {};
    REQUIRE(::stat(data.c_str(), &st) == 0);
    CHECK(st.st_uid == 1000);  // the host's view is unchanged
  }
  // A filesystem without idmapped mounts (sysfs): refused, naming the mount.
  auto rt = runtimes(roots.path()).front();
  Bundle b;
  std::string id = unique("idmapsys");
  json c = config({"true"}, b.shared, id);
  c["mounts"].push_back({{"destination", "/var/www"},
                         {"type", "bind"},
                         {"source", "/sys/kernel"},
                         {"options", {"bind", "idmap"}},
                         {"uidMappings", {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}}},
                         {"gidMappings", {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}}}});
  b.write(c);
  b.made.emplace_back(&rt, id);
  auto r = rt({"create", "--bundle", b.path(), id});
  CHECK(r.code != 0);
  CHECK_MESSAGE(r.err.find("idmapped mount /sys/kernel on /var/www: its filesystem does not support "
                           "idmapped mounts") != std::string::npos,
                r.err);
  CHECK(status(rt, id) == "absent");
  CHECK_FALSE(cgroup_exists(id));
}

TEST_CASE("runtime bind mount options nosuid, nodev and noexec are applied") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    auto data = b.dir / "data";
    fs::create_directories(data);
    std::string id = unique("bindopts");
    json c = config({"sh", "-c", "grep ' /var/www ' /proc/self/mountinfo > /tmp/mi"}, b.shared, id);
    c["mounts"].push_back({{"destination", "/var/www"},
                           {"type", "bind"},
                           {"source", data.string()},
                           {"options", {"rbind", "nosuid", "nodev", "noexec"}}});
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    auto line = stack::test::read_text(b.shared / "mi");
    auto opts = line.substr(0, line.find(" - "));  // the mount's own options, not the super's
    CHECK_MESSAGE(opts.find("nosuid") != std::string::npos, line);
    CHECK_MESSAGE(opts.find("nodev") != std::string::npos, line);
    CHECK_MESSAGE(opts.find("noexec") != std::string::npos, line);
  }
}

TEST_CASE("runtime rootfsPropagation shared makes the root a peer group") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    for (std::string prop : {"shared", "private"}) {
      CAPTURE(prop);
      Bundle b;
      std::string id = unique("prop");
      // The root's line of mountinfo; then /home becomes a bind of / (a peer of it when / is
      // shared), and a tmpfs mounted on /root after start shows once more under /home/root
      // only if it propagated to that peer.
      json c = admin_config(
          {"sh", "-c",
           "awk '$5 == \"/\"' /proc/self/mountinfo > /tmp/root; mount --bind / /home && "
           "mount -t tmpfs stack-rt-peer /root && grep -c stack-rt-peer /proc/self/mountinfo "
           "> /tmp/count"},
          b.shared, id);
      c["linux"]["rootfsPropagation"] = prop;
      b.write(c);
      b.made.emplace_back(&rt, id);
      auto r = rt({"run", "--bundle", b.path(), id});
      REQUIRE_MESSAGE(r.code == 0, r.err);
      auto root = stack::test::read_text(b.shared / "root");
      CHECK_MESSAGE((root.find(" shared:") != std::string::npos) == (prop == "shared"), root);
      CHECK(stack::test::read_text(b.shared / "count") == (prop == "shared" ? "2\n" : "1\n"));
    }
  }
}

TEST_CASE("runtime personality LINUX32") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("persona");
    json c = config({"sh", "-c", "uname -m > /tmp/out"}, b.shared, id);
    c["linux"]["personality"] = {{"domain", "LINUX32"}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(stack::test::read_text(b.shared / "out") == "i686\n");
  }
}

TEST_CASE("runtime blockIO throttling and cpu mems are set on the container's cgroups") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  // The disk under the test's directory, whole: blk-throttle takes disks, not partitions.
  struct stat st {};
  REQUIRE(::stat(roots.path().c_str(), &st) == 0);
  unsigned maj = major(st.st_dev), min = minor(st.st_dev);
  auto sys = fs::path("/sys/dev/block") / (std::to_string(maj) + ":" + std::to_string(min));
  if (fs::exists(sys / "partition")) {
    auto whole = stack::test::read_text(sys / ".." / "dev");
    maj = std::stoul(whole.substr(0, whole.find(':')));
    min = std::stoul(whole.substr(whole.find(':') + 1));
  }
  std::string dev = std::to_string(maj) + ":" + std::to_string(min);
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("blkio");
    json c = config({"true"}, b.shared, id);
    c["linux"]["resources"]["blockIO"] = {
        {"throttleReadBpsDevice", {{{"major", maj}, {"minor", min}, {"rate", 1048576}}}}};
    c["linux"]["resources"]["cpu"] = {{"mems", "0"}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto cr = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    CHECK(stack::test::read_text("/sys/fs/cgroup/blkio/" + id + "/blkio.throttle.read_bps_device") ==
          dev + " 1048576\n");
    CHECK(stack::test::read_text("/sys/fs/cgroup/cpuset/" + id + "/cpuset.mems") == "0\n");
    CHECK(rt({"delete", "--force", id}).code == 0);
    CHECK_FALSE(fs::exists("/sys/fs/cgroup/blkio/" + id));
    CHECK_FALSE(fs::exists("/sys/fs/cgroup/cpuset/" + id));
  }
}

TEST_CASE("runtime sets the inheritable and ambient capability sets of config.json") {
  // runtime-tools' runtimetest compares all five sets with config.json's; its default bundle
  // has inheritable and ambient equal to the bounding set.
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("caps");
    json c = config({"sh", "-c", "grep -E '^Cap(Inh|Amb|Eff)' /proc/self/status > /tmp/caps"},
                    b.shared, id);
    json caps = {"CAP_KILL", "CAP_CHOWN"};  // bits 5 and 0: 0x21
    c["process"]["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps},
                                    {"inheritable", caps}, {"ambient", {"CAP_KILL"}}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(stack::test::read_text(b.shared / "caps") ==
          "CapInh:\t0000000000000021\nCapEff:\t0000000000000021\nCapAmb:\t0000000000000020\n");
  }
}

TEST_CASE("runtime runs `crun spec`'s capabilities: ambient ones outside inheritable not raised") {
  // `crun spec` and `runc spec` write ambient capabilities with no inheritable ones: the kernel
  // raises none of them (prctl(2) EPERM) and both runtimes run the process without them.
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("ambient");
    json c = config({"sh", "-c", "grep -E '^Cap(Inh|Amb|Eff)' /proc/self/status > /tmp/caps"},
                    b.shared, id);
    json caps = {"CAP_KILL", "CAP_CHOWN"};
    c["process"]["capabilities"] = {{"bounding", caps},
                                    {"effective", caps},
                                    {"permitted", caps},
                                    {"inheritable", json::array()},
                                    {"ambient", caps}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(stack::test::read_text(b.shared / "caps") ==
          "CapInh:\t0000000000000000\nCapEff:\t0000000000000021\nCapAmb:\t0000000000000000\n");
  }
}

TEST_CASE("runtime mounts config.json's kernel filesystems in the listed order") {
  // The runtime spec: "The runtime MUST mount entries in the listed order". runtime-tools'
  // runtimetest reads the mount table back and compares its order with config.json's.
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("order");
    json c = config({"sh", "-c", "awk '{print $5}' /proc/self/mountinfo > /tmp/order"}, b.shared,
                    id);
    auto byDst = [&](const std::string& dst) {
      for (const auto& m : c["mounts"])
        if (m["destination"] == dst) return m;
      return json{{"destination", dst}, {"type", "mqueue"}, {"source", "mqueue"}};
    };
    // /sys first and /proc last: no fixed order of the runtime's own gives this one.
    std::vector<std::string> order = {"/sys",      "/dev", "/dev/pts", "/dev/mqueue",
                                      "/dev/shm",  "/proc", "/tmp"};
    json mounts = json::array();
    for (const auto& dst : order) mounts.push_back(byDst(dst));
    c["mounts"] = mounts;
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    std::vector<std::string> seen;
    std::istringstream lines(stack::test::read_text(b.shared / "order"));
    for (std::string line; std::getline(lines, line);)
      if (std::find(order.begin(), order.end(), line) != order.end() &&
          std::find(seen.begin(), seen.end(), line) == seen.end())
        seen.push_back(line);
    CHECK(seen == order);
  }
}

TEST_CASE("runtime tmpfs mount with a propagation option is mounted with that propagation") {
  // runtime-tools' "mounts" program lists a tmpfs with "shared", which crun accepts; the
  // mountinfo line of a shared mount carries "shared:N".
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    for (std::string prop : {"shared", "rshared", "private"}) {
      CAPTURE(prop);
      Bundle b;
      std::string id = unique("tmpfsprop");
      json c = config({"sh", "-c", "grep ' /var/shared ' /proc/self/mountinfo > /tmp/mi"},
                      b.shared, id);
      c["mounts"].push_back({{"destination", "/var/shared"},
                             {"type", "tmpfs"},
                             {"source", "tmpfs"},
                             {"options", {"nosuid", "nodev", prop}}});
      b.write(c);
      b.made.emplace_back(&rt, id);
      auto r = rt({"run", "--bundle", b.path(), id});
      REQUIRE_MESSAGE(r.code == 0, r.err);
      auto line = stack::test::read_text(b.shared / "mi");
      REQUIRE_MESSAGE(line.find(" - tmpfs ") != std::string::npos, line);
      // crun sets the option, then its default rootfsPropagation (rprivate) on every mount
      // over it; stack-runtime leaves the root's mounts as they are without one, so it holds.
      bool kept = rt.name != "crun" && prop != "private";
      CHECK_MESSAGE((line.find(" shared:") != std::string::npos) == kept, line);
    }
  }
}

TEST_CASE("runtime bind mount with tmpfs data options runs, the data ignored") {
  // runtime-tools' "mounts" program binds /etc with "mode=755" and "size=1k" among its options;
  // crun hands them to mount(2), which ignores data with MS_BIND.
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    auto data = b.dir / "data";
    fs::create_directories(data);
    stack::test::write_text(data / "f", "x");
    std::string id = unique("binddata");
    json c = config({"sh", "-c", "cat /var/www/f > /tmp/out"}, b.shared, id);
    c["mounts"].push_back({{"destination", "/var/www"},
                           {"source", data.string()},
                           {"options", {"nosuid", "mode=755", "size=1k", "bind"}}});
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(stack::test::read_text(b.shared / "out") == "x");
    if (rt.name == "stack-runtime")
      CHECK_MESSAGE(r.err.find("\"mode=755\" ignored: a bind mount takes no filesystem data") !=
                        std::string::npos,
                    r.err);
  }
}
