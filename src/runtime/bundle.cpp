// config.json into a ContainerSpec (see bundle.h). Every member the engine cannot honour is
// refused by its path in the document; members the runtime spec marks optional and absent keep
// the engine's behaviour only where that is what the spec says (no seccomp: no filter).
#include "runtime/bundle.h"

#include <sys/resource.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "engine/container.h"
#include "engine/security.h"

namespace stack::runtime {
namespace {

using json = nlohmann::json;

tl::unexpected<Error> refuse(const std::string& field, const std::string& why) {
  return fail(field + ": " + why);
}

// A member that must be absent, null or empty for this runtime.
Result<void> refuse_if_set(const json& obj, const char* key, const std::string& field,
                           const std::string& why) {
  if (!obj.is_object() || !obj.contains(key)) return {};
  const json& v = obj.at(key);
  if (v.is_null() || (v.is_array() && v.empty()) || (v.is_object() && v.empty()) ||
      (v.is_string() && v.get<std::string>().empty()))
    return {};
  return refuse(field, why);
}

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
                             "AppArmor is not supported");
      !r)
    return r;
  if (auto r = refuse_if_set(p, "selinuxLabel", "process.selinuxLabel", "SELinux is not supported");
      !r)
    return r;
  if (auto r = refuse_if_set(p, "ioPriority", "process.ioPriority", "not supported"); !r) return r;
  if (auto r = refuse_if_set(p, "scheduler", "process.scheduler", "not supported"); !r) return r;
  if (p.contains("user")) {
    const json& u = p["user"];
    proc.uid = u.value("uid", 0u);
    proc.gid = u.value("gid", 0u);
    proc.groups = u.value("additionalGids", std::vector<gid_t>{});
    if (u.contains("umask") && u["umask"].get<unsigned>() != 022)
      return refuse("process.user.umask", "only 0022 (18) is supported");
    if (auto r = refuse_if_set(u, "username", "process.user.username", "Windows only"); !r)
      return r;
  }
  proc.capabilities = 0;
  if (p.contains("capabilities")) {
    const json& c = p["capabilities"];
    uint64_t bounding = STACK_TRY_CTX(cap_set(c.value("bounding", json::array()),
                                              "process.capabilities.bounding"), "config.json");
    proc.capabilities = bounding;
    // The engine keeps these empty. For root that changes nothing (execve(2) gives uid 0 its
    // whole bounding set: capabilities(7), "Capabilities and execution of programs by root"),
    // so a subset of the bounding set is accepted; another user would lose them: refused.
    for (const char* k : {"inheritable", "ambient"}) {
      std::string field = std::string("process.capabilities.") + k;
      uint64_t set = STACK_TRY_CTX(cap_set(c.value(k, json::array()), field), "config.json");
      if (set != 0 && (proc.uid != 0 || (set & ~bounding) != 0))
        return refuse(field, "only a subset of the bounding set, for uid 0 (the engine keeps "
                             "this set empty)");
    }
    for (const char* k : {"effective", "permitted"}) {
      if (!c.contains(k)) continue;
      std::string field = std::string("process.capabilities.") + k;
      uint64_t set = STACK_TRY_CTX(cap_set(c[k], field), "config.json");
      // The engine's model: uid 0 has its bounding set effective and permitted, any other
      // user none (engine/container.h).
      if (proc.uid == 0 && set != bounding)
        return refuse(field, "must equal the bounding set for uid 0 (the engine's model)");
      if (proc.uid != 0 && set != 0)
        return refuse(field, "must be empty for a user other than root (the engine's model)");
    }
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
    if (m.contains("uidMappings") || m.contains("gidMappings"))
      return refuse(field + ".uidMappings",
                    "idmapped mounts are not supported (the engine idmaps only a root under the "
                    "container's own user namespace, not a mount with mappings of its own)");
    bool is_bind = type == "bind";
    for (const auto& o : options) is_bind |= o == "bind" || o == "rbind";
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
        else if (o == "rw" || o == "bind" || o == "rbind" || o == "nosuid" || o == "nodev" ||
                 o == "relatime" || o == "noatime" || o == "strictatime" || o == "exec" ||
                 o == "suid" || o == "dev")
          continue;
        else if (o == "noexec")
          b.warnings.push_back(field + ": noexec is not applied to bind mounts");
        else if (o == "private" || o == "rprivate" || o == "shared" || o == "rshared" ||
                 o == "slave" || o == "rslave" || o == "unbindable" || o == "runbindable")
          bm.propagation = o;
        else
          return refuse(field + ".options", "\"" + o + "\" is not supported on a bind mount");
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

Result<void> read_namespaces(const json& nss, const json& lx, model::ContainerSpec& spec) {
  std::map<std::string, std::string> ns;  // type -> path ("" new)
  for (const auto& n : nss) ns[n.value("type", "")] = n.value("path", "");
  for (const auto& [type, path] : ns) {
    std::string field = "linux.namespaces (" + type + ")";
    // Joined by path: the engine's setns(2) before its clone (pods, podman's --network ns:,
    // --pid container:, --ipc container:). The others it always makes anew.
    if (type == "network") {
      spec.join_netns = path;
    } else if (type == "pid") {
      spec.join_pidns = path;
    } else if (type == "ipc") {
      spec.join_ipcns = path;
    } else if (type == "cgroup") {
      if (!path.empty())
        return refuse(field, "joining an existing one is not supported (a new one is)");
      spec.cgroupns = true;
    } else if (type == "mount" || type == "uts" || type == "user") {
      if (!path.empty())
        return refuse(field, "joining an existing one is not supported (network, pid and ipc "
                             "namespaces can be joined)");
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

Result<void> read_resources(const json& r, model::ContainerSpec& spec) {
  auto& l = spec.limits;
  for (const char* k : {"blockIO", "hugepageLimits", "network", "rdma", "unified"})
    if (auto e = refuse_if_set(r, k, std::string("linux.resources.") + k, "not supported"); !e)
      return e;
  if (r.contains("memory")) {
    const json& m = r["memory"];
    if (m.contains("limit")) l.memory_bytes = m["limit"].get<int64_t>();
    if (m.contains("reservation")) l.memory_reservation = m["reservation"].get<int64_t>();
    if (m.contains("swap")) l.memory_swap = m["swap"].get<int64_t>();
    if (m.contains("swappiness")) l.swappiness = m["swappiness"].get<int64_t>();
    l.oom_kill_disable = m.value("disableOOMKiller", false);
    for (const char* k : {"kernel", "kernelTCP", "useHierarchy", "checkBeforeUpdate"})
      if (auto e = refuse_if_set(m, k, std::string("linux.resources.memory.") + k, "not supported");
          !e)
        return e;
  }
  if (r.contains("cpu")) {
    const json& c = r["cpu"];
    if (c.contains("shares")) l.cpu_shares = c["shares"].get<int64_t>();
    if (c.contains("quota")) l.cpu_quota = c["quota"].get<int64_t>();
    if (c.contains("period")) l.cpu_period = c["period"].get<int64_t>();
    if (c.contains("cpus")) l.cpuset_cpus = c["cpus"].get<std::string>();
    for (const char* k : {"mems", "realtimeRuntime", "realtimePeriod", "idle", "burst"})
      if (auto e = refuse_if_set(c, k, std::string("linux.resources.cpu.") + k, "not supported");
          !e)
        return e;
  }
  if (r.contains("pids") && r["pids"].contains("limit")) {
    int64_t v = r["pids"]["limit"].get<int64_t>();
    if (v > 0) l.pids = v;
  }
  // The device cgroup: the engine denies everything but its default nodes; config.json's
  // "deny all" first rule says the same, its allow rules are added.
  const json& devs = r.value("devices", json::array());
  for (size_t i = 0; i < devs.size(); i++) {
    const json& d = devs[i];
    std::string field = "linux.resources.devices[" + std::to_string(i) + "]";
    std::string type = d.value("type", "a");
    model::DeviceRule rule;
    rule.type = type.empty() ? 'a' : type[0];
    rule.major = d.contains("major") && !d["major"].is_null() ? d["major"].get<int64_t>() : -1;
    rule.minor = d.contains("minor") && !d["minor"].is_null() ? d["minor"].get<int64_t>() : -1;
    rule.access = d.value("access", "rwm");
    if (!d.value("allow", false)) {
      if (i == 0 && rule.type == 'a' && rule.major < 0 && rule.minor < 0) continue;
      return refuse(field, "only a first \"deny all\" rule may deny");
    }
    spec.device_rules.push_back(rule);
  }
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
    bool is_default = false;
    for (const auto& n : engine::default_devices()) is_default |= n.path == dm.path;
    if (is_default) continue;  // the engine makes it already, with the same numbers
    spec.devices.push_back(dm);
  }
  std::string prop = lx.value("rootfsPropagation", "");
  if (!prop.empty() && prop != "private" && prop != "rprivate")
    return refuse("linux.rootfsPropagation", "only private is supported");
  for (const char* k : {"mountLabel", "intelRdt", "personality", "timeOffsets", "memoryPolicy"})
    if (auto r = refuse_if_set(lx, k, std::string("linux.") + k, "not supported"); !r) return r;
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
  if (auto r = read_process(c["process"], spec, b.console); !r) return fail(r.error());
  spec.hostname = c.value("hostname", "");
  spec.domainname = c.value("domainname", "");
  if (auto r = read_mounts(c.value("mounts", json::array()), b); !r) return fail(r.error());
  if (!c.contains("linux")) return refuse("linux", "required on Linux");
  if (auto r = read_linux(c["linux"], id, spec); !r) return fail(r.error());
  // The root written in place, as runc and crun do (podman commits and copies from it). With a
  // user namespace the engine mounts the root idmapped, which needs its overlay: there the
  // writes stay in the container's own layer (<root>/<id>/container/upper).
  spec.root_in_place = !spec.userns;
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
