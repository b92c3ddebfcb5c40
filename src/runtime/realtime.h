// Whether a realtime process.scheduler (SCHED_FIFO, SCHED_RR) can run in the container's cpu
// cgroup. With RT group scheduling a cpu cgroup the runtime makes has no realtime runtime, and
// sched_setattr(2) of a realtime policy in it fails with EPERM (sched(7), sched-rt-group.rst).
// The decision is pure over what the host shows; realtime_host() reads that (no writes).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "model/container.h"

namespace stack::runtime {

struct RealtimeHost {
  // The container's cgroups are the unified hierarchy's (/sys/fs/cgroup is cgroup2).
  bool cgroup_v2 = false;
  // v1: the cpu hierarchy has cpu.rt_runtime_us (RT group scheduling built and enabled: the
  // kernel hides the file otherwise).
  bool v1_rt_files = false;
  // v2: "cpu" in the root's cgroup.controllers (the driver then enables it down to the
  // container's cgroup); absent when a v1 hierarchy holds it.
  bool v2_cpu = false;
  // CONFIG_RT_GROUP_SCHED, not switched off at boot. cgroup v2 has no cpu.rt_* files to show it,
  // so it is read from the kernel's config; unset where none is found.
  std::optional<bool> rt_group_sched;
  // kernel.sched_rt_runtime_us is not -1: with RT throttling off the kernel skips the check.
  bool rt_throttling = true;
};

// RT group scheduling from the kernel's config text (/proc/config.gz, /boot/config-RELEASE; empty:
// none found) and its command line: CONFIG_RT_GROUP_SCHED=y, unless rt_group_sched=0 or
// CONFIG_RT_GROUP_SCHED_DEFAULT_DISABLED=y without rt_group_sched=1 (Linux 6.16).
std::optional<bool> rt_group_sched_from(std::string_view kernel_config, std::string_view cmdline);

// The running kernel's config: /boot/config-RELEASE (Debian's), else /proc/config.gz
// (CONFIG_IKCONFIG_PROC). Empty when neither is there.
std::string kernel_config();

// What this host shows: /sys/fs/cgroup, the kernel's config, /proc/cmdline and
// /proc/sys/kernel/sched_rt_runtime_us.
RealtimeHost realtime_host();

// PROCESS's scheduler in a cpu cgroup with LIMITS on HOST: refused, naming process.scheduler,
// where the kernel would refuse it with EPERM.
[[nodiscard]] Result<void> check_realtime(const model::ProcessSpec& process,
                                          const model::CgroupLimits& limits,
                                          const RealtimeHost& host);

}  // namespace stack::runtime
