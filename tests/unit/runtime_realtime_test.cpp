// stack-runtime's realtime check (src/runtime/realtime.h): given what a host shows (cgroup v1 or
// v2, RT group scheduling in the kernel's config and command line, RT throttling), whether a
// SCHED_FIFO/SCHED_RR process.scheduler is refused, naming the field. No host needed, but for
// reading this kernel's config (no root).
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "runtime/realtime.h"

using stack::runtime::check_realtime;
using stack::runtime::RealtimeHost;
using stack::runtime::rt_group_sched_from;

namespace {

stack::model::ProcessSpec with_policy(uint32_t policy) {
  stack::model::ProcessSpec p;
  p.scheduler = stack::model::Scheduler{};
  p.scheduler->policy = policy;
  p.scheduler->priority = policy == SCHED_FIFO || policy == SCHED_RR ? 10 : 0;
  return p;
}

// The refusal for a SCHED_FIFO process on HOST with LIMITS, "" when let through.
std::string refusal(const RealtimeHost& host, stack::model::CgroupLimits limits = {}) {
  auto r = check_realtime(with_policy(SCHED_FIFO), limits, host);
  return r ? "" : r.error().message;
}

RealtimeHost v2_host(std::optional<bool> rt_group_sched) {
  RealtimeHost h;
  h.cgroup_v2 = true;
  h.v2_cpu = true;
  h.rt_group_sched = rt_group_sched;
  return h;
}

}  // namespace

TEST_CASE("runtime realtime: cgroup v1 needs realtimeRuntime where cpu.rt_runtime_us is shown") {
  RealtimeHost v1;
  v1.v1_rt_files = true;
  CHECK(refusal(v1).find("process.scheduler: SCHED_FIFO needs "
                         "linux.resources.cpu.realtimeRuntime") == 0);
  stack::model::CgroupLimits given;
  given.cpu_rt_runtime = 50000;
  CHECK(refusal(v1, given).empty());
  // No cpu.rt_runtime_us: no RT group scheduling (not built, or rt_group_sched=0).
  v1.v1_rt_files = false;
  CHECK(refusal(v1).empty());
  // SCHED_RR is named as such; the other policies are never refused.
  v1.v1_rt_files = true;
  auto rr = check_realtime(with_policy(SCHED_RR), {}, v1);
  REQUIRE_FALSE(rr);
  CHECK(rr.error().message.find("SCHED_RR") != std::string::npos);
  CHECK(check_realtime(with_policy(SCHED_OTHER), {}, v1));
  CHECK(check_realtime(with_policy(SCHED_BATCH), {}, v1));
  CHECK(check_realtime(stack::model::ProcessSpec{}, {}, v1));
}

TEST_CASE("runtime realtime: cgroup v2 refuses a realtime policy with RT group scheduling") {
  // v2 has no cpu.rt_runtime_us: realtimeRuntime cannot help, the kernel's config decides.
  std::string msg = refusal(v2_host(true));
  CHECK(msg.find("process.scheduler: SCHED_FIFO cannot run") == 0);
  CHECK(msg.find("CONFIG_RT_GROUP_SCHED") != std::string::npos);
  stack::model::CgroupLimits given;
  given.cpu_rt_runtime = 50000;
  CHECK_FALSE(refusal(v2_host(true), given).empty());
  CHECK(refusal(v2_host(false)).empty());
  // No config found: let through (the init names the EPERM if it comes).
  CHECK(refusal(v2_host(std::nullopt)).empty());
  // The cpu controller held by a v1 hierarchy: the container gets no v2 cpu cgroup.
  RealtimeHost no_cpu = v2_host(true);
  no_cpu.v2_cpu = false;
  CHECK(refusal(no_cpu).empty());
  // cpu.rt_runtime_us of a v1 cpu hierarchy says nothing about the v2 tree.
  RealtimeHost v1_files = v2_host(false);
  v1_files.v1_rt_files = true;
  CHECK(refusal(v1_files).empty());
}

TEST_CASE("runtime realtime: with RT throttling off (sched_rt_runtime_us -1) nothing is refused") {
  RealtimeHost v1;
  v1.v1_rt_files = true;
  v1.rt_throttling = false;
  CHECK(refusal(v1).empty());
  RealtimeHost v2 = v2_host(true);
  v2.rt_throttling = false;
  CHECK(refusal(v2).empty());
}

TEST_CASE("runtime realtime: RT group scheduling from the kernel's config and command line") {
  const char* built =
      "CONFIG_CGROUP_SCHED=y\nCONFIG_RT_GROUP_SCHED=y\n"
      "# CONFIG_RT_GROUP_SCHED_DEFAULT_DISABLED is not set\n";
  const char* default_off = "CONFIG_RT_GROUP_SCHED=y\nCONFIG_RT_GROUP_SCHED_DEFAULT_DISABLED=y\n";
  CHECK(rt_group_sched_from(built, "console=ttyS0 quiet\n") == true);
  CHECK(rt_group_sched_from(built, "quiet rt_group_sched=0\n") == false);
  CHECK(rt_group_sched_from(default_off, "quiet\n") == false);
  CHECK(rt_group_sched_from(default_off, "rt_group_sched=1 quiet") == true);
  CHECK(rt_group_sched_from("# CONFIG_RT_GROUP_SCHED is not set\nCONFIG_CGROUP_SCHED=y\n", "") ==
        false);
  // A longer name is not the option itself.
  CHECK(rt_group_sched_from("CONFIG_RT_GROUP_SCHED_X=y\n", "") == false);
  CHECK(rt_group_sched_from(built, "xrt_group_sched=0") == true);
  CHECK_FALSE(rt_group_sched_from("", "quiet").has_value());
}

TEST_CASE("runtime realtime: this kernel's config is read from /boot or /proc/config.gz") {
  std::string config = stack::runtime::kernel_config();
  struct utsname u {};
  REQUIRE(::uname(&u) == 0);
  bool have = ::access((std::string("/boot/config-") + u.release).c_str(), R_OK) == 0 ||
              ::access("/proc/config.gz", R_OK) == 0;
  if (!have) {
    CHECK(config.empty());
    return;
  }
  // Decompressed text (cgroups: this engine's kernels all have them).
  CHECK(config.find("CONFIG_CGROUPS=y\n") != std::string::npos);
  CHECK(rt_group_sched_from(config, "").has_value());
}
