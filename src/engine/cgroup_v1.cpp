// The cgroup v1 driver: one hierarchy per controller at ROOT/<controller>/, the same relative
// cgroup path created in each. Needs root on a real host; works on any fake tree for tests.
// Controllers: memory, cpu, pids, devices for limits; cpuacct, freezer, name=systemd for
// accounting; in hybrid mode also the controller-less cgroup2 tree at unified/, where systemd
// tracks units and where the kernel also runs a cgroup2 device program (so ours goes there).
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <string_view>
#include <vector>

#include "engine/cgroup.h"
#include "engine/cgroup_fs.h"

namespace stack::engine {

namespace fs = std::filesystem;

namespace {

// "unified" matters under systemd in hybrid mode: it tracks a unit's processes there, not in
// name=systemd, so a container left in the daemon's cgroup of that tree would still belong to
// stack.service ("left-over process" at each daemon restart, killed by `systemctl kill stack`).
constexpr const char* kHierarchies[] = {"memory",  "cpu",     "pids",    "devices", "cpuacct",
                                        "freezer", "systemd", "unified", "cpuset",  "blkio"};
// Made only for a container that asks for them: a cpuset cgroup needs its cpus and mems
// copied down every level before it can hold a task, a cost ordinary containers skip.
bool is_optional(const std::filesystem::path& dir) {
  return dir.filename() == "cpuset" || dir.filename() == "blkio";
}
bool optional_hierarchy(const std::filesystem::path& dir, const CgroupLimits& limits) {
  std::string name = dir.filename().string();
  if (name == "cpuset") return limits.cpuset_cpus.empty() && limits.cpuset_mems.empty();
  if (name == "blkio") return !limits.blkio_weight && limits.blkio_device.empty();
  return false;
}
constexpr int64_t kCfsPeriodUs = 100000;

}  // namespace

void parse_block_io(std::string_view text, uint64_t& read, uint64_t& write) {
  read = write = 0;
  while (!text.empty()) {
    auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    // Words after the device: "Read 4096" (v1) or "rbytes=4096 wbytes=0 ..." (v2).
    std::vector<std::string_view> words;
    for (size_t i = 0; i < line.size();) {
      size_t j = line.find(' ', i);
      if (j == std::string_view::npos) j = line.size();
      if (j > i) words.push_back(line.substr(i, j - i));
      i = j + 1;
    }
    auto number = [](std::string_view w) {
      uint64_t v = 0;
      std::from_chars(w.data(), w.data() + w.size(), v);
      return v;
    };
    if (words.size() == 3 && words[1] == "Read") read += number(words[2]);
    if (words.size() == 3 && words[1] == "Write") write += number(words[2]);
    for (size_t i = 1; i < words.size(); i++) {
      if (words[i].rfind("rbytes=", 0) == 0) read += number(words[i].substr(7));
      if (words[i].rfind("wbytes=", 0) == 0) write += number(words[i].substr(7));
    }
  }
}

namespace {

class CgroupV1 final : public CgroupDriver {
 public:
  CgroupV1(fs::path root, std::shared_ptr<DeviceFilter> devices)
      : root_(std::move(root)), devices_(std::move(devices)) {}

  [[nodiscard]] std::string_view name() const override { return "v1"; }

  Result<void> create(const std::string& path, const CgroupLimits& limits) override {
    const std::string ctx = "cgroup v1: create " + path;
    if (auto r = cgroupfs::check_relative(path); !r) return fail(r.error().wrap(ctx));
    if (limits.memory_bytes && !has("memory"))
      return fail(ctx + ": a memory limit needs the memory hierarchy, missing at " +
                  (root_ / "memory").string());
    if ((limits.cpus || limits.cpu_shares) && !has("cpu"))
      return fail(ctx + ": a cpu limit needs the cpu hierarchy, missing at " +
                  (root_ / "cpu").string());
    if (limits.pids && !has("pids"))
      return fail(ctx + ": a pids limit needs the pids hierarchy, missing at " +
                  (root_ / "pids").string());
    if (limits.cpus && !(*limits.cpus > 0))
      return fail(ctx + ": cpus must be positive, got " + std::to_string(*limits.cpus));
    if (limits.devices && !has("devices"))
      return fail(ctx + ": device rules need the devices hierarchy, missing at " +
                  (root_ / "devices").string());

    bool created_any = false;
    for (const auto& h : hierarchies()) {
      if (optional_hierarchy(h, limits)) continue;
      auto made = cgroupfs::make_dirs(h, path);
      if (!made) {
        if (created_any) (void)remove(path);
        return fail(made.error().wrap("cgroup v1"));
      }
      created_any = created_any || *made;
    }
    // Undo a cgroup this call created if a limit cannot be set; an existing one is left as is.
    if (auto r = set_limits(path, limits); !r) {
      if (created_any) (void)remove(path);
      return r;
    }
    return {};
  }

