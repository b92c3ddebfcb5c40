// What the engine runs: one container and its process, as plain data. Built by the reconciler
// from a service, kept by the state store inside a runtime record, carried by the planner to
// the executor; only the engine gives it behaviour. No dependencies beyond the standard library.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
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
  // Service fields beyond the limits above (compose's names; v2 equivalents in cgroup_v2.cpp).
  std::optional<int64_t> memory_reservation;  // mem_reservation: v1 memory.soft_limit_in_bytes
  std::optional<int64_t> memory_swap;         // memswap_limit: memory + swap, -1 unlimited
  std::optional<int64_t> swappiness;          // mem_swappiness 0..100
  bool oom_kill_disable = false;              // v1 memory.oom_control 1
  std::optional<int64_t> kernel_tcp;          // kernelTCP: v1 memory.kmem.tcp.limit_in_bytes
  std::optional<int64_t> cpu_quota;           // cpu_quota (us per period; -1 none)
  std::optional<int64_t> cpu_period;          // cpu_period (us)
  std::string cpuset_cpus;                    // cpuset: "0-1", "" all of the parent's
  std::string cpuset_mems;                    // memory nodes: "0", "" all of the parent's
  // blkio_config: a weight, and per-device lines of v1's blkio files, as written there:
  // {"blkio.throttle.read_bps_device", "254:0 1048576"}, {"blkio.weight_device", "254:0 300"}.
  std::optional<int64_t> blkio_weight;
  std::vector<std::pair<std::string, std::string>> blkio_device;
  // cpu_rt_runtime / cpu_rt_period: v1 cpu.rt_runtime_us and cpu.rt_period_us (RT group
  // scheduling); the ancestors get the runtime the kernel wants them to have first.
  std::optional<int64_t> cpu_rt_runtime;
  std::optional<int64_t> cpu_rt_period;
};

// A host device node made in the container's /dev (`devices`).
struct DeviceMapping {
  std::string path;  // in the container: "/dev/net/tun"
  char type = 'c';   // 'c', 'b', or 'p' (a fifo: no numbers; an OCI bundle's)
  uint32_t major = 0, minor = 0;
  uint32_t mode = 0600;  // the host node's permission bits
  uint32_t uid = 0, gid = 0;  // the node's owner, as the container sees it
  bool operator==(const DeviceMapping&) const = default;
};

// One resource limit of the service's process (setrlimit(2)); -1 is RLIM_INFINITY.
struct Rlimit {
  int resource = 0;  // RLIMIT_*
  int64_t soft = -1, hard = -1;
  bool operator==(const Rlimit&) const = default;
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
  // Storage (issue 13). A tmpfs has no source; OPTIONS is its mount data ("size=65536k,mode=1777").
  // An image (type: image) has no source either: LAYERS, lowest first, are mounted read-only as
  // one tree by the init (SUBPATH resolved inside it); IMAGE_ID keeps the image from `image rm`.
  // A cgroup (an OCI bundle's "cgroup" mount at TARGET): the container's own cgroup of each v1
  // hierarchy bound on a tmpfs, as crun does on v1; SOURCE unused.
  // A kernel filesystem (an OCI bundle's /proc, /sys, /dev, /dev/pts, /dev/shm or /dev/mqueue
  // at TARGET): the init's own, mounted at this place of the list instead of before it, as the
  // runtime spec orders them; SOURCE and options unused (/dev/shm's size is shm_size).
  enum class Kind { kBind, kTmpfs, kImage, kCgroup, kKernel } kind = Kind::kBind;
  std::string options;
  std::string propagation;     // bind, tmpfs: "" (rprivate), private, shared, slave, r*, unbindable
  std::string subpath;         // bind: this path of SOURCE, resolved inside SOURCE, never outside
  bool seed = false;           // a volume: filled with the image's content at TARGET when empty
  bool create_source = true;   // bind: make a missing SOURCE directory (create_host_path)
  std::vector<std::filesystem::path> layers;  // image
  std::string image_id;                       // image: "sha256:..."
  // bind: nosuid, nodev, noexec set on the mount (an OCI bundle's options).
  bool nosuid = false, nodev = false, noexec = false;
  // bind: an idmapped mount (mount_setattr(2) MOUNT_ATTR_IDMAP) through a user namespace with
  // these maps, uid_map(5)'s lines ("0 1000 1\n"); empty: not idmapped.
  std::string idmap_uids, idmap_gids;
  bool idmap_recursive = false;  // every mount of the bound tree ("ridmap"), not only its top
  // bind.recursive: kAll binds the mounts below SOURCE too, read-only with it (docker's enabled
  // and readonly); kTopOnly binds SOURCE's own mount only (disabled); kWritableBelow binds them
  // all but read_only makes only the top one read-only (writable).
  enum class Recursive { kAll, kTopOnly, kWritableBelow } recursive = Recursive::kAll;
  // An OCI bundle's options ("bind" is Recursive::kTopOnly, "rbind" kAll). ATIME: "",
  // "relatime", "noatime" or "strictatime"; with nodiratime and nosymfollow set on every mount
  // of the tree (bind) or on the tmpfs. TMPCOPYUP: a tmpfs starts with the image's content at
  // TARGET.
  std::string atime{};
  bool nodiratime = false, nosymfollow = false, tmpcopyup = false;
};

