// The cgroup v2 driver: one unified tree at ROOT. Controllers are enabled top-down in each
// ancestor's cgroup.subtree_control; the leaf's own subtree_control stays empty because a
// cgroup with processes may not enable controllers for children ("no internal processes").
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "engine/cgroup.h"
#include "engine/cgroup_fs.h"

namespace stack::engine {

namespace fs = std::filesystem;

namespace {

constexpr const char* kControllers[] = {"memory", "cpu", "pids"};
constexpr int64_t kCpuPeriodUs = 100000;

// cpu.shares (2..262144) to cpu.weight (1..10000), the conversion runc and crun use.
int64_t shares_to_weight(int64_t shares) { return 1 + ((shares - 2) * 9999) / 262142; }

bool contains(const std::vector<std::string>& v, std::string_view s) {
  for (const auto& x : v)
    if (x == s) return true;
  return false;
}

class CgroupV2 final : public CgroupDriver {
 public:
  CgroupV2(fs::path root, std::shared_ptr<DeviceFilter> devices)
      : root_(std::move(root)), devices_(std::move(devices)) {}

  [[nodiscard]] std::string_view name() const override { return "v2"; }

  Result<void> create(const std::string& path, const CgroupLimits& limits) override {
    const std::string ctx = "cgroup v2: create " + path;
    if (auto r = cgroupfs::check_relative(path); !r) return fail(r.error().wrap(ctx));
    if (limits.cpus && !(*limits.cpus > 0))
      return fail(ctx + ": cpus must be positive, got " + std::to_string(*limits.cpus));
    if (limits.cpu_shares && (*limits.cpu_shares < 2 || *limits.cpu_shares > 262144))
      return fail(ctx + ": cpu shares must be in 2..262144, got " +
                  std::to_string(*limits.cpu_shares));

    auto made = cgroupfs::make_dirs(root_, path);
    if (!made) return fail(made.error().wrap("cgroup v2"));
    const bool created = *made;
    auto r = configure(path, limits, ctx);
    if (!r && created) (void)remove(path);
    return r;
  }

  Result<void> attach(const std::string& path, pid_t pid) override {
    const std::string ctx = "cgroup v2: attach " + std::to_string(pid) + " to " + path;
    if (auto r = cgroupfs::check_relative(path); !r) return fail(r.error().wrap(ctx));
    if (!cgroupfs::is_dir(root_ / path)) return fail(ctx + ": cgroup does not exist");
    auto r = cgroupfs::write_value(root_ / path / "cgroup.procs", std::to_string(pid));
    if (!r) return fail(r.error().wrap("cgroup v2"));
    return {};
  }

  Result<uint64_t> oom_kills(const std::string& path) override {
    if (auto r = cgroupfs::check_relative(path); !r)
      return fail(r.error().wrap("cgroup v2: oom kills of " + path));
    auto r = cgroupfs::read_key(root_ / path / "memory.events", "oom_kill");
    if (!r) return fail(r.error().wrap("cgroup v2"));
    return r;
  }

  Result<std::vector<pid_t>> pids(const std::string& path) override {
    if (auto r = cgroupfs::check_relative(path); !r)
      return fail(r.error().wrap("cgroup v2: pids of " + path));
    auto r = cgroupfs::read_pids(root_ / path / "cgroup.procs");
    if (!r) return fail(r.error().wrap("cgroup v2"));
    return r;
  }

  // cgroup-v2.rst: writing cgroup.freeze starts the freeze; "frozen 1" in cgroup.events says
  // when every process has stopped. Bounded, and undone when it does not finish.
  Result<void> freeze(const std::string& path, bool frozen) override {
    const std::string ctx = std::string("cgroup v2: ") + (frozen ? "freeze " : "thaw ") + path;
    if (auto r = cgroupfs::check_relative(path); !r) return fail(r.error().wrap(ctx));
    if (!cgroupfs::is_dir(root_ / path)) return fail(ctx + ": cgroup does not exist");
    if (auto r = cgroupfs::write_value(root_ / path / "cgroup.freeze", frozen ? "1" : "0"); !r)
      return fail(r.error().wrap("cgroup v2"));
    for (int i = 0; i < 400; i++) {
      auto v = cgroupfs::read_key(root_ / path / "cgroup.events", "frozen");
      if (!v) return fail(v.error().wrap("cgroup v2"));
      if ((*v == 1) == frozen) return {};
      ::usleep(5000);
    }
    if (frozen) (void)cgroupfs::write_value(root_ / path / "cgroup.freeze", "0");
    return fail(ctx + ": not frozen after 2 s");
  }