  Result<void> attach(const std::string& path, pid_t pid) override {
    const std::string ctx = "cgroup v1: attach " + std::to_string(pid) + " to " + path;
    if (auto r = cgroupfs::check_relative(path); !r) return fail(r.error().wrap(ctx));
    bool attached = false;
    for (const auto& h : hierarchies()) {
      fs::path dir = h / path;
      if (!cgroupfs::is_dir(dir)) continue;
      if (auto r = cgroupfs::write_value(dir / "cgroup.procs", std::to_string(pid)); !r)
        return fail(r.error().wrap("cgroup v1"));
      attached = true;
    }
    if (!attached) return fail(ctx + ": cgroup does not exist");
    return {};
  }

  Result<uint64_t> oom_kills(const std::string& path) override {
    if (auto r = cgroupfs::check_relative(path); !r)
      return fail(r.error().wrap("cgroup v1: oom kills of " + path));
    // memory.failcnt counts limit hits, not kills (and stays 0 on this kernel): use the
    // oom_kill counter of memory.oom_control (Linux 4.13+).
    auto r = cgroupfs::read_key(root_ / "memory" / path / "memory.oom_control", "oom_kill");
    if (!r) return fail(r.error().wrap("cgroup v1"));
    return r;
  }

  Result<std::vector<pid_t>> pids(const std::string& path) override {
    if (auto r = cgroupfs::check_relative(path); !r)
      return fail(r.error().wrap("cgroup v1: pids of " + path));
    const char* h = has("pids") ? "pids" : "memory";
    auto r = cgroupfs::read_pids(root_ / h / path / "cgroup.procs");
    if (!r) return fail(r.error().wrap("cgroup v1"));
    return r;
  }

  Result<CgroupStats> stats(const std::string& path) override {
    if (auto r = cgroupfs::check_relative(path); !r)
      return fail(r.error().wrap("cgroup v1: stats of " + path));
    CgroupStats s;
    if (has("memory")) {
      auto v = cgroupfs::read_u64(root_ / "memory" / path / "memory.usage_in_bytes");
      if (!v) return fail(v.error().wrap("cgroup v1"));
      s.memory_bytes = static_cast<int64_t>(*v);
      fs::path limit_file = root_ / "memory" / path / "memory.limit_in_bytes";
      if (cgroupfs::exists(limit_file)) {
        auto limit = cgroupfs::read_u64(limit_file);
        if (!limit) return fail(limit.error().wrap("cgroup v1"));
        // No limit reads as PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages).
        if (*limit < (uint64_t{1} << 62)) s.memory_limit = static_cast<int64_t>(*limit);
      }
    }
    // A container has a blkio cgroup only when it sets blkio_config (optional_hierarchy);
    // without one its I/O is its parent's and reads as 0. The kernel charges direct and
    // synchronous I/O, not the page cache's writeback (cgroup v1 charges that to the root).
    if (has("blkio") && cgroupfs::is_dir(root_ / "blkio" / path)) {
      auto v = cgroupfs::read_value(root_ / "blkio" / path / "blkio.throttle.io_service_bytes");
      if (!v) return fail(v.error().wrap("cgroup v1"));
      parse_block_io(*v, s.block_read_bytes, s.block_write_bytes);
    }
    if (has("pids")) {
      auto v = cgroupfs::read_u64(root_ / "pids" / path / "pids.current");
      if (!v) return fail(v.error().wrap("cgroup v1"));
      s.pids = static_cast<int64_t>(*v);
    }
    if (has("cpuacct")) {
      auto v = cgroupfs::read_u64(root_ / "cpuacct" / path / "cpuacct.usage");
      if (!v) return fail(v.error().wrap("cgroup v1"));
      s.cpu_usage_ns = *v;
    }
    return s;
  }