// A secret or config: written under the run root before the container starts (never to a
// layer, the state database or a log), then bound read-only at TARGET. Only PATH, the owner
// and mode are persisted; the content rides along in memory and is re-read from its source.
struct SecretFile {
  std::filesystem::path path;  // <run_root>/secrets/<container>/<n>
  uid_t uid = 0;               // on the host (user namespace: already shifted)
  gid_t gid = 0;
  int mode = 0444;
};

// sched_setattr(2)'s attributes (an OCI bundle's process.scheduler).
struct Scheduler {
  uint32_t policy = 0;  // SCHED_*
  int32_t nice = 0;
  uint32_t priority = 0;
  uint64_t flags = 0;                              // SCHED_FLAG_*
  uint64_t runtime = 0, deadline = 0, period = 0;  // ns, SCHED_DEADLINE
  bool operator==(const Scheduler&) const = default;
};

// set_mempolicy(2)'s arguments (an OCI bundle's linux.memoryPolicy).
struct MemoryPolicy {
  uint32_t mode = 0;            // MPOL_* | MPOL_F_* flags
  std::vector<uint64_t> nodes;  // the node mask, 64 nodes a word; empty for DEFAULT and LOCAL
  bool operator==(const MemoryPolicy&) const = default;
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
  // root keeps none, unless user_permitted below). See default_capabilities().
  uint64_t capabilities = 0;
  // Inheritable and ambient sets (an OCI bundle's process.capabilities; the engine's own
  // services keep both empty, as Docker since 20.10.14, CVE-2022-24769).
  uint64_t inheritable = 0, ambient = 0;
  bool no_new_privs = true;  // PR_SET_NO_NEW_PRIVS before execve (Docker's no-new-privileges)
  // The seccomp filter: Docker's default profile unless the service says otherwise. Compiled
  // at each start or exec (once per distinct profile and capability set: cached) with this
  // process's capabilities, whatever `seccomp.capabilities` holds, and installed just before
  // execve.
  SeccompSpec seccomp;
  // ulimits: set in the process just before execve (the service's, and every exec's).
  std::vector<Rlimit> rlimits;
  // An OCI bundle's process settings, applied by the init just before execve (unset: the
  // init's own are inherited). umask(2); ioprio_set(2)'s value (class << 13 | level).
  std::optional<uint32_t> umask;
  std::optional<uint32_t> io_priority;
  std::optional<Scheduler> scheduler;
  std::optional<MemoryPolicy> memory_policy;
  // For a uid other than 0 (an OCI bundle's): the permitted and effective sets it keeps
  // through setresuid (PR_SET_KEEPCAPS); execve(2) then keeps its ambient set only.
  uint64_t user_permitted = 0, user_effective = 0;
};

// The offsets of a time namespace's clocks (time_namespaces(7)).
struct TimeOffsets {
  int64_t monotonic_secs = 0, boottime_secs = 0;
  uint32_t monotonic_nanosecs = 0, boottime_nanosecs = 0;
  bool operator==(const TimeOffsets&) const = default;
};