  Result<bool> frozen(const std::string& path) override {
    if (auto r = cgroupfs::check_relative(path); !r)
      return fail(r.error().wrap("cgroup v2: freezer state of " + path));
    if (!cgroupfs::exists(root_ / path / "cgroup.events")) return false;
    auto v = cgroupfs::read_key(root_ / path / "cgroup.events", "frozen");
    if (!v) return fail(v.error().wrap("cgroup v2"));
    return *v == 1;
  }

  Result<CgroupStats> stats(const std::string& path) override {
    const std::string ctx = "cgroup v2: stats of " + path;
    if (auto r = cgroupfs::check_relative(path); !r) return fail(r.error().wrap(ctx));
    fs::path dir = root_ / path;
    if (!cgroupfs::is_dir(dir)) return fail(ctx + ": cgroup does not exist");
    CgroupStats s;
    // memory.current and pids.current exist only where the controller is enabled; without
    // it there is nothing to report, which is not an error.
    if (cgroupfs::exists(dir / "memory.current")) {
      auto v = cgroupfs::read_u64(dir / "memory.current");
      if (!v) return fail(v.error().wrap("cgroup v2"));
      s.memory_bytes = static_cast<int64_t>(*v);
      if (cgroupfs::exists(dir / "memory.max")) {  // not in the root cgroup
        auto limit = cgroupfs::read_value(dir / "memory.max");
        if (!limit) return fail(limit.error().wrap("cgroup v2"));
        if (limit->rfind("max", 0) != 0) s.memory_limit = std::atoll(limit->c_str());
      }
    }
    if (cgroupfs::exists(dir / "io.stat")) {
      auto v = cgroupfs::read_value(dir / "io.stat");
      if (!v) return fail(v.error().wrap("cgroup v2"));
      parse_block_io(*v, s.block_read_bytes, s.block_write_bytes);
    }
    if (cgroupfs::exists(dir / "pids.current")) {
      auto v = cgroupfs::read_u64(dir / "pids.current");
      if (!v) return fail(v.error().wrap("cgroup v2"));
      s.pids = static_cast<int64_t>(*v);
    }
    if (cgroupfs::exists(dir / "cpu.stat")) {
      auto v = cgroupfs::read_key(dir / "cpu.stat", "usage_usec");
      if (!v) return fail(v.error().wrap("cgroup v2"));
      s.cpu_usage_ns = *v * 1000;
    }
    return s;
  }

  Result<void> remove(const std::string& path) override {
    if (auto r = cgroupfs::check_relative(path); !r)
      return fail(r.error().wrap("cgroup v2: remove " + path));
    auto r = cgroupfs::remove_dirs(root_, path);
    if (!r) return fail(r.error().wrap("cgroup v2"));
    return {};
  }

  [[nodiscard]] Result<void> check_writable() const override {
    if (::access(root_.c_str(), W_OK) != 0)
      return fail_errno("cgroup v2: cannot create cgroups in " + root_.string());
    return {};
  }

 private:
  // Enables WANTED in DIR's cgroup.subtree_control; returns the controllers the host lacks.
  // All at once first (one write); if the kernel refuses (EINVAL/ENOENT: a controller is not
  // available in the parent), one by one to find which.
  Result<std::vector<std::string>> enable(const fs::path& dir,
                                          const std::vector<std::string>& wanted) {
    std::vector<std::string> missing;
    if (wanted.empty()) return missing;
    fs::path file = dir / "cgroup.subtree_control";
    std::string all;
    for (const auto& c : wanted) all += (all.empty() ? "+" : " +") + c;
    auto r = cgroupfs::write_value(file, all);
    if (r) return missing;
    if (r.error().sys_errno != EINVAL && r.error().sys_errno != ENOENT)
      return fail(r.error().wrap("cgroup v2"));
    for (const auto& c : wanted) {
      auto one = cgroupfs::write_value(file, "+" + c);
      if (one) continue;
      if (one.error().sys_errno != EINVAL && one.error().sys_errno != ENOENT)
        return fail(one.error().wrap("cgroup v2"));
      missing.push_back(c);
    }
    return missing;
  }

