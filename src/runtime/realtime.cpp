// The realtime check of realtime.h: the decision over what the host shows, and the reading of
// it. Reads /sys, /proc and /boot only.
#include "runtime/realtime.h"

#include <linux/magic.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <zlib.h>

#include "common/files.h"

namespace stack::runtime {
namespace {

bool exists(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0;
}

// Whether one of TEXT's items (a kernel config's lines, a command line's words: split at
// SEPARATOR) is exactly KEY=VALUE.
bool has_setting(std::string_view text, std::string_view key, std::string_view value,
                 char separator) {
  while (!text.empty()) {
    size_t end = text.find(separator);
    std::string_view item = text.substr(0, end);
    if (item.size() == key.size() + 1 + value.size() && item.substr(0, key.size()) == key &&
        item[key.size()] == '=' && item.substr(key.size() + 1) == value)
      return true;
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return false;
}

}  // namespace

std::string kernel_config() {
  utsname u{};
  if (::uname(&u) == 0)
    if (auto text = read_file(std::string("/boot/config-") + u.release); text) return *text;
  std::string out;
  gzFile gz = ::gzopen("/proc/config.gz", "rb");
  if (!gz) return out;
  char buf[65536];
  for (int n; (n = ::gzread(gz, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::gzclose(gz);
  return out;
}

std::optional<bool> rt_group_sched_from(std::string_view config, std::string_view cmdline) {
  if (config.empty()) return std::nullopt;
  if (!has_setting(config, "CONFIG_RT_GROUP_SCHED", "y", '\n')) return false;
  // Its command line words, the last line stripped of its newline.
  while (!cmdline.empty() && cmdline.back() == '\n') cmdline.remove_suffix(1);
  if (has_setting(cmdline, "rt_group_sched", "0", ' ')) return false;
  if (has_setting(cmdline, "rt_group_sched", "1", ' ')) return true;
  return !has_setting(config, "CONFIG_RT_GROUP_SCHED_DEFAULT_DISABLED", "y", '\n');
}

RealtimeHost realtime_host() {
  RealtimeHost h;
  struct statfs st {};
  h.cgroup_v2 = ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
  if (!h.cgroup_v2) {
    h.v1_rt_files = exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us");
  } else {
    auto controllers = read_file("/sys/fs/cgroup/cgroup.controllers");
    std::string words = controllers ? *controllers : "";
    for (char& c : words)
      if (c == '\n') c = ' ';
    h.v2_cpu = (" " + words + " ").find(" cpu ") != std::string::npos;
    auto cmdline = read_file("/proc/cmdline");
    h.rt_group_sched = rt_group_sched_from(kernel_config(), cmdline ? *cmdline : "");
  }
  auto runtime = read_file("/proc/sys/kernel/sched_rt_runtime_us");
  h.rt_throttling = !runtime || runtime->rfind("-1", 0) != 0;
  return h;
}

Result<void> check_realtime(const model::ProcessSpec& process, const model::CgroupLimits& limits,
                            const RealtimeHost& host) {
  const auto& s = process.scheduler;
  if (!s || (s->policy != SCHED_FIFO && s->policy != SCHED_RR)) return {};
  // sched_setattr(2)'s EPERM for a cpu cgroup without realtime runtime is only checked with
  // RT throttling on (rt_bandwidth_enabled(): kernel.sched_rt_runtime_us >= 0).
  if (!host.rt_throttling) return {};
  std::string policy = s->policy == SCHED_FIFO ? "SCHED_FIFO" : "SCHED_RR";
  if (!host.cgroup_v2) {
    if (!host.v1_rt_files || limits.cpu_rt_runtime.value_or(0) > 0) return {};
    return fail("process.scheduler: " + policy +
                " needs linux.resources.cpu.realtimeRuntime: with RT group scheduling (cgroup "
                "v1) the container's cpu cgroup has no realtime runtime otherwise");
  }
  // v2 has no cpu.rt_runtime_us: a cpu cgroup there never gets realtime runtime. Where the
  // kernel's config is unknown the process is let through (the init names the EPERM).
  if (!host.v2_cpu || host.rt_group_sched != true) return {};
  return fail("process.scheduler: " + policy +
              " cannot run in the container's cpu cgroup: this kernel does RT group scheduling "
              "(CONFIG_RT_GROUP_SCHED) and cgroup v2 has no cpu.rt_runtime_us to give the "
              "cgroup realtime runtime (boot with rt_group_sched=0 to allow it)");
}

}  // namespace stack::runtime