// A user namespace for the container: its ids 0..count-1 are the host's uid_base.. and
// gid_base.. (container root is an unprivileged user of the host).
struct IdMapping {
  uint32_t uid_base = 0, gid_base = 0, count = 0;
  // Several ranges (an OCI bundle's uidMappings/gidMappings): uid_map(5)'s lines, written as
  // they are; the bases and count above are then those of the range holding container id 0.
  // Empty: the one range above.
  std::string uid_map{}, gid_map{};
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
  bool read_only_root = false;  // read_only: the overlay mounted read-only
  // LAYERS is one directory mounted as the root itself (bound), not under an overlay: an OCI
  // bundle's root, which its caller (podman commit, cp) expects changed in place. Not with a
  // user namespace.
  bool root_in_place = false;
  // tty: the service's stdio is a pty of the container's devpts; stdin_open (without tty): its
  // stdin a pipe. The init keeps the master (or the pipe's writing end) for `stack attach`.
  bool tty = false;
  bool stdin_open = false;
  int64_t shm_size = 0;         // /dev/shm bytes; 0: 64 MiB as Docker
  CgroupLimits limits;
  int64_t log_max_size = 10 * 1024 * 1024;
  int log_max_files = 3;
  bool log_none = false;  // logging driver none: the init writes no log file at all
  std::string hosts;  // content of /etc/hosts
  std::string resolv_conf;    // content of /etc/resolv.conf; empty: the image's is kept
  bool host_network = false;  // network_mode host: no network namespace of its own
  // uts: host: the host's UTS namespace (its hostname is never set); ipc: host: the host's
  // IPC namespace and its /dev/shm. Neither goes with a user namespace.
  bool host_uts = false;
  bool host_ipc = false;
  // pid: host: the host's PID namespace (the init is not PID 1: what the service leaves behind
  // is killed through the cgroup). cgroup: private: a cgroup namespace of its own, made once
  // the init is in its cgroups (the default, host, is the host's, as docker has it on v1).
  bool host_pid = false;
  bool cgroupns = false;
  // network_mode service:NAME|container:NAME, pid and ipc service:NAME: the namespaces to join
  // ("/proc/PID/ns/net" ... of that container's init) instead of new ones. Set at each start,
  // never persisted.
  std::string join_netns;
  std::string join_pidns;
  std::string join_ipcns;
  // An OCI bundle's linux.namespaces[].path for the other kinds: UTS and cgroup joined as
  // network and IPC are; the user namespace joined instead of made (USERNS still holds its
  // mapping, for the container's directory); a mount namespace joined means no root is built
  // in a namespace of its own: the root's path is looked up there and chroot(2)ed into.
  std::string join_utsns;
  std::string join_cgroupns;
  std::string join_userns;
  std::string join_mntns;
  // A time namespace (an OCI bundle's): made by the init with these offsets, or joined by
  // path (JOIN_TIMENS); the init and everything it starts are in it.
  bool timens = false;
  std::string join_timens;
  TimeOffsets time_offsets;
  // The propagation of the container's root once pivoted (linux.rootfsPropagation: shared,
  // slave, private, unbindable, or r*); empty: rprivate.
  std::string rootfs_propagation;
  // personality(2)'s persona for the service (linux.personality: PER_LINUX, PER_LINUX32).
  std::optional<uint32_t> personality;
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
  // Set by the init inside the container before the service starts (init/limits.c).
  std::vector<std::pair<std::string, std::string>> sysctls;  // "net.core.somaxconn", "1024"
  std::string domainname;                                   // setdomainname(2)
  std::optional<int> oom_score_adj;                         // /proc/self/oom_score_adj
  // `devices` (nodes made in /dev, and allowed) and `device_cgroup_rules`: added to the device
  // cgroup's default rules of a container that is not privileged.
  std::vector<DeviceMapping> devices;
  std::vector<DeviceRule> device_rules;
  // An OCI runtime's container (src/runtime): the service's stdin, stdout and stderr are the
  // caller of Engine::create's own (conmon's pipes, a terminal), not /dev/null and the log.
  bool inherit_stdio = false;
  // /etc/hostname and /etc/hosts bound from the container's directory; an OCI bundle's root
  // keeps its own (its config.json's mounts bind them where the caller wants).
  bool etc_binds = true;
  // The paths masked and made read-only in a container that is not privileged; unset: Docker's
  // (engine::masked_paths(), readonly_paths()).
  std::optional<std::vector<std::string>> masked, readonly;
};

}  // namespace stack::model