  // cgroup-v1/freezer-subsystem.rst: writing FROZEN reads back FREEZING until every task
  // has stopped; a task in an uninterruptible sleep can keep it there, so the wait is bounded
  // and a freeze that does not finish is undone.
  Result<void> freeze(const std::string& path, bool frozen) override {
    const std::string ctx = std::string("cgroup v1: ") + (frozen ? "freeze " : "thaw ") + path;
    if (auto r = cgroupfs::check_relative(path); !r) return fail(r.error().wrap(ctx));
    if (!has("freezer")) return fail(ctx + ": no freezer hierarchy at " + (root_ / "freezer").string());
    fs::path file = root_ / "freezer" / path / "freezer.state";
    if (!cgroupfs::is_dir(file.parent_path())) return fail(ctx + ": cgroup does not exist");
    const char* want = frozen ? "FROZEN" : "THAWED";
    if (auto r = cgroupfs::write_value(file, want); !r) return fail(r.error().wrap("cgroup v1"));
    for (int i = 0; i < 400; i++) {
      auto state = cgroupfs::read_value(file);
      if (!state) return fail(state.error().wrap("cgroup v1"));
      if (state->rfind(want, 0) == 0) return {};
      ::usleep(5000);
    }
    if (frozen) (void)cgroupfs::write_value(file, "THAWED");
    return fail(ctx + ": still FREEZING after 2 s (a process in an uninterruptible sleep?)");
  }

  Result<bool> frozen(const std::string& path) override {
    if (auto r = cgroupfs::check_relative(path); !r)
      return fail(r.error().wrap("cgroup v1: freezer state of " + path));
    fs::path file = root_ / "freezer" / path / "freezer.state";
    if (!has("freezer") || !cgroupfs::exists(file)) return false;
    auto state = cgroupfs::read_value(file);
    if (!state) return fail(state.error().wrap("cgroup v1"));
    return state->rfind("FROZEN", 0) == 0;
  }

  Result<void> remove(const std::string& path) override {
    if (auto r = cgroupfs::check_relative(path); !r)
      return fail(r.error().wrap("cgroup v1: remove " + path));
    // Every hierarchy is tried even when one fails, so one busy controller does not leak
    // the others; the first error is returned.
    Result<void> first;
    for (const auto& h : hierarchies()) {
      // cpuset and blkio exist for the containers that asked; elsewhere they may be read-only
      // (a container manager delegates only what it must), and rmdir(2) then says EROFS.
      if (is_optional(h) && !cgroupfs::is_dir(h / path)) continue;
      auto r = cgroupfs::remove_dirs(h, path);
      if (!r && first) first = fail(r.error().wrap("cgroup v1"));
    }
    return first;
  }

  [[nodiscard]] Result<void> check_writable() const override {
    for (const auto& h : hierarchies())  // the optional ones are checked when a limit asks
      if (!is_optional(h) && ::access(h.c_str(), W_OK) != 0)
        return fail_errno("cgroup v1: cannot create cgroups in " + h.string());
    return {};
  }

 private:
  [[nodiscard]] bool has(const char* controller) const {
    return cgroupfs::is_dir(root_ / controller) && !hidden(root_ / controller);
  }

  // A hierarchy another filesystem is mounted over: podman and crun need the hybrid layout's
  // unified/ hidden under a tmpfs in their mount namespace on this host, and a runtime they
  // start (stack-runtime) inherits that view. It is no cgroup tree: mkdir there makes plain
  // directories, a written cgroup.procs a plain file that then blocks the rmdir.
  [[nodiscard]] static bool hidden(const fs::path& dir) {
    struct statfs sf {};
    struct stat st {}, parent {};
    if (::statfs(dir.c_str(), &sf) != 0 || sf.f_type == CGROUP2_SUPER_MAGIC ||
        sf.f_type == CGROUP_SUPER_MAGIC)
      return false;
    if (::stat(dir.c_str(), &st) != 0 || ::stat(dir.parent_path().c_str(), &parent) != 0)
      return false;
    return st.st_dev != parent.st_dev;  // a mount point (a fake tree in a test is not one)
  }

  // The mounted hierarchies we use, once each: on many hosts cpu and cpuacct are symlinks to
  // one "cpu,cpuacct" mount.
  [[nodiscard]] std::vector<fs::path> hierarchies() const {
    std::vector<fs::path> out;
    std::vector<std::pair<dev_t, ino_t>> seen;
    for (const char* h : kHierarchies) {
      struct stat st {};
      fs::path dir = root_ / h;
      if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || hidden(dir)) continue;
      std::pair<dev_t, ino_t> id{st.st_dev, st.st_ino};
      bool dup = false;
      for (const auto& s : seen) dup = dup || s == id;
      if (dup) continue;
      seen.push_back(id);
      out.push_back(std::move(dir));
    }
    return out;
  }

