// config.json into a ContainerSpec (see bundle.h). Every member the engine cannot honour is
// refused by its path in the document; members the runtime spec marks optional and absent keep
// the engine's behaviour only where that is what the spec says (no seccomp: no filter).
#include "runtime/bundle.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "common/files.h"
#include "engine/container.h"
#include "engine/security.h"
#include "runtime/bundle_internal.h"

namespace stack::runtime {
namespace {

using json = nlohmann::json;

using detail::read_resources;
using detail::refuse;
using detail::refuse_if_set;

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

Result<void> read_process(const json& p, model::ContainerSpec& spec, Console& console) {
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
  if (auto r = refuse_if_set(p, "selinuxLabel", "process.selinuxLabel",
                             "SELinux is not enabled on this kernel");
      !r)
    return r;
  // What an exec's process.json leaves out is not taken from the container's process.
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
  if (p.contains("user")) {
    const json& u = p["user"];
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
  proc.capabilities = proc.inheritable = proc.ambient = 0;
  proc.user_permitted = proc.user_effective = 0;
  if (p.contains("capabilities")) {
    const json& c = p["capabilities"];
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
    // Ambient needs each capability permitted and inheritable (prctl(2)).
    if ((ambient & ~(inheritable & permitted)) != 0)
      return refuse("process.capabilities.ambient",
                    "must be a subset of the inheritable and permitted sets");
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

// tmpfs(5)'s size=: bytes with an optional k, m or g suffix.
std::optional<int64_t> tmpfs_size(const std::string& s) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  if (unit == "k" || unit == "K") return n << 10;
  if (unit == "m" || unit == "M") return n << 20;
  if (unit == "g" || unit == "G") return n << 30;
  if (unit.empty()) return n;
  return std::nullopt;
}

// What the engine mounts itself in every container: accepted when config.json asks for the
// same thing.
bool engine_mount(const std::string& type, const std::string& dst) {
  return (type == "proc" && dst == "/proc") || (type == "sysfs" && dst == "/sys") ||
         (type == "tmpfs" && dst == "/dev") || (type == "devpts" && dst == "/dev/pts") ||
         (type == "mqueue" && dst == "/dev/mqueue");
}

// A mount's uidMappings or gidMappings as uid_map(5) lines ("containerID hostID size", as crun
// writes them) of the user namespace it is idmapped through. The kernel maps a file's owner as
// an id inside that namespace to the one outside it (mount_setattr(2)): {containerID 1000,
// hostID 0} shows the source's uid 1000 as 0.
Result<std::string> id_map(const json& m, const char* key, const std::string& field) {
  const json& list = m.value(key, json::array());
  if (list.empty())
    return refuse(field + "." + key, "required for an idmapped mount (the container's own "
                                     "mappings are not taken)");
  if (list.size() > 340) return refuse(field + "." + key, "more than 340 ranges");
  std::string out;
  for (const auto& r : list) {
    if (!r.contains("containerID") || !r.contains("hostID") || !r.contains("size") ||
        r["size"].get<uint32_t>() == 0)
      return refuse(field + "." + key, "each range needs containerID, hostID and a size");
    out += std::to_string(r["containerID"].get<uint32_t>()) + " " +
           std::to_string(r["hostID"].get<uint32_t>()) + " " +
           std::to_string(r["size"].get<uint32_t>()) + "\n";
  }
  return out;
}

Result<void> read_mounts(const json& mounts, Bundle& b) {
  auto& spec = b.spec;
  for (size_t i = 0; i < mounts.size(); i++) {
    const json& m = mounts[i];
    std::string field = "mounts[" + std::to_string(i) + "]";
    std::string dst = m.value("destination", "");
    std::string type = m.value("type", "");
    std::string src = m.value("source", "");
    auto options = m.value("options", std::vector<std::string>{});
    if (dst.empty() || dst[0] != '/') return refuse(field + ".destination", "must be absolute");
    field += " (" + dst + ")";
    bool is_bind = type == "bind";
    bool idmap = false, ridmap = false;
    for (const auto& o : options) {
      is_bind |= o == "bind" || o == "rbind";
      idmap |= o == "idmap";
      ridmap |= o == "ridmap";
    }
    bool maps = m.contains("uidMappings") || m.contains("gidMappings");
    if ((maps || idmap || ridmap) && !is_bind)
      return refuse(field + ".uidMappings", "an idmapped mount must be a bind mount");
    if (engine_mount(type, dst)) continue;
    if (type == "tmpfs" && dst == "/dev/shm") {
      for (const auto& o : options)
        if (o.rfind("size=", 0) == 0) {
          auto size = tmpfs_size(o.substr(5));
          if (!size) return refuse(field, "size \"" + o.substr(5) + "\" is not a size");
          spec.shm_size = *size;
        }
      continue;
    }
    if (type == "cgroup" || type == "cgroup2") {
      b.warnings.push_back(field + ": " + type +
                           " is not mounted (no cgroup namespace here): the directory stays empty");
      continue;
    }
    model::BindMount bm;
    bm.target = dst;
    bm.create_source = false;
    if (is_bind) {
      if (src.empty()) return refuse(field + ".source", "required for a bind mount");
      bm.source = src;
      for (const auto& o : options) {
        if (o == "ro") bm.read_only = true;
        else if (o == "nosuid") bm.nosuid = true;
        else if (o == "nodev") bm.nodev = true;
        else if (o == "noexec") bm.noexec = true;
        else if (o == "suid") bm.nosuid = false;
        else if (o == "dev") bm.nodev = false;
        else if (o == "exec") bm.noexec = false;
        else if (o == "rw" || o == "bind" || o == "rbind" || o == "idmap" || o == "ridmap")
          continue;
        else if (o == "relatime" || o == "noatime" || o == "strictatime")
          b.warnings.push_back(field + ": " + o + " is not applied to a bind mount (it keeps "
                               "its source's atime mode)");
        else if (o == "private" || o == "rprivate" || o == "shared" || o == "rshared" ||
                 o == "slave" || o == "rslave" || o == "unbindable" || o == "runbindable")
          bm.propagation = o;
        else
          return refuse(field + ".options", "\"" + o + "\" is not supported on a bind mount");
      }
      if (maps || idmap || ridmap) {
        auto uids = id_map(m, "uidMappings", field);
        if (!uids) return fail(uids.error());
        auto gids = id_map(m, "gidMappings", field);
        if (!gids) return fail(gids.error());
        bm.idmap_uids = *uids;
        bm.idmap_gids = *gids;
        bm.idmap_recursive = ridmap;
      }
    } else if (type == "tmpfs") {
      bm.kind = model::BindMount::Kind::kTmpfs;
      std::string data;
      for (const auto& o : options) {
        if (o == "ro") bm.read_only = true;
        else if (o == "rw" || o == "nosuid" || o == "nodev" || o == "noexec" || o == "relatime" ||
                 o == "strictatime" || o == "noatime")
          continue;
        else if (o.rfind("size=", 0) == 0 || o.rfind("mode=", 0) == 0 ||
                 o.rfind("uid=", 0) == 0 || o.rfind("gid=", 0) == 0 ||
                 o.rfind("nr_inodes=", 0) == 0)
          data += (data.empty() ? "" : ",") + o;
        else
          return refuse(field + ".options", "\"" + o + "\" is not supported on a tmpfs");
      }
      bm.options = data;
    } else {
      return refuse(field + ".type", "\"" + type + "\" is not supported (bind and tmpfs are)");
    }
    spec.mounts.push_back(std::move(bm));
  }
  return {};
}

// /proc/PID/uid_map's single range starting at 0, for a user namespace joined by
// /proc/PID/ns/user without mappings in config.json (the engine needs them for the container's
// directory). The one file read here besides config.json.
Result<std::pair<uint32_t, uint32_t>> proc_map(const std::string& ns_path, const char* file) {
  std::string field = std::string("linux.") + (file[0] == 'u' ? "uidMappings" : "gidMappings");
  static const std::string prefix = "/proc/", suffix = "/ns/user";
  if (ns_path.rfind(prefix, 0) != 0 || ns_path.size() <= prefix.size() + suffix.size() ||
      ns_path.compare(ns_path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return refuse(field, "required with a user namespace joined by a path other than "
                         "/proc/PID/ns/user");
  std::string dir = ns_path.substr(0, ns_path.size() - suffix.size());
  auto text = read_file(dir + "/" + file);
  if (!text) return fail(text.error().wrap(field + " of " + ns_path));
  unsigned inside = 1, outside = 0, count = 0;
  int n = 0;
  if (std::sscanf(text->c_str(), "%u %u %u %n", &inside, &outside, &count, &n) != 3 ||
      inside != 0 || static_cast<size_t>(n) != text->size())
    return refuse(field, ns_path + ": one range starting at id 0 is supported");
  return std::pair{static_cast<uint32_t>(outside), static_cast<uint32_t>(count)};
}

Result<void> read_namespaces(const json& nss, const json& lx, model::ContainerSpec& spec) {
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
    if (maps) return refuse("linux.uidMappings", "needs a user namespace");
    return {};
  }
  auto one = [&](const char* key) -> Result<std::pair<uint32_t, uint32_t>> {
    if (!maps && !spec.join_userns.empty())
      return proc_map(spec.join_userns, key[0] == 'u' ? "uid_map" : "gid_map");
    const json& m = lx.value(key, json::array());
    if (m.size() != 1 || m[0].value("containerID", 1u) != 0)
      return fail(std::string("linux.") + key + ": one range starting at container id 0 is supported");
    return std::pair{m[0].value("hostID", 0u), m[0].value("size", 0u)};
  };
  auto u = one("uidMappings");
  if (!u) return fail(u.error());
  auto g = one("gidMappings");
  if (!g) return fail(g.error());
  if (u->second != g->second || u->second == 0)
    return refuse("linux.gidMappings", "must have the size of linux.uidMappings");
  spec.userns = model::IdMapping{u->first, g->first, u->second};
  return {};
}

Result<void> read_linux(const json& lx, const std::string& id, model::ContainerSpec& spec) {
  if (auto r = read_namespaces(lx.value("namespaces", json::array()), lx, spec); !r) return r;
  std::string cg = lx.value("cgroupsPath", "");
  if (cg.find(':') != std::string::npos)
    return refuse("linux.cgroupsPath", "\"" + cg + "\" is systemd's form (slice:prefix:name), "
                  "which needs --systemd-cgroup: not supported");
  while (!cg.empty() && cg.front() == '/') cg.erase(0, 1);
  if (cg.find("..") != std::string::npos) return refuse("linux.cgroupsPath", "must not hold \"..\"");
  spec.cgroup = cg.empty() ? "stack-runtime/" + id : cg;
  if (lx.contains("resources"))
    if (auto r = read_resources(lx["resources"], spec); !r) return r;
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
    std::string type = d.value("type", "c");
    if (type != "c" && type != "b" && type != "u")
      return refuse("linux.devices (" + dm.path + ")", "type must be c, b or u");
    dm.type = type == "b" ? 'b' : 'c';
    dm.major = d.value("major", 0u);
    dm.minor = d.value("minor", 0u);
    dm.mode = d.value("fileMode", 0666u) & 07777;
    // The engine makes every node root's: another owner is refused, not dropped.
    for (const char* k : {"uid", "gid"})
      if (d.contains(k) && !d[k].is_null() && d[k].get<uint32_t>() != 0)
        return refuse("linux.devices (" + dm.path + ")." + k, "only 0 (root) is supported");
    bool is_default = false;
    for (const auto& n : engine::default_devices()) is_default |= n.path == dm.path;
    if (is_default) continue;  // the engine makes it already, with the same numbers
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
  if (auto r = refuse_if_set(lx, "mountLabel", "linux.mountLabel",
                             "SELinux is not enabled on this kernel");
      !r)
    return r;
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
  return detail::check_realtime(spec);
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
  if (auto r = read_process(c["process"], spec, b.console); !r) return fail(r.error());
  spec.hostname = c.value("hostname", "");
  spec.domainname = c.value("domainname", "");
  if (auto r = read_mounts(c.value("mounts", json::array()), b); !r) return fail(r.error());
  if (!c.contains("linux")) return refuse("linux", "required on Linux");
  if (auto r = read_linux(c["linux"], id, spec); !r) return fail(r.error());
  // The root written in place, as runc and crun do (podman commits and copies from it). With a
  // user namespace the engine mounts the root idmapped, which needs its overlay: there the
  // writes stay in the container's own layer (<root>/<id>/container/upper).
  spec.root_in_place = !spec.userns || !spec.join_mntns.empty();
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
                                         Console& console) {
  try {
    json p = json::parse(text);
    model::ContainerSpec spec;
    spec.process = base;
    spec.process.rlimits.clear();
    if (auto r = read_process(p, spec, console); !r) return fail(r.error());
    if (spec.oom_score_adj) return refuse("process.oomScoreAdj", "not supported for exec");
    return spec.process;
  } catch (const json::exception& e) {
    return fail(std::string("invalid: ") + e.what());
  }
}

Result<model::CgroupLimits> parse_resources(std::string_view text) {
  try {
    json r = json::parse(text);
    if (!r.is_object()) return fail("not a JSON object");
    model::ContainerSpec spec;
    if (auto e = read_resources(r, spec); !e) return fail(e.error());
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
