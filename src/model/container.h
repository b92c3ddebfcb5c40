// What the engine runs: one container and its process, as plain data. Built by the reconciler
// from a service, kept by the state store inside a runtime record, carried by the planner to
// the executor; only the engine gives it behaviour. No dependencies beyond the standard library.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace stack::model {

// One allowed entry of the device cgroup, as v1's devices.allow writes it: "c 1:3 rwm".
struct DeviceRule {
  char type = 'a';          // 'c', 'b', or 'a' (both)
  int64_t major = -1;       // -1: any ('*')
  int64_t minor = -1;
  std::string access = "rwm";  // r read, w write, m mknod

  bool operator==(const DeviceRule&) const = default;
};

struct CgroupLimits {
  std::optional<int64_t> memory_bytes;
  std::optional<double> cpus;         // CFS quota over a 100 ms period
  std::optional<int64_t> cpu_shares;  // v1 cpu.shares (2..262144); v2 cpu.weight converted
  std::optional<int64_t> pids;
  // The only devices the container may open or make: every other one is denied (v1: devices.deny
  // "a" then devices.allow; v2: an eBPF device program). Unset: no restriction (privileged).
  std::optional<std::vector<DeviceRule>> devices;
};

struct SeccompSpec {
  enum class Mode { kDefault, kUnconfined, kProfile } mode = Mode::kDefault;
  std::string profile_json;   // Docker's seccomp JSON (kProfile)
  uint64_t capabilities = 0;  // the container's capability set (bit N = capability N)
};

struct BindMount {
  std::filesystem::path source;  // host path
  std::string target;            // absolute path in the container
  bool read_only = false;
};

// The process to run: the service, or a command for `stack exec`.
struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in the container's PATH
  std::vector<std::string> env;   // "KEY=value"
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  // The bounding set, and the effective and permitted sets when uid is 0 (a user other than
  // root keeps none). Inheritable and ambient are always empty. See default_capabilities().
  uint64_t capabilities = 0;
  bool no_new_privs = true;  // PR_SET_NO_NEW_PRIVS before execve (Docker's no-new-privileges)
  // The seccomp filter: Docker's default profile unless the service says otherwise. Compiled
  // at each start or exec (once per distinct profile and capability set: cached) with this
  // process's capabilities, whatever `seccomp.capabilities` holds, and installed just before
  // execve.
  SeccompSpec seccomp;
};

// A user namespace for the container: its ids 0..count-1 are the host's uid_base.. and
// gid_base.. (container root is an unprivileged user of the host).
struct IdMapping {
  uint32_t uid_base = 0, gid_base = 0, count = 0;
  bool operator==(const IdMapping&) const = default;
};

struct ContainerSpec {
  std::string name;                          // "demo-web-1"
  std::string cgroup;                        // "stack/demo/demo-web-1"
  std::filesystem::path dir;                 // <root>/containers/<name>: upper, logs, exit
  std::vector<std::filesystem::path> layers;  // image layers, lowest first
  std::string hostname;
  ProcessSpec process;
  std::vector<BindMount> mounts;
  CgroupLimits limits;
  int64_t log_max_size = 10 * 1024 * 1024;
  int log_max_files = 3;
  std::string hosts;  // content of /etc/hosts
  std::string resolv_conf;    // content of /etc/resolv.conf; empty: the image's is kept
  bool host_network = false;  // network_mode host: no network namespace of its own
  // network_mode service:NAME: the network namespace to join ("/proc/PID/ns/net" of that
  // container's init) instead of a new one. Set at each start, never persisted.
  std::string join_netns;
  // Every host device in /dev and allowed by the device cgroup, /sys writable, nothing masked
  // or read-only (the capabilities and seccomp of a privileged service are in `process`).
  // Otherwise /dev holds null, zero, full, random, urandom, tty, ptmx and pts only, the device
  // cgroup allows those (and mknod), and Docker's masked and read-only paths apply.
  bool privileged = false;
  // A user namespace of its own (userns_mode, --userns-remap): the image's layers are mounted
  // idmapped, the writable layer and the container's directory belong to the mapped root.
  // Needs the container's own network namespace.
  std::optional<IdMapping> userns;
  // How the image's layers become the mapped root's: idmapped mounts where the kernel allows
  // (kAuto probes the layers' filesystem), or copies with shifted owners made once per mapping
  // under userns_layer_cache and shared.
  enum class LayerOwnership { kAuto, kIdmap, kCopy };
  LayerOwnership userns_layers = LayerOwnership::kAuto;
  std::filesystem::path userns_layer_cache;  // "<root>/userns-layers"
};

}  // namespace stack::model