  Result<void> write(const std::string& path, const char* controller, const char* file,
                     const std::string& value) {
    auto r = cgroupfs::write_value(root_ / controller / path / file, value);
    if (!r) return fail(r.error().wrap("cgroup v1"));
    return {};
  }

  Result<void> set_limits(const std::string& path, const CgroupLimits& limits) {
    if (limits.memory_bytes) {
      std::string v = std::to_string(*limits.memory_bytes);
      // memsw (memory+swap) must stay >= memory; set to the same value so swap cannot be used
      // to exceed the limit. The file exists only with swap accounting enabled.
      fs::path memsw = root_ / "memory" / path / "memory.memsw.limit_in_bytes";
      bool has_memsw = cgroupfs::exists(memsw);
      auto r = write(path, "memory", "memory.limit_in_bytes", v);
      if (!r && has_memsw && r.error().sys_errno == EINVAL) {
        // Raising the limit above the current memsw limit: memsw has to go first.
        if (auto m = write(path, "memory", "memory.memsw.limit_in_bytes", v); !m) return m;
        r = write(path, "memory", "memory.limit_in_bytes", v);
      }
      if (!r) return r;
      // memswap_limit: memory + swap as asked (-1: unlimited swap); else no swap at all.
      std::string swap = limits.memory_swap ? std::to_string(*limits.memory_swap) : v;
      if (has_memsw)
        if (auto m = write(path, "memory", "memory.memsw.limit_in_bytes", swap); !m) return m;
    }
    if (auto r = set_more(path, limits); !r) return r;
    if (limits.cpus) {
      auto quota = static_cast<int64_t>(std::llround(*limits.cpus * kCfsPeriodUs));
      // The period first: the kernel checks the quota against the current period.
      if (auto r = write(path, "cpu", "cpu.cfs_period_us", std::to_string(kCfsPeriodUs)); !r)
        return r;
      if (auto r = write(path, "cpu", "cpu.cfs_quota_us", std::to_string(quota)); !r) return r;
    }
    if (limits.cpu_shares)
      if (auto r = write(path, "cpu", "cpu.shares", std::to_string(*limits.cpu_shares)); !r)
        return r;
    if (limits.pids)
      if (auto r = write(path, "pids", "pids.max", std::to_string(*limits.pids)); !r) return r;
    if (limits.devices) return set_devices(path, *limits.devices);
    return {};
  }

  // The service fields beyond the basic limits (mem_reservation, mem_swappiness,
  // oom_kill_disable, cpu_period, cpu_quota), in v1's files.
  Result<void> set_more(const std::string& path, const CgroupLimits& limits) {
    bool memory = limits.memory_reservation || limits.swappiness || limits.oom_kill_disable ||
                  limits.kernel_tcp;
    if (memory && !has("memory"))
      return fail("cgroup v1: create " + path + ": memory settings need the memory hierarchy");
    if ((limits.cpu_quota || limits.cpu_period) && !has("cpu"))
      return fail("cgroup v1: create " + path + ": cpu_quota/cpu_period need the cpu hierarchy");
    if (limits.memory_reservation)
      if (auto r = write(path, "memory", "memory.soft_limit_in_bytes",
                         std::to_string(*limits.memory_reservation));
          !r)
        return r;
    if (limits.swappiness)
      if (auto r = write(path, "memory", "memory.swappiness", std::to_string(*limits.swappiness));
          !r)
        return r;
    if (limits.oom_kill_disable)
      if (auto r = write(path, "memory", "memory.oom_control", "1"); !r) return r;
    if (limits.kernel_tcp)
      if (auto r = write(path, "memory", "memory.kmem.tcp.limit_in_bytes",
                         std::to_string(*limits.kernel_tcp));
          !r)
        return r;
    // The period first: the kernel checks the quota against the current period.
    if (limits.cpu_period)
      if (auto r = write(path, "cpu", "cpu.cfs_period_us", std::to_string(*limits.cpu_period)); !r)
        return r;
    if (limits.cpu_quota)
      if (auto r = write(path, "cpu", "cpu.cfs_quota_us", std::to_string(*limits.cpu_quota)); !r)
        return r;
    if (!limits.cpuset_cpus.empty() || !limits.cpuset_mems.empty())
      if (auto r = set_cpuset(path, limits); !r) return r;
    if (limits.cpu_rt_runtime || limits.cpu_rt_period)
      if (auto r = set_rt(path, limits); !r) return r;
    return set_blkio(path, limits);
  }

