// config.json into a ContainerSpec (see bundle.h). Every member the engine cannot honour is
// refused by its path in the document; members the runtime spec marks optional and absent keep
// the engine's behaviour only where that is what the spec says (no seccomp: no filter).
#include "runtime/bundle.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>

#include "common/files.h"
#include "engine/container.h"
#include "engine/security.h"
#include "runtime/bundle_internal.h"
#include "runtime/realtime.h"

namespace stack::runtime {
namespace {

using json = nlohmann::json;

using detail::read_mounts;
using detail::read_resources;
using detail::refuse;
using detail::refuse_if_set;
using detail::warn_if_set;

const std::map<std::string, int>& rlimit_names() {
  static const std::map<std::string, int> names = {
      {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK}};
  return names;
}

Result<uint64_t> cap_set(const json& names, const std::string& field) {
  std::vector<std::string> v = names.get<std::vector<std::string>>();
  if (v.empty()) return uint64_t{0};
  // "ALL" dropped keeps exactly the names added (engine::capabilities_from).
  auto set = engine::capabilities_from(v, {"ALL"});
  if (!set) return fail(set.error().wrap(field));
  return *set;
}

// WARNINGS gets what is accepted with a difference (ambient capabilities not raised).
Result<void> read_process(const json& p, model::ContainerSpec& spec, Console& console,
                          std::vector<std::string>& warnings) {
  auto& proc = spec.process;
  if (!p.contains("args") || p["args"].empty()) return refuse("process.args", "required");
  proc.argv = p["args"].get<std::vector<std::string>>();
  proc.env = p.value("env", std::vector<std::string>{});
  proc.cwd = p.value("cwd", std::string("/"));
  if (proc.cwd.empty() || proc.cwd[0] != '/') return refuse("process.cwd", "must be absolute");
  console.terminal = p.value("terminal", false);
  spec.tty = console.terminal;
  if (p.contains("consoleSize")) {
    const json& cs = p["consoleSize"];
    console.rows = static_cast<uint16_t>(cs.value("height", 0u));
    console.cols = static_cast<uint16_t>(cs.value("width", 0u));
  }
  if (auto r = refuse_if_set(p, "apparmorProfile", "process.apparmorProfile",
                             "AppArmor is not enabled on this kernel");
      !r)
    return r;
  // Without SELinux a label means nothing: crun and runc take it to no effect, said here.
  warn_if_set(p, "selinuxLabel", "process.selinuxLabel", "SELinux is not enabled on this kernel",
              warnings);
  // An umask, I/O priority or scheduler an exec's process.json leaves out is not the
  // container's (capabilities are, below).
  proc.umask.reset();
  proc.io_priority.reset();
  proc.scheduler.reset();
  if (p.contains("ioPriority") && !p["ioPriority"].is_null()) {
    auto io = detail::read_io_priority(p["ioPriority"]);
    if (!io) return fail(io.error());
    proc.io_priority = *io;
  }
  if (p.contains("scheduler") && !p["scheduler"].is_null()) {
    auto sched = detail::read_scheduler(p["scheduler"]);
    if (!sched) return fail(sched.error());
    proc.scheduler = *sched;
  }
  {
    // Absent, root (runc's and crun's zero value), not the container's user for an exec.
    const json& u = p.contains("user") ? p["user"] : json::object();
    proc.uid = u.value("uid", 0u);
    proc.gid = u.value("gid", 0u);
    proc.groups = u.value("additionalGids", std::vector<gid_t>{});
    if (u.contains("umask") && !u["umask"].is_null()) {
      uint32_t mask = u["umask"].get<uint32_t>();
      if (mask > 0777) return refuse("process.user.umask", "must be at most 0777 (511)");
      proc.umask = mask;
    }
    if (auto r = refuse_if_set(u, "username", "process.user.username", "Windows only"); !r)
      return r;
  }
  // Without capabilities an exec keeps the container's sets, as runc and crun do (at create
  // the base has none).
  if (p.contains("capabilities") && !p["capabilities"].is_null()) {
    const json& c = p["capabilities"];
    proc.capabilities = proc.inheritable = proc.ambient = 0;
    proc.user_permitted = proc.user_effective = 0;
    auto set_of = [&](const char* name) -> Result<uint64_t> {
      return cap_set(c.value(name, json::array()), std::string("process.capabilities.") + name);
    };
    uint64_t bounding = STACK_TRY_CTX(set_of("bounding"), "config.json");
    uint64_t inheritable = STACK_TRY_CTX(set_of("inheritable"), "config.json");
    uint64_t ambient = STACK_TRY_CTX(set_of("ambient"), "config.json");
    uint64_t permitted = STACK_TRY_CTX(set_of("permitted"), "config.json");
    uint64_t effective = STACK_TRY_CTX(set_of("effective"), "config.json");
    proc.capabilities = bounding;
    if ((inheritable & ~bounding) != 0)
      return refuse("process.capabilities.inheritable", "must be a subset of the bounding set");
    if (proc.uid == 0) {
      // The engine's model: uid 0 has its bounding set effective and permitted.
      const char* why = "must equal the bounding set for uid 0 (the engine's model)";
      if (c.contains("effective") && effective != bounding)
        return refuse("process.capabilities.effective", why);
      if (c.contains("permitted") && permitted != bounding)
        return refuse("process.capabilities.permitted", why);
      permitted = bounding;
    } else {
      // Another user keeps these through setresuid (PR_SET_KEEPCAPS) for its ambient set to be
      // raised from; execve(2) then leaves it the ambient set alone (capabilities(7)).
      if ((permitted & ~bounding) != 0)
        return refuse("process.capabilities.permitted", "must be a subset of the bounding set");
      if ((effective & ~permitted) != 0)
        return refuse("process.capabilities.effective", "must be a subset of the permitted set");
      proc.user_permitted = permitted;
      proc.user_effective = effective;
    }
    // Ambient needs each capability permitted and inheritable (prctl(2)): runc and crun raise
    // the others to EPERM and go on (`crun spec` and `runc spec` list ambient capabilities
    // with no inheritable ones); so does this runtime, said in a warning.
    if (uint64_t lost = ambient & ~(inheritable & permitted); lost != 0) {
      std::string names;
      for (const auto& n : c.value("ambient", json::array()))
        if (auto bit = cap_set(json::array({n}), "process.capabilities.ambient");
            bit && (*bit & lost))
          names += (names.empty() ? "" : ", ") + n.get<std::string>();
      warnings.push_back("process.capabilities.ambient: " + names +
                         " not raised: not in the inheritable and permitted sets");
      ambient &= ~lost;
    }
    proc.inheritable = inheritable;
    proc.ambient = ambient;
  }
  for (const auto& rl : p.value("rlimits", json::array())) {
    std::string type = rl.value("type", "");
    auto it = rlimit_names().find(type);
    if (it == rlimit_names().end()) return refuse("process.rlimits", "unknown type \"" + type + "\"");
    auto value = [](uint64_t v) { return v == UINT64_MAX ? int64_t{-1} : static_cast<int64_t>(v); };
    proc.rlimits.push_back({it->second, value(rl.value("soft", uint64_t{0})),
                            value(rl.value("hard", uint64_t{0}))});
  }
  proc.no_new_privs = p.value("noNewPrivileges", false);
  if (p.contains("oomScoreAdj")) spec.oom_score_adj = p["oomScoreAdj"].get<int>();
  return {};
}

// One of uid_map(5)'s ranges: container ids INSIDE.. map to host ids OUTSIDE..
struct Range {
  uint32_t inside, outside, count;
};

// /proc/PID/uid_map's ranges, for a user namespace joined by /proc/PID/ns/user without
// mappings in config.json (the engine needs them for the container's directory). The one file
// read here besides config.json.
Result<std::vector<Range>> proc_map(const std::string& ns_path, const char* file) {
  std::string field = std::string("linux.") + (file[0] == 'u' ? "uidMappings" : "gidMappings");
  static const std::string prefix = "/proc/", suffix = "/ns/user";
  if (ns_path.rfind(prefix, 0) != 0 || ns_path.size() <= prefix.size() + suffix.size() ||
      ns_path.compare(ns_path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return refuse(field, "required with a user namespace joined by a path other than "
                         "/proc/PID/ns/user");
  std::string dir = ns_path.substr(0, ns_path.size() - suffix.size());
  auto text = read_file(dir + "/" + file);
  if (!text) return fail(text.error().wrap(field + " of " + ns_path));
  std::vector<Range> out;
  const char* p = text->c_str();
  unsigned inside = 0, outside = 0, count = 0;
  int n = 0;
  while (std::sscanf(p, "%u %u %u %n", &inside, &outside, &count, &n) == 3) {
    out.push_back({inside, outside, count});
    p += n;
  }
  if (*p != '\0' || out.empty()) return refuse(field, ns_path + ": not uid_map(5)'s format");
  return out;
}

// linux.uidMappings or gidMappings (KEY) as ranges.
Result<std::vector<Range>> config_map(const json& lx, const char* key) {
  std::string field = std::string("linux.") + key;
  const json& list = lx.value(key, json::array());
  if (list.empty()) return refuse(field, "required with a user namespace");
  if (list.size() > 340) return refuse(field, "more than 340 ranges (uid_map(5)'s limit)");
  std::vector<Range> out;
  for (const auto& r : list) {
    if (!r.contains("containerID") || !r.contains("hostID") || !r.contains("size") ||
        r["size"].get<uint32_t>() == 0)
      return refuse(field, "each range needs containerID, hostID and a size");
    out.push_back({r["containerID"].get<uint32_t>(), r["hostID"].get<uint32_t>(),
                   r["size"].get<uint32_t>()});
  }
  return out;
}

// The host id container id ID maps to, if a range holds it.
std::optional<uint32_t> host_id(const std::vector<Range>& map, uint32_t id) {
  for (const auto& r : map)
    if (id >= r.inside && id - r.inside < r.count) return r.outside + (id - r.inside);
  return std::nullopt;
}

// UID_RANGES and GID_RANGES: the user namespace's maps, when there is one.
Result<void> read_namespaces(const json& nss, const json& lx, model::ContainerSpec& spec,
                             std::vector<Range>& uid_ranges, std::vector<Range>& gid_ranges,
                             std::vector<std::string>& warnings) {
  std::map<std::string, std::string> ns;  // type -> path ("" new)
  for (const auto& n : nss) ns[n.value("type", "")] = n.value("path", "");
  for (const auto& [type, path] : ns) {
    std::string field = "linux.namespaces (" + type + ")";
    // Joined by path. Network, PID, IPC, UTS and cgroup: the engine's setns(2) before its
    // clone; user and mount: the init's, the user namespace first (as crun).
    if (type == "network") {
      spec.join_netns = path;
    } else if (type == "pid") {
      spec.join_pidns = path;
    } else if (type == "ipc") {
      spec.join_ipcns = path;
    } else if (type == "uts") {
      spec.join_utsns = path;
    } else if (type == "cgroup") {
      spec.join_cgroupns = path;
      spec.cgroupns = path.empty();
    } else if (type == "mount") {
      spec.join_mntns = path;
    } else if (type == "user") {
      spec.join_userns = path;
    } else if (type == "time") {
      spec.timens = true;  // made or joined by the init itself (init/attrs.c)
      spec.join_timens = path;
    } else {
      return refuse(field, "not supported");
    }
  }
  if (!ns.count("mount")) return refuse("linux.namespaces", "a mount namespace is required here");
  spec.host_pid = !ns.count("pid");
  spec.host_network = !ns.count("network");
  spec.host_uts = !ns.count("uts");
  spec.host_ipc = !ns.count("ipc");
  bool maps = lx.contains("uidMappings") || lx.contains("gidMappings");
  if (!ns.count("user")) {
    // crun and runc read the maps only for a user namespace they make, and pass over them
    // without one: the container runs with the host's ids. So here, said so.
    if (maps)
      warnings.push_back("linux.uidMappings, linux.gidMappings: ignored without a user "
                         "namespace in linux.namespaces (the host's ids are used)");
    return {};
  }
  auto ranges = [&](const char* key) -> Result<std::vector<Range>> {
    if (!maps && !spec.join_userns.empty())
      return proc_map(spec.join_userns, key[0] == 'u' ? "uid_map" : "gid_map");
    return config_map(lx, key);
  };
  auto u = ranges("uidMappings");
  if (!u) return fail(u.error());
  auto g = ranges("gidMappings");
  if (!g) return fail(g.error());
  // The container's root owns its directory on the host (engine::own_for): id 0 must map.
  auto zero = [](const std::vector<Range>& m) {
    return std::find_if(m.begin(), m.end(), [](const Range& r) { return r.inside == 0; });
  };
  auto u0 = zero(*u), g0 = zero(*g);
  if (u0 == u->end()) return refuse("linux.uidMappings", "needs a range starting at container id 0");
  if (g0 == g->end()) return refuse("linux.gidMappings", "needs a range starting at container id 0");
  model::IdMapping map{u0->outside, g0->outside, u0->count};
  if (u->size() == 1 && g->size() == 1) {
    if (u0->count != g0->count)
      return refuse("linux.gidMappings", "must have the size of linux.uidMappings");
  } else {
    // Several ranges: uid_map(5)'s lines, written as they are (root on the host may: no
    // newuidmap); the kernel refuses overlapping ones when the engine writes them.
    auto lines = [](const std::vector<Range>& m) {
      std::string out;
      for (const auto& r : m)
        out += std::to_string(r.inside) + " " + std::to_string(r.outside) + " " +
               std::to_string(r.count) + "\n";
      return out;
    };
    map.uid_map = lines(*u);
    map.gid_map = lines(*g);
  }
  spec.userns = map;
  uid_ranges = std::move(*u);
  gid_ranges = std::move(*g);
  return {};
}

Result<void> read_linux(const json& lx, const std::string& id, model::ContainerSpec& spec,
                        std::vector<std::string>& warnings) {
  std::vector<Range> uids, gids;
  if (auto r = read_namespaces(lx.value("namespaces", json::array()), lx, spec, uids, gids,
                               warnings);
      !r)
    return r;
  std::string cg = lx.value("cgroupsPath", "");
  if (cg.find(':') != std::string::npos)
    return refuse("linux.cgroupsPath", "\"" + cg + "\" is systemd's form (slice:prefix:name), "
                  "which needs --systemd-cgroup: not supported");
  while (!cg.empty() && cg.front() == '/') cg.erase(0, 1);
  if (cg.find("..") != std::string::npos) return refuse("linux.cgroupsPath", "must not hold \"..\"");
  spec.cgroup = cg.empty() ? "stack-runtime/" + id : cg;
  if (lx.contains("resources"))
    if (auto r = read_resources(lx["resources"], spec, warnings); !r) return r;
  // items() of a temporary would dangle: the value is kept first.
  const json sysctl = lx.value("sysctl", json::object());
  for (const auto& [k, v] : sysctl.items())
    spec.sysctls.emplace_back(k, v.get<std::string>());
  if (lx.contains("seccomp") && !lx["seccomp"].is_null()) {
    // The runtime spec's seccomp object is Docker's profile format (defaultAction,
    // architectures, syscalls with names, action, args, errnoRet): the same compiler.
    spec.process.seccomp.mode = model::SeccompSpec::Mode::kProfile;
    spec.process.seccomp.profile_json = lx["seccomp"].dump();
  } else {
    spec.process.seccomp.mode = model::SeccompSpec::Mode::kUnconfined;
  }
  spec.masked = lx.value("maskedPaths", std::vector<std::string>{});
  spec.readonly = lx.value("readonlyPaths", std::vector<std::string>{});
  for (const auto& d : lx.value("devices", json::array())) {
    model::DeviceMapping dm;
    dm.path = d.value("path", "");
    std::string field = "linux.devices (" + dm.path + ")";
    std::string type = d.value("type", "c");
    if (type != "c" && type != "b" && type != "u" && type != "p")
      return refuse(field, "type must be c, b, u or p");
    dm.type = type == "u" ? 'c' : type[0];
    dm.major = d.value("major", 0u);
    dm.minor = d.value("minor", 0u);
    dm.mode = d.value("fileMode", 0666u) & 07777;
    if (d.contains("uid") && !d["uid"].is_null()) dm.uid = d["uid"].get<uint32_t>();
    if (d.contains("gid") && !d["gid"].is_null()) dm.gid = d["gid"].get<uint32_t>();
    // Made by the engine as root on the host: an owner the user namespace cannot show would be
    // a host id nobody in the container has.
    if (spec.userns && dm.uid && !host_id(uids, dm.uid))
      return refuse(field + ".uid", "not mapped by the user namespace");
    if (spec.userns && dm.gid && !host_id(gids, dm.gid))
      return refuse(field + ".gid", "not mapped by the user namespace");
    bool is_default = false;
    for (const auto& n : engine::default_devices()) is_default |= n.path == dm.path;
    // The engine makes those already, with the same numbers, root's.
    if (is_default && dm.type != 'p' && !dm.uid && !dm.gid) continue;
    if (is_default)
      return refuse(field, "one of the engine's own nodes: only as a root-owned device");
    spec.devices.push_back(dm);
  }
  std::string prop = lx.value("rootfsPropagation", "");
  if (!prop.empty()) {
    static const char* const kinds[] = {"shared",  "slave",  "private",  "unbindable",
                                        "rshared", "rslave", "rprivate", "runbindable"};
    if (std::find(std::begin(kinds), std::end(kinds), prop) == std::end(kinds))
      return refuse("linux.rootfsPropagation", "\"" + prop + "\" is not a propagation type");
    if (!spec.join_mntns.empty())
      return refuse("linux.rootfsPropagation", "not with a joined mount namespace (the root is "
                                               "not a mount of the container's own there)");
    spec.rootfs_propagation = prop;
  }
  if (lx.contains("personality") && !lx["personality"].is_null()) {
    // personality(2)'s personas crun and runc know; flags are refused (none is defined).
    std::string domain = lx["personality"].value("domain", "");
    if (domain == "LINUX") spec.personality = 0x0000;         // PER_LINUX
    else if (domain == "LINUX32") spec.personality = 0x0008;  // PER_LINUX32
    else return refuse("linux.personality.domain", "\"" + domain + "\": LINUX or LINUX32");
    if (auto r = refuse_if_set(lx["personality"], "flags", "linux.personality.flags",
                               "not supported");
        !r)
      return r;
  }
  warn_if_set(lx, "mountLabel", "linux.mountLabel", "SELinux is not enabled on this kernel",
              warnings);
  if (auto r = refuse_if_set(lx, "intelRdt", "linux.intelRdt",
                             "not supported (this kernel has no resctrl: X86_CPU_RESCTRL is off)");
      !r)
    return r;
  if (lx.contains("timeOffsets") && !lx["timeOffsets"].is_null()) {
    // Offsets are written before any process is in the namespace (time_namespaces(7)).
    if (!spec.timens || !spec.join_timens.empty())
      return refuse("linux.timeOffsets",
                    "needs a new time namespace (linux.namespaces type "
                    "\"time\" without a path)");
    auto offsets = detail::read_time_offsets(lx["timeOffsets"]);
    if (!offsets) return fail(offsets.error());
    spec.time_offsets = *offsets;
  }
  if (lx.contains("memoryPolicy") && !lx["memoryPolicy"].is_null()) {
    auto policy = detail::read_memory_policy(lx["memoryPolicy"]);
    if (!policy) return fail(policy.error());
    spec.process.memory_policy = *policy;
  }
  // The host is read only for a scheduler (the realtime check's facts).
  if (spec.process.scheduler) return check_realtime(spec.process, spec.limits, realtime_host());
  return {};
}

Result<std::vector<Hook>> read_hooks(const json& hooks, const char* kind) {
  std::vector<Hook> out;
  for (const auto& h : hooks.value(kind, json::array())) {
    Hook hook;
    hook.path = h.value("path", "");
    if (hook.path.empty() || hook.path[0] != '/')
      return fail(std::string("hooks.") + kind + ": path must be absolute");
    hook.args = h.value("args", std::vector<std::string>{});
    hook.env = h.value("env", std::vector<std::string>{});
    hook.timeout = h.value("timeout", 0);
    out.push_back(std::move(hook));
  }
  return out;
}

Result<Bundle> parse(const json& c, const std::filesystem::path& bundle, const std::string& id,
                     const std::filesystem::path& dir) {
  Bundle b;
  auto& spec = b.spec;
  spec.name = id;
  spec.dir = dir;
  spec.inherit_stdio = true;
  spec.etc_binds = false;
  std::string version = c.value("ociVersion", "");
  if (version.rfind("1.", 0) != 0) return refuse("ociVersion", "\"" + version + "\" is not 1.x");
  if (!c.contains("root") || !c["root"].contains("path")) return refuse("root.path", "required");
  std::filesystem::path root = c["root"]["path"].get<std::string>();
  if (root.is_relative()) root = bundle / root;
  spec.layers = {root};
  spec.read_only_root = c["root"].value("readonly", false);
  if (!c.contains("process")) return refuse("process", "required to create a container");
  if (auto r = read_process(c["process"], spec, b.console, b.warnings); !r) return fail(r.error());
  spec.hostname = c.value("hostname", "");
  spec.domainname = c.value("domainname", "");
  if (auto r = read_mounts(c.value("mounts", json::array()), b); !r) return fail(r.error());
  if (!c.contains("linux")) return refuse("linux", "required on Linux");
  if (auto r = read_linux(c["linux"], id, spec, b.warnings); !r) return fail(r.error());
  // The root written in place, as runc and crun do (podman commits and copies from it). With a
  // user namespace the engine mounts the root idmapped, which needs its overlay: there the
  // writes stay in the container's own layer (<root>/<id>/container/upper).
  spec.root_in_place = !spec.userns || !spec.join_mntns.empty();
  // With a user namespace of its own the init mounts /sys after the other mounts, over them:
  // a cgroup mount there is left out, said so (as before it was made at all).
  std::erase_if(spec.mounts, [&](const model::BindMount& m) {
    bool covered = m.kind == model::BindMount::Kind::kCgroup && spec.userns &&
                   spec.join_mntns.empty() && m.target.rfind("/sys", 0) == 0;
    if (covered)
      b.warnings.push_back("mounts (" + m.target + "): cgroup is not mounted with a user "
                           "namespace of the container's own: the directory stays empty");
    return covered;
  });
  if (!spec.join_mntns.empty() && spec.read_only_root)
    return refuse("root.readonly", "not with a joined mount namespace (the root is not a mount "
                                   "of the container's own there)");
  if (spec.host_uts && (!spec.hostname.empty() || !spec.domainname.empty()))
    return refuse("hostname", "needs a uts namespace");
  const json& hooks = c.value("hooks", json::object());
  b.hooks.prestart = STACK_TRY_CTX(read_hooks(hooks, "prestart"), "config.json");
  b.hooks.create_runtime = STACK_TRY_CTX(read_hooks(hooks, "createRuntime"), "config.json");
  b.hooks.create_container = STACK_TRY_CTX(read_hooks(hooks, "createContainer"), "config.json");
  b.hooks.start_container = STACK_TRY_CTX(read_hooks(hooks, "startContainer"), "config.json");
  b.hooks.poststart = STACK_TRY_CTX(read_hooks(hooks, "poststart"), "config.json");
  b.hooks.poststop = STACK_TRY_CTX(read_hooks(hooks, "poststop"), "config.json");
  const json annotations = c.value("annotations", json::object());
  for (const auto& [k, v] : annotations.items())
    b.annotations.emplace_back(k, v.get<std::string>());
  return b;
}

}  // namespace

Result<Bundle> parse_config(std::string_view text, const std::filesystem::path& bundle,
                            const std::string& id, const std::filesystem::path& dir) {
  try {
    json c = json::parse(text);
    if (!c.is_object()) return fail("not a JSON object");
    return parse(c, bundle, id, dir);
  } catch (const json::exception& e) {
    // A member of the wrong type, or a syntax error (with its byte offset).
    return fail(std::string("invalid: ") + e.what());
  }
}

Result<model::ProcessSpec> parse_process(std::string_view text, const model::ProcessSpec& base,
                                         Console& console, std::vector<std::string>* warnings,
                                         ExecAffinity* affinity) {
  try {
    json p = json::parse(text);
    model::ContainerSpec spec;
    spec.process = base;
    spec.process.rlimits.clear();
    std::vector<std::string> accepted;
    if (auto r = read_process(p, spec, console, accepted); !r) return fail(r.error());
    if (warnings) warnings->insert(warnings->end(), accepted.begin(), accepted.end());
    if (spec.oom_score_adj) return refuse("process.oomScoreAdj", "not supported for exec");
    // runtime-spec 1.2's, for an exec only (not the container's init, so not read at create).
    if (!affinity) {
      if (auto r =
              refuse_if_set(p, "execCPUAffinity", "process.execCPUAffinity", "not supported here");
          !r)
        return fail(r.error());
    } else if (p.contains("execCPUAffinity") && !p["execCPUAffinity"].is_null()) {
      const json& a = p["execCPUAffinity"];
      for (auto [key, out] :
           {std::pair{"initial", &affinity->initial}, std::pair{"final", &affinity->final}}) {
        std::string list = a.value(key, "");
        if (list.empty()) continue;
        auto mask =
            detail::read_id_list(list, std::string("process.execCPUAffinity.") + key, "CPU");
        if (!mask) return fail(mask.error());
        *out = std::move(*mask);
      }
    }
    return spec.process;
  } catch (const json::exception& e) {
    return fail(std::string("invalid: ") + e.what());
  }
}

Result<model::CgroupLimits> parse_resources(std::string_view text,
                                            std::vector<std::string>& warnings) {
  try {
    json r = json::parse(text);
    if (!r.is_object()) return fail("not a JSON object");
    model::ContainerSpec spec;
    if (auto e = read_resources(r, spec, warnings); !e) return fail(e.error());
    if (!spec.device_rules.empty() || r.contains("devices"))
      return refuse("linux.resources.devices", "cannot be updated (set at create)");
    return spec.limits;
  } catch (const json::exception& e) {
    return fail(std::string("invalid: ") + e.what());
  }
}

Result<Bundle> load_bundle(const std::filesystem::path& bundle, const std::string& id,
                           const std::filesystem::path& dir) {
  auto path = bundle / "config.json";
  auto text = read_file(path);
  if (!text) return fail(text.error());
  auto b = parse_config(*text, bundle, id, dir);
  if (!b) return fail(b.error().wrap(path.string()));
  return b;
}

}  // namespace stack::runtime