  Result<void> configure(const std::string& path, const CgroupLimits& limits,
                         const std::string& ctx) {
    // Top-down: a controller can be enabled for children only once the parent has it.
    std::vector<std::string> available(std::begin(kControllers), std::end(kControllers));
    std::vector<std::string> unavailable;
    fs::path dir = root_;
    for (const auto& part : fs::path(path)) {
      auto missing = enable(dir, available);
      if (!missing) return fail(missing.error());
      for (const auto& m : *missing) {
        unavailable.push_back(m);
        std::erase(available, m);
      }
      dir /= part;
    }
    auto need = [&](const char* controller, const char* what) -> Result<void> {
      if (!contains(unavailable, controller)) return {};
      return fail(ctx + ": " + what + " requested but the " + controller +
                  " controller is not available in " + root_.string() +
                  " (not in cgroup.controllers, or held by a cgroup v1 hierarchy)");
    };
    if (limits.memory_bytes || limits.memory_reservation)
      if (auto r = need("memory", "a memory limit"); !r) return r;
    if (limits.cpus || limits.cpu_shares || limits.cpu_quota || limits.cpu_period)
      if (auto r = need("cpu", "a cpu limit"); !r) return r;
    if (limits.pids)
      if (auto r = need("pids", "a pids limit"); !r) return r;

    fs::path leaf = root_ / path;
    if (limits.memory_bytes) {
      if (auto r = write(leaf / "memory.max", std::to_string(*limits.memory_bytes)); !r) return r;
      // No swap: otherwise the container can exceed its limit by swapping.
      // memswap_limit is memory + swap; v2's swap.max is the swap alone.
      std::string swap = "0";
      if (limits.memory_swap)
        swap = *limits.memory_swap < 0 ? "max"
                                       : std::to_string(*limits.memory_swap - *limits.memory_bytes);
      if (cgroupfs::exists(leaf / "memory.swap.max"))
        if (auto r = write(leaf / "memory.swap.max", swap); !r) return r;
    }
    if (limits.memory_reservation)
      if (auto r = write(leaf / "memory.low", std::to_string(*limits.memory_reservation)); !r)
        return r;
    if (!limits.cpuset_cpus.empty() || !limits.cpuset_mems.empty() || limits.blkio_weight ||
        !limits.blkio_device.empty())
      return fail(ctx + ": cpuset and blkio_config are not supported on cgroup v2 yet");
    if (limits.cpu_rt_runtime || limits.cpu_rt_period)
      return fail(ctx + ": cpu_rt_runtime needs RT group scheduling, which cgroup v2 does not "
                        "have (only v1's cpu controller)");
    // v2 has neither a per-cgroup swappiness nor a switch for the OOM killer.
    if (limits.swappiness)
      return fail(ctx + ": mem_swappiness has no cgroup v2 equivalent");
    if (limits.kernel_tcp) return fail(ctx + ": a kernel TCP memory limit has no cgroup v2 equivalent");
    if (limits.oom_kill_disable)
      return fail(ctx + ": oom_kill_disable has no cgroup v2 equivalent");
    if (limits.cpu_quota || limits.cpu_period) {
      std::string quota = !limits.cpu_quota || *limits.cpu_quota < 0
                              ? "max"
                              : std::to_string(*limits.cpu_quota);
      if (auto r = write(leaf / "cpu.max",
                         quota + " " + std::to_string(limits.cpu_period.value_or(kCpuPeriodUs)));
          !r)
        return r;
    }
    if (limits.cpus) {
      auto quota = static_cast<int64_t>(std::llround(*limits.cpus * kCpuPeriodUs));
      if (auto r =
              write(leaf / "cpu.max", std::to_string(quota) + " " + std::to_string(kCpuPeriodUs));
          !r)
        return r;
    }
    if (limits.cpu_shares)
      if (auto r = write(leaf / "cpu.weight", std::to_string(shares_to_weight(*limits.cpu_shares)));
          !r)
        return r;
    if (limits.pids)
      if (auto r = write(leaf / "pids.max", std::to_string(*limits.pids)); !r) return r;
    // cgroup v2 has no devices controller: the device cgroup is a BPF program on the cgroup.
    if (limits.devices) {
      if (!devices_) return fail(ctx + ": device rules requested but no device filter");
      if (auto r = devices_->attach(leaf, *limits.devices); !r)
        return fail(r.error().wrap("cgroup v2"));
    }
    return {};
  }

  static Result<void> write(const fs::path& file, const std::string& value) {
    auto r = cgroupfs::write_value(file, value);
    if (!r) return fail(r.error().wrap("cgroup v2"));
    return {};
  }

  fs::path root_;
  std::shared_ptr<DeviceFilter> devices_;
};

}  // namespace

std::unique_ptr<CgroupDriver> make_cgroup_v2(fs::path root, std::shared_ptr<DeviceFilter> devices) {
  return std::make_unique<CgroupV2>(std::move(root), std::move(devices));
}

}  // namespace stack::engine
