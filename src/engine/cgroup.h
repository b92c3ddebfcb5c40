// Cgroup drivers behind one interface: v1 (one hierarchy per controller, as on this host) and
// v2 (the unified tree). Both take the cgroupfs root as a parameter so unit tests run them
// against a fake tree in a temp dir. Chosen once at start-up by what the host mounts.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/container.h"

namespace stack::engine {

using model::CgroupLimits;
using model::DeviceRule;
// As v1's devices.allow writes it: "c 1:3 rwm", "b *:* m".
std::string device_rule_text(const DeviceRule& rule);



// What the device cgroup allows by default: mknod of anything (CAP_MKNOD is Docker's), and
// using only the nodes of a container's minimal /dev (null, zero, full, random, urandom, tty,
// ptmx and the pts devices).
const std::vector<DeviceRule>& default_device_rules();

// The kernel seam for cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program attached
// to a cgroup2 directory. A fake records the calls in unit tests.
class DeviceFilter {
 public:
  virtual ~DeviceFilter() = default;
  // Attaches to DIR a program that allows RULES and denies every other device access.
  [[nodiscard]] virtual Result<void> attach(const std::filesystem::path& dir,
                                            const std::vector<DeviceRule>& rules) = 0;
};
std::shared_ptr<DeviceFilter> make_bpf_device_filter();

struct CgroupStats {
  int64_t memory_bytes = 0;
  int64_t pids = 0;
  uint64_t cpu_usage_ns = 0;
  int64_t memory_limit = 0;  // 0: none set (the cgroup may use all the host's memory)
  uint64_t block_read_bytes = 0, block_write_bytes = 0;  // bytes the block layer served it
};

// The byte totals of "MAJ:MIN Read N" lines (blkio.throttle.io_service_bytes, cgroup v1) or of
// "MAJ:MIN rbytes=N wbytes=N ..." lines (io.stat, v2). Exposed for unit tests.
void parse_block_io(std::string_view text, uint64_t& read, uint64_t& write);

class CgroupDriver {
 public:
  virtual ~CgroupDriver() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;  // "v1" | "v2"
  // Creates the cgroup at relative PATH ("stack/demo/demo-web-1") with LIMITS; idempotent.
  [[nodiscard]] virtual Result<void> create(const std::string& path,
                                            const CgroupLimits& limits) = 0;
  // Moves PID into the cgroup (every hierarchy for v1).
  [[nodiscard]] virtual Result<void> attach(const std::string& path, pid_t pid) = 0;
  // How many processes the kernel OOM-killed in the cgroup so far.
  [[nodiscard]] virtual Result<uint64_t> oom_kills(const std::string& path) = 0;
  [[nodiscard]] virtual Result<std::vector<pid_t>> pids(const std::string& path) = 0;
  [[nodiscard]] virtual Result<CgroupStats> stats(const std::string& path) = 0;
  // Freezes every process of the cgroup (FROZEN) or thaws it (`stack pause`/`unpause`);
  // returns once the kernel reports the new state. v1: the freezer hierarchy; v2: cgroup.freeze.
  [[nodiscard]] virtual Result<void> freeze(const std::string& path, bool frozen) = 0;
  // Whether the cgroup is frozen now; false when it does not exist.
  [[nodiscard]] virtual Result<bool> frozen(const std::string& path) = 0;
  // Removes the cgroup (it must be empty of processes) and then every empty parent, the top
  // "stack" directory included. A missing cgroup is not an error.
  [[nodiscard]] virtual Result<void> remove(const std::string& path) = 0;
  // Whether containers can get cgroups at all: the first hierarchy this process may not create
  // cgroups in, e.g. one a container manager (systemd-nspawn) mounts read-only.
  [[nodiscard]] virtual Result<void> check_writable() const = 0;
};

// Device rules go to v1's devices hierarchy and, in hybrid mode, also as a BPF program on the
// container's cgroup in the unified tree (the kernel checks both).
std::unique_ptr<CgroupDriver> make_cgroup_v1(
    std::filesystem::path root, std::shared_ptr<DeviceFilter> devices = make_bpf_device_filter());
std::unique_ptr<CgroupDriver> make_cgroup_v2(
    std::filesystem::path root, std::shared_ptr<DeviceFilter> devices = make_bpf_device_filter());
// v2 when ROOT is a cgroup2 mount (statfs magic), else v1.
[[nodiscard]] Result<std::unique_ptr<CgroupDriver>> detect_cgroup_driver(
    const std::filesystem::path& root = "/sys/fs/cgroup");

}  // namespace stack::engine
