// `update`: runc's limit flags (as podman and containerd pass them) and --resources FILE change
// a running container's cgroup, read back from the cgroup's own files; what cannot change is
// refused by name and changes nothing. Run against crun too where installed. Root; containers
// and cgroups named stack-rt-<pid>-..., removed pass or fail.
#include "runtime_support.h"

using namespace stack::test::rt;

namespace {

std::string cgroup_file(const std::string& id, const char* hierarchy, const char* file) {
  auto text = stack::test::read_text(fs::path("/sys/fs/cgroup") / hierarchy / id / file);
  return text.substr(0, text.find('\n'));
}

}  // namespace

TEST_CASE("runtime update sets memory, cpu and pids limits of a running container") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("update");
    b.write(config(kWaitForGo, b.shared, id));
    b.made.emplace_back(&rt, id);
    REQUIRE(rt({"create", "--bundle", b.path(), id}).code == 0);
    REQUIRE(rt({"start", id}).code == 0);
    REQUIRE(wait_status(rt, id, "running"));

    // crun 1.8 (Debian 12) builds invalid JSON from several of these flags ("cannot parse the
    // data"): they are checked on stack-runtime, --resources on both.
    if (rt.name == "stack-runtime") {
      auto u = rt({"update", "--memory", "64m", "--cpu-period", "100000", "--cpu-quota", "20000",
                   "--pids-limit", "50", id});
      REQUIRE_MESSAGE(u.code == 0, u.err);
      CHECK(cgroup_file(id, "memory", "memory.limit_in_bytes") == "67108864");
      CHECK(cgroup_file(id, "cpu", "cpu.cfs_quota_us") == "20000");
      CHECK(cgroup_file(id, "pids", "pids.max") == "50");
    } else {
      auto u = rt({"update", "--cpu-quota", "20000", id});
      REQUIRE_MESSAGE(u.code == 0, u.err);
    }

    auto file = b.dir / "resources.json";
    stack::test::write_text(file, R"({"memory": {"limit": 33554432}, "pids": {"limit": 60}})");
    auto u = rt({"update", "--resources", file.string(), id});
    REQUIRE_MESSAGE(u.code == 0, u.err);
    CHECK(cgroup_file(id, "memory", "memory.limit_in_bytes") == "33554432");
    CHECK(cgroup_file(id, "pids", "pids.max") == "60");
    CHECK(cgroup_file(id, "cpu", "cpu.cfs_quota_us") == "20000");  // absent: unchanged

    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, id, "stopped"));
  }
  // A member the engine cannot set is refused by its name, the limits left as they were.
  auto rt = runtimes(roots.path()).front();
  Bundle b;
  std::string id = unique("update-refuse");
  b.write(config(kWaitForGo, b.shared, id));
  b.made.emplace_back(&rt, id);
  REQUIRE(rt({"create", "--bundle", b.path(), id}).code == 0);
  auto file = b.dir / "resources.json";
  stack::test::write_text(file, R"({"pids": {"limit": 70}, "network": {"classID": 1}})");
  auto u = rt({"update", "--resources", file.string(), id});
  CHECK(u.code != 0);
  CHECK(u.err.find("linux.resources.network") != std::string::npos);
  CHECK(cgroup_file(id, "pids", "pids.max") == "max");
}