  // cpu_rt_runtime / cpu_rt_period (sched-rt-group.rst): a group's RT bandwidth
  // (runtime/period) may not exceed its parent's less what its siblings hold, and a new group
  // has none. Each ancestor below the root is given, top-down, what its children hold plus
  // this container's; the root's own (kernel.sched_rt_runtime_us) is the ceiling.
  Result<void> set_rt(const std::string& path, const CgroupLimits& limits) {
    fs::path top = root_ / "cpu";
    if (!cgroupfs::exists(top / "cpu.rt_runtime_us"))
      return fail("cgroup v1: cpu_rt_runtime needs RT group scheduling "
                  "(CONFIG_RT_GROUP_SCHED): this kernel's cpu controller has no cpu.rt_runtime_us");
    auto number = [](const Result<std::string>& v) -> int64_t {
      return v ? std::atoll(v->c_str()) : 0;
    };
    auto ratio = [&](const fs::path& dir) {  // the group's runtime per second, in us
      int64_t period = number(cgroupfs::read_value(dir / "cpu.rt_period_us"));
      int64_t runtime = number(cgroupfs::read_value(dir / "cpu.rt_runtime_us"));
      return period > 0 && runtime > 0 ? runtime * 1000000 / period : 0;
    };
    int64_t period = limits.cpu_rt_period.value_or(1000000);
    int64_t runtime = limits.cpu_rt_runtime.value_or(0);
    int64_t want = runtime * 1000000 / period;  // per second
    std::vector<fs::path> chain;  // the ancestors below the root, top-down
    fs::path dir = top;
    for (const auto& part : fs::path(path).parent_path()) chain.push_back(dir /= part);
    fs::path leaf = top / path;
    // Bottom-up: what each ancestor must hold = its other children's + the one on our path's.
    std::vector<int64_t> need(chain.size());
    int64_t below = want;
    fs::path child = leaf;
    for (size_t i = chain.size(); i-- > 0;) {
      int64_t others = 0;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(chain[i], ec))
        if (e.is_directory() && e.path() != child) others += ratio(e.path());
      need[i] = std::max(others + below, ratio(chain[i]));
      below = need[i];
      child = chain[i];
    }
    for (size_t i = 0; i < chain.size(); i++) {
      if (ratio(chain[i]) >= need[i]) continue;
      int64_t p = number(cgroupfs::read_value(chain[i] / "cpu.rt_period_us"));
      if (p <= 0) p = 1000000;
      auto r = cgroupfs::write_value(chain[i] / "cpu.rt_runtime_us",
                                     std::to_string((need[i] * p + 999999) / 1000000));
      if (!r)
        return fail(r.error().wrap("cgroup v1: cpu_rt_runtime " + std::to_string(runtime) +
                                   ": more RT time than the host grants its groups (" +
                                   cgroupfs::read_value(top / "cpu.rt_runtime_us").value_or("?") +
                                   "us per " +
                                   cgroupfs::read_value(top / "cpu.rt_period_us").value_or("?") +
                                   "us); raising " + chain[i].string()));
    }
    // The period first, with no runtime: the kernel checks the runtime against it.
    if (limits.cpu_rt_period)
      if (auto r = write(path, "cpu", "cpu.rt_period_us", std::to_string(period)); !r) return r;
    if (limits.cpu_rt_runtime)
      if (auto r = write(path, "cpu", "cpu.rt_runtime_us", std::to_string(runtime)); !r) return r;
    return {};
  }

