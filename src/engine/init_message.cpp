// Building the engine's messages to stack-init from a spec (see init_message.h). Pure apart
// from the seccomp cache; the wire format is init/wire.h's.
#include "engine/init_message.h"

#include <sched.h>

#include <algorithm>
#include <sstream>

#include "engine/mounts.h"
#include "engine/security.h"

namespace stack::engine {

// execve(2) takes C strings: a NUL in an argument or an environment value would silently cut
// it short (and, in the engine's old message format, injected configuration). Refused here,
// before anything is made, naming what holds it.
Result<void> check_c_strings(const ProcessSpec& p) {
  for (size_t i = 0; i < p.argv.size(); i++)
    if (auto at = p.argv[i].find('\0'); at != std::string::npos)
      return fail("argument " + std::to_string(i) + " of the command holds a NUL byte at offset " +
                  std::to_string(at) + ": execve(2) cannot pass it");
  for (const auto& e : p.env)
    if (auto at = e.find('\0'); at != std::string::npos) {
      auto eq = e.find('=');
      std::string key = e.substr(0, std::min(eq, at));
      return fail("environment variable " + key + " holds a NUL byte" +
                  (eq < at ? " at offset " + std::to_string(at - eq - 1) + " of its value" : "") +
                  ": execve(2) cannot pass it");
    }
  if (p.cwd.find('\0') != std::string::npos) return fail("the working directory holds a NUL byte");
  return {};
}

// Which rules of the default profile apply depends on the process's capabilities
// (CAP_SYS_ADMIN allows mount, ...).
Result<Filter> filter_for(const ProcessSpec& p) {
  SeccompSpec spec = p.seccomp;
  spec.capabilities = p.capabilities;
  Filter f;
  f.program = STACK_TRY_CTX(seccomp_program(spec), "seccomp");
  f.flags = STACK_TRY_CTX(seccomp_filter_flags(spec), "seccomp");
  return f;
}

void add_process(wire::Writer& w, const ProcessSpec& p, const Filter& filter) {
  for (const auto& a : p.argv) w.bytes(W_ARG, a);
  for (const auto& e : p.env) w.bytes(W_ENV, e);
  w.bytes(W_CWD, p.cwd.empty() ? "/" : p.cwd);
  w.u32(W_UID, p.uid).u32(W_GID, p.gid);
  for (gid_t g : p.groups) w.u32(W_GROUP, g);
  w.u64(W_CAPS, p.capabilities);
  if (p.inheritable || p.ambient || p.user_permitted || p.user_effective) {
    wire::Writer sets;
    sets.u64(WC_INHERITABLE, p.inheritable).u64(WC_AMBIENT, p.ambient);
    if (p.user_permitted || p.user_effective)
      sets.u64(WC_PERMITTED, p.user_permitted).u64(WC_EFFECTIVE, p.user_effective);
    w.nested(W_CAPS_MORE, sets);
  }
  w.u32(W_NO_NEW_PRIVS, p.no_new_privs ? 1 : 0);
  if (p.umask) w.u32(W_UMASK, *p.umask);
  if (p.io_priority) w.u32(W_IOPRIO, *p.io_priority);
  if (const auto& s = p.scheduler) {
    w.nested(W_SCHED, wire::Writer()
                          .u32(WS_POLICY, s->policy)
                          .u32(WS_NICE, static_cast<uint32_t>(s->nice))
                          .u32(WS_PRIORITY, s->priority)
                          .u64(WS_FLAGS, s->flags)
                          .u64(WS_RUNTIME, s->runtime)
                          .u64(WS_DEADLINE, s->deadline)
                          .u64(WS_PERIOD, s->period));
  }
  if (const auto& m = p.memory_policy) {
    wire::Writer mp;
    mp.u32(WM_MODE, m->mode);
    if (!m->nodes.empty()) {
      std::string words;
      for (uint64_t word : m->nodes)
        for (int i = 0; i < 8; i++) words += static_cast<char>((word >> (8 * i)) & 0xff);
      mp.bytes(WM_NODES, words);
    }
    w.nested(W_MEMPOLICY, mp);
  }
  for (const auto& rl : p.rlimits) {
    auto value = [](int64_t v) { return v < 0 ? UINT64_MAX : static_cast<uint64_t>(v); };
    w.nested(W_RLIMIT, wire::Writer()
                           .u32(WR_RESOURCE, static_cast<uint32_t>(rl.resource))
                           .u64(WR_SOFT, value(rl.soft))
                           .u64(WR_HARD, value(rl.hard)));
  }
  if (filter.program && !filter.program->empty()) {
    w.bytes(W_SECCOMP, *filter.program);
    if (filter.flags) w.u32(W_SECCOMP_FLAGS, filter.flags);
  }
}

uint32_t host_id(const IdMapping& map, uint32_t id, bool uid) {
  const std::string& lines = uid ? map.uid_map : map.gid_map;
  if (lines.empty()) return id < map.count ? (uid ? map.uid_base : map.gid_base) + id : 65534u;
  std::istringstream in(lines);
  uint64_t inside = 0, outside = 0, count = 0;
  while (in >> inside >> outside >> count)
    if (id >= inside && id - inside < count) return static_cast<uint32_t>(outside + (id - inside));
  return 65534u;  // unmapped: the kernel's overflow id
}

Result<std::string> lower_dirs(const std::vector<std::filesystem::path>& layers) {
  std::string out;
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {  // overlayfs: topmost first
    const std::string s = it->string();
    if (s.find_first_of(":,") != std::string::npos)
      return fail("layer path " + s + " contains ':' or ','");
    if (!out.empty()) out += ':';
    out += s;
  }
  if (out.empty()) return fail("image has no layers");
  return out;
}

std::string container_config(const ContainerSpec& spec, const std::string& lowers,
                             bool layers_shifted, const Filter& filter, bool pause_pivot) {
  const auto& dir = spec.dir;
  wire::Writer cfg;
  cfg.bytes(W_ROOTFS, (dir / "rootfs").string())
      .bytes(W_UPPER, (dir / "upper").string())
      .bytes(W_WORK, (dir / "work").string())
      .bytes(W_LOWERDIRS, lowers)
      .u64(W_LOG_MAX_SIZE, static_cast<uint64_t>(spec.log_max_size))
      .u32(W_LOG_MAX_FILES, static_cast<uint32_t>(spec.log_max_files));
  if (spec.log_none) cfg.u32(W_LOG_NONE, 1);
  if (spec.root_in_place) cfg.bytes(W_ROOT_BIND, spec.layers.front().string());
  // In the host's UTS namespace the init must not set a name: it would be the host's. In a
  // joined one only a name asked for (crun's way): else the namespace keeps its own.
  if (!spec.host_uts && (spec.join_utsns.empty() || !spec.hostname.empty()))
    cfg.bytes(W_HOSTNAME, spec.hostname);
  auto bind = [&](const std::filesystem::path& src, const std::string& dst, bool ro) {
    cfg.nested(W_MOUNT, wire::Writer()
                            .bytes(W_MOUNT_SRC, src.string())
                            .bytes(W_MOUNT_DST, dst)
                            .u32(W_MOUNT_FLAGS, ro ? WIRE_MOUNT_RO : 0));
  };
  if (spec.etc_binds) {
    bind(dir / "hostname", "/etc/hostname", false);
    bind(dir / "hosts", "/etc/hosts", false);
  }
  if (!spec.resolv_conf.empty()) bind(dir / "resolv.conf", "/etc/resolv.conf", false);
  add_mounts(cfg, spec);  // volumes, binds, tmpfs, secrets (mounts.cpp)
  auto device = [&](const auto& d, uint32_t uid, uint32_t gid) {
    wire::Writer w;
    w.bytes(W_DEV_PATH, d.path)
        .u32(W_DEV_TYPE, static_cast<uint32_t>(d.type))
        .u32(W_DEV_MAJOR, d.major)
        .u32(W_DEV_MINOR, d.minor)
        .u32(W_DEV_MODE, d.mode);
    // The init makes the nodes as root on the host: an owner inside a user namespace is the
    // host id it maps to.
    if (uid) w.u32(W_DEV_UID, spec.userns ? host_id(*spec.userns, uid, true) : uid);
    if (gid) w.u32(W_DEV_GID, spec.userns ? host_id(*spec.userns, gid, false) : gid);
    cfg.nested(W_DEVICE, w);
  };
  for (const auto& d : spec.privileged ? host_devices() : default_devices()) device(d, 0, 0);
  for (const auto& d : spec.devices) device(d, d.uid, d.gid);  // never a default's path (the builder checks)
  if (spec.userns) cfg.u32(W_USERNS, 1);
  if (spec.cgroupns) cfg.u32(W_CGROUPNS, 1);
  if (spec.tty) cfg.u32(W_TTY, 1);
  else if (spec.stdin_open) cfg.u32(W_STDIN_OPEN, 1);
  if (!spec.sysctls.empty() || !spec.domainname.empty() || spec.oom_score_adj) {
    wire::Writer k;
    for (const auto& [key, value] : spec.sysctls) k.bytes(WK_SYSCTL, key + "=" + value);
    if (!spec.domainname.empty()) k.bytes(WK_DOMAINNAME, spec.domainname);
    if (spec.oom_score_adj)
      k.u32(WK_OOM_SCORE_ADJ, static_cast<uint32_t>(*spec.oom_score_adj + 1000));
    cfg.nested(W_KERNEL, k);
  }
  if (layers_shifted) cfg.u32(W_LAYERS_SHIFTED, 1);
  if (spec.inherit_stdio) cfg.u32(W_STDIO_INHERIT, 1);
  if (pause_pivot) cfg.u32(W_PAUSE_PIVOT, 1);
  uint32_t joined = (spec.join_netns.empty() ? 0 : CLONE_NEWNET) |
                    (spec.join_ipcns.empty() ? 0 : CLONE_NEWIPC) |
                    (spec.join_pidns.empty() ? 0 : CLONE_NEWPID) |
                    (spec.join_utsns.empty() ? 0 : CLONE_NEWUTS) |
                    (spec.join_cgroupns.empty() ? 0 : CLONE_NEWCGROUP) |
                    (spec.join_mntns.empty() ? 0 : CLONE_NEWNS);
  if (joined) cfg.u32(W_NS_JOINED, joined);
  if (spec.timens) {
    wire::Writer t;
    if (!spec.join_timens.empty()) {
      t.bytes(WT_PATH, spec.join_timens);
    } else {
      const auto& o = spec.time_offsets;
      t.bytes(WT_OFFSETS, "monotonic " + std::to_string(o.monotonic_secs) + " " +
                              std::to_string(o.monotonic_nanosecs) + "\nboottime " +
                              std::to_string(o.boottime_secs) + " " +
                              std::to_string(o.boottime_nanosecs) + "\n");
    }
    cfg.nested(W_TIMENS, t);
  }
  if (uint32_t p = propagation_flags(spec.rootfs_propagation)) cfg.u32(W_ROOT_PROPAGATION, p);
  if (spec.personality) cfg.u32(W_PERSONALITY, *spec.personality);
  if (spec.privileged) {
    cfg.u32(W_SYS_RW, 1);
  } else {
    for (const auto& m : spec.masked ? *spec.masked : masked_paths()) cfg.bytes(W_MASKED, m);
    for (const auto& r : spec.readonly ? *spec.readonly : readonly_paths())
      cfg.bytes(W_READONLY, r);
  }
  add_process(cfg, spec.process, filter);
  return cfg.message();
}

}  // namespace stack::engine
