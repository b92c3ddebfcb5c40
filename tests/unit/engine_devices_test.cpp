// The device cgroup in both drivers, against a fake cgroupfs and a recording device filter: v1
// denies everything then allows the rules (and, in hybrid mode, also attaches the program in
// the unified tree); v2 attaches the program to the container's cgroup. Rules render as v1
// writes them.
#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>

#include "common/files.h"
#include "engine/cgroup.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::engine;
namespace fs = std::filesystem;

namespace {

struct FakeDeviceFilter final : DeviceFilter {
  std::vector<std::pair<fs::path, std::vector<DeviceRule>>> calls;
  bool fail = false;
  int fail_errno = EINVAL;
  Result<void> attach(const fs::path& dir, const std::vector<DeviceRule>& rules) override {
    if (fail) return stack::fail("attach refused", fail_errno);
    calls.emplace_back(dir, rules);
    return {};
  }
};

std::string content(const fs::path& p) { return read_file(p).value_or("<missing>"); }

}  // namespace

TEST_CASE("device rules render as v1's devices.allow lines") {
  CHECK(device_rule_text(DeviceRule{'c', 1, 3, "rwm"}) == "c 1:3 rwm");
  CHECK(device_rule_text(DeviceRule{'b', -1, -1, "m"}) == "b *:* m");
  CHECK(device_rule_text(DeviceRule{'c', 136, -1, "rwm"}) == "c 136:* rwm");
  // The minimal /dev: mknod of anything, and only null, zero, full, random, urandom, tty,
  // ptmx and the pts devices to use.
  std::vector<std::string> text;
  for (const auto& r : default_device_rules()) text.push_back(device_rule_text(r));
  CHECK(text == std::vector<std::string>{"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm",
                                         "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm",
                                         "c 5:2 rwm", "c 136:* rwm"});
}

TEST_CASE("cgroup v1: device rules deny all, allow the rules, and go to the unified tree too") {
  test::TempDir dir("stack-cgdev1");
  for (const char* h : {"memory", "devices", "unified"}) fs::create_directories(dir / h);
  auto filter = std::make_shared<FakeDeviceFilter>();
  auto cg = make_cgroup_v1(dir.path(), filter);
  CgroupLimits limits;
  limits.devices = default_device_rules();
  auto r = cg->create("stack/p/c", limits);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  // A fake file keeps the last write; the kernel takes each write as one rule.
  CHECK(content(dir / "devices/stack/p/c/devices.deny") == "a");
  CHECK(content(dir / "devices/stack/p/c/devices.allow") == "c 136:* rwm");
  REQUIRE(filter->calls.size() == 1);
  CHECK(filter->calls[0].first == dir / "unified/stack/p/c");
  CHECK(filter->calls[0].second == default_device_rules());

  // Privileged: no rule at all, nothing denied.
  auto r2 = cg->create("stack/p/priv", CgroupLimits{});
  REQUIRE(r2);
  CHECK(!fs::exists(dir / "devices/stack/p/priv/devices.deny"));
  CHECK(filter->calls.size() == 1);
}

TEST_CASE("cgroup v1: where bpf(2) is refused the v1 rules stand alone, other errors fail") {
  test::TempDir dir("stack-cgdev1c");
  for (const char* h : {"memory", "devices", "unified"}) fs::create_directories(dir / h);
  auto filter = std::make_shared<FakeDeviceFilter>();
  filter->fail = true;
  filter->fail_errno = EPERM;  // systemd-nspawn's seccomp filter refuses bpf(2)
  auto cg = make_cgroup_v1(dir.path(), filter);
  CgroupLimits limits;
  limits.devices = default_device_rules();
  REQUIRE(cg->create("stack/p/c", limits));
  CHECK(content(dir / "devices/stack/p/c/devices.deny") == "a");
  filter->fail_errno = EINVAL;
  auto r = cg->create("stack/p/d", limits);
  REQUIRE(!r);
  CHECK(r.error().message.find("attach refused") != std::string::npos);
}

TEST_CASE("cgroup v1: device rules without the devices hierarchy are an error, nothing made") {
  test::TempDir dir("stack-cgdev1b");
  fs::create_directories(dir / "memory");
  auto cg = make_cgroup_v1(dir.path(), std::make_shared<FakeDeviceFilter>());
  CgroupLimits limits;
  limits.devices = default_device_rules();
  auto r = cg->create("stack/p/c", limits);
  REQUIRE(!r);
  CHECK(r.error().message.find("devices hierarchy") != std::string::npos);
  CHECK(!fs::exists(dir / "memory/stack"));
}

TEST_CASE("cgroup v2: device rules become a program on the container's cgroup") {
  test::TempDir dir("stack-cgdev2");
  test::write_text(dir / "cgroup.controllers", "memory pids\n");
  auto filter = std::make_shared<FakeDeviceFilter>();
  auto cg = make_cgroup_v2(dir.path(), filter);
  CgroupLimits limits;
  limits.devices = default_device_rules();
  REQUIRE(cg->create("stack/p/c", limits));
  REQUIRE(filter->calls.size() == 1);
  CHECK(filter->calls[0].first == dir / "stack/p/c");
  CHECK(filter->calls[0].second == default_device_rules());

  // A program the kernel refuses fails the create and removes what it made.
  filter->fail = true;
  auto r = cg->create("stack/p/d", limits);
  REQUIRE(!r);
  CHECK(r.error().message.find("attach refused") != std::string::npos);
  CHECK(!fs::exists(dir / "stack/p/d"));
}