  // A new v1 cpuset cgroup starts with no cpus and no mems (cgroup.clone_children is 0) and
  // cannot take a task: each level gets its parent's, top-down, then the leaf its own cpus.
  Result<void> set_cpuset(const std::string& path, const CgroupLimits& limits) {
    const std::string& cpus = limits.cpuset_cpus;
    if (!has("cpuset")) return fail("cgroup v1: cpuset needs the cpuset hierarchy");
    fs::path dir = root_ / "cpuset";
    for (const auto& part : fs::path(path)) {
      fs::path parent = dir;
      dir /= part;
      for (const char* file : {"cpuset.mems", "cpuset.cpus"}) {
        auto mine = cgroupfs::read_value(dir / file);
        if (mine && mine->find_first_not_of(" \n") != std::string::npos) continue;
        auto from = cgroupfs::read_value(parent / file);
        if (!from) return fail(from.error().wrap("cgroup v1"));
        if (auto r = cgroupfs::write_value(dir / file, *from); !r)
          return fail(r.error().wrap("cgroup v1"));
      }
    }
    if (!limits.cpuset_mems.empty()) {
      auto m = write(path, "cpuset", "cpuset.mems", limits.cpuset_mems);
      if (!m && m.error().sys_errno == EINVAL)
        return fail("cgroup v1: cpuset mems " + limits.cpuset_mems +
                    ": not a subset of this host's memory nodes (" +
                    cgroupfs::read_value(root_ / "cpuset" / "cpuset.mems").value_or("?") + ")");
      if (!m) return m;
    }
    if (cpus.empty()) return {};
    auto r = write(path, "cpuset", "cpuset.cpus", cpus);
    if (!r && r.error().sys_errno == EINVAL)
      return fail("cgroup v1: cpuset " + cpus + ": not a subset of this host's CPUs (" +
                  cgroupfs::read_value(root_ / "cpuset" / "cpuset.cpus").value_or("?") + ")");
    return r;
  }

  // blkio_config. A weight needs a weight file, which only a proportional I/O scheduler (bfq)
  // provides: refused with that reason where the disks have none.
  Result<void> set_blkio(const std::string& path, const CgroupLimits& limits) {
    if (!limits.blkio_weight && limits.blkio_device.empty()) return {};
    if (!has("blkio")) return fail("cgroup v1: blkio_config needs the blkio hierarchy");
    fs::path dir = root_ / "blkio" / path;
    auto weight_file = [&](const std::string& name) -> std::optional<std::string> {
      for (const char* prefix : {"blkio.", "blkio.bfq."})
        if (cgroupfs::exists(dir / (prefix + name))) return prefix + name;
      return std::nullopt;
    };
    auto no_weight = [&] {
      return fail("cgroup v1: blkio_config weight: this host's blkio controller has no weight "
                  "file (weights need the bfq I/O scheduler on the disks)");
    };
    if (limits.blkio_weight) {
      auto f = weight_file("weight");
      if (!f) return no_weight();
      if (auto r = write(path, "blkio", f->c_str(), std::to_string(*limits.blkio_weight)); !r)
        return r;
    }
    for (const auto& [file, line] : limits.blkio_device) {
      std::string name = file;
      if (file == "blkio.weight_device") {
        auto f = weight_file("weight_device");
        if (!f) return no_weight();
        name = *f;
      }
      if (auto r = write(path, "blkio", name.c_str(), line); !r) return r;
    }
    return {};
  }

  // Deny everything, then allow the rules, before any process is in the cgroup. In hybrid
  // mode the same rules also go to the unified tree as a device program: the kernel asks both
  // (cgroup v1 devices and the cgroup2 BPF hook), and a container must not depend on one alone.
  Result<void> set_devices(const std::string& path, const std::vector<DeviceRule>& rules) {
    if (auto r = write(path, "devices", "devices.deny", "a"); !r) return r;
    for (const auto& rule : rules) {
      // A cgroup cannot allow what its parent denies (EPERM): inside a container manager
      // that restricts devices itself, such a rule is denied already, as wanted.
      auto r = write(path, "devices", "devices.allow", device_rule_text(rule));
      if (!r && r.error().sys_errno != EPERM) return r;
    }
    // The v1 rules above are what this host enforces; the program is a second lock. Where
    // bpf(2) itself is refused (a container manager's seccomp filter: systemd-nspawn's), the
    // container keeps the first. Any other failure is an error.
    if (has("unified") && devices_)
      if (auto r = devices_->attach(root_ / "unified" / path, rules);
          !r && r.error().sys_errno != EPERM && r.error().sys_errno != ENOSYS)
        return fail(r.error().wrap("cgroup v1"));
    return {};
  }

  fs::path root_;
  std::shared_ptr<DeviceFilter> devices_;
};

}  // namespace

std::unique_ptr<CgroupDriver> make_cgroup_v1(fs::path root, std::shared_ptr<DeviceFilter> devices) {
  return std::make_unique<CgroupV1>(std::move(root), std::move(devices));
}

}  // namespace stack::engine
