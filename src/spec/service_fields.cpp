// Checks of the process and resource fields that their shape does not catch: what this host
// cannot run (another platform, another runtime) and what the kernel would refuse in a
// container (a sysctl that is not namespaced, an unknown ulimit). Reports at the key's position;
// touches nothing.
#include "spec/service_fields.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "spec/loader.h"
#include "spec/text.h"

namespace stack::spec {
namespace {

// Where KEY (a dotted path under the service) was written; else where FALLBACK was; else the
// service's own position (a list entry has no key of its own).
SourcePos key_pos(const Service& s, const std::string& key, const std::string& fallback = "") {
  for (const std::string& want : {key, fallback}) {
    if (want.empty()) continue;
    std::string path = "services." + s.name + "." + want;
    for (const KeyUse& k : s.keys)
      if (k.path == path) return k.pos;
  }
  return s.pos;
}

std::string extra_string(const Service& s, const char* key) {
  auto it = s.extra.find(key);
  return it != s.extra.end() && it->is_string() ? it->get<std::string>() : "";
}

void check_platform(const Service& s, Diagnostics& diag) {
  std::string p = extra_string(s, "platform");
  if (p.empty()) return;
  std::string host = host_platform();
  std::string want = p;
  std::transform(want.begin(), want.end(), want.begin(), ::tolower);
  // "linux/amd64/v2" and "linux/arm/v7": the variant narrows the architecture, which must match.
  auto two = [](const std::string& t) {
    size_t a = t.find('/');
    size_t b = a == std::string::npos ? a : t.find('/', a + 1);
    return b == std::string::npos ? t : t.substr(0, b);
  };
  std::string base = two(want);
  bool x86_64 = base == "linux/x86_64" || base == "linux/x86-64";
  if (base == host || (x86_64 && host == "linux/amd64") || want == "linux") return;
  diag.error(key_pos(s, "platform"), "service \"" + s.name + "\": platform " + p +
                                         " cannot run on this host (" + host +
                                         "): stack runs images natively, without emulation");
}

void check_runtime(const Service& s, Diagnostics& diag) {
  std::string r = extra_string(s, "runtime");
  if (r.empty() || r == "stack") return;
  diag.error(key_pos(s, "runtime"),
             "service \"" + s.name + "\": runtime " + r +
                 " is refused: stack runs every container with its own engine (runtime: stack)");
}

void check_ulimits(const Service& s, Diagnostics& diag) {
  for (const auto& [name, u] : s.ulimits)
    if (!rlimit_resource(name))
      diag.error(key_pos(s, "ulimits." + name, "ulimits"),
                 "service \"" + s.name + "\": unknown ulimit \"" + name +
                     "\" (as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, "
                     "nproc, rss, rtprio, rttime, sigpending, stack)");
}

// runc's list (libcontainer/configs/validate): the sysctls that belong to a namespace the
// container has its own of. Anything else would change the host for everyone.
void check_sysctls(const Service& s, Diagnostics& diag) {
  static const std::vector<std::string> ipc = {
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
      "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
  bool own_netns = s.network_mode.empty() || s.network_mode == "bridge" ||
                   s.network_mode == "default" || s.network_mode == "none";
  for (const auto& [key, value] : s.sysctls) {
    // compose and docker take "net/ipv4/ip_forward" too; the key is looked up under /proc/sys.
    std::string k = key;
    std::replace(k.begin(), k.end(), '/', '.');
    SourcePos pos = key_pos(s, "sysctls." + key, "sysctls");
    std::string where = "service \"" + s.name + "\": sysctl " + key;
    bool bad_name =
        k.empty() || k.find("..") != std::string::npos || k.front() == '.' || k.back() == '.';
    if (bad_name || value.find_first_of("\n") != std::string::npos) {
      diag.error(pos, where + ": not a sysctl name and one-line value");
      continue;
    }
    if (std::find(ipc.begin(), ipc.end(), k) != ipc.end() || k.rfind("fs.mqueue.", 0) == 0) {
      if (extra_string(s, "ipc") != "host") continue;
      diag.error(pos, where + " is refused with ipc: host: the IPC namespace is the host's");
      continue;
    }
    if (k.rfind("net.", 0) == 0) {
      if (own_netns) continue;
      diag.error(pos, where + " is refused with network_mode " + s.network_mode +
                          ": the network namespace is not the container's own");
      continue;
    }
    if (k == "kernel.hostname" || k == "kernel.domainname") {
      diag.error(pos, where + ": use " + k.substr(7) + ": instead");
      continue;
    }
    diag.error(pos, where +
                        " is refused: it is not namespaced and would change the host "
                        "(allowed: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)");
  }
}

void check_replicas(const Service& s, Diagnostics& diag) {
  if (!s.container_name.empty() && s.replicas > 1)
    diag.error(key_pos(s, "container_name"), "service \"" + s.name + "\": container_name " +
                                                 s.container_name +
                                                 " names one container, and the service asks for " +
                                                 std::to_string(s.replicas) + " replicas");
}

// uts: host, ipc: host|private|shareable|service:NAME|container:NAME, pid: host|service:NAME|
// container:NAME. What would rename the host is refused.
void check_namespaces(const Service& s, Diagnostics& diag) {
  std::string uts = extra_string(s, "uts");
  if (!uts.empty() && uts != "host")
    diag.error(key_pos(s, "uts"), "service \"" + s.name + "\": uts " + uts +
                                      ": only host (without it the container has its own)");
  if (uts == "host") {
    if (!s.hostname.empty())
      diag.error(key_pos(s, "hostname"), "service \"" + s.name +
                                             "\": hostname with uts: host would rename the host");
    if (!s.domainname.empty())
      diag.error(key_pos(s, "domainname"),
                 "service \"" + s.name + "\": domainname with uts: host would change the host's");
  }
  // container:NAME joins a container of this daemon by name, any project (checked at start).
  auto container = [](const std::string& v) { return v.rfind("container:", 0) == 0 && v.size() > 10; };
  std::string ipc = extra_string(s, "ipc");
  if (!ipc.empty() && ipc != "host" && ipc != "private" && ipc != "shareable" && !container(ipc) &&
      !(ipc.rfind("service:", 0) == 0 && ipc.size() > 8))
    diag.error(key_pos(s, "ipc"), "service \"" + s.name + "\": ipc " + ipc +
                                      ": one of host, private, shareable, service:NAME, "
                                      "container:NAME");
  std::string pid = extra_string(s, "pid");
  if (!pid.empty() && pid != "host" && !container(pid) &&
      !(pid.rfind("service:", 0) == 0 && pid.size() > 8))
    diag.error(key_pos(s, "pid"), "service \"" + s.name + "\": pid " + pid +
                                      ": host, service:NAME or container:NAME (without it the "
                                      "container has its own)");
  // One container's namespaces, like one service's (the start joins one target).
  std::string joined, joined_key;
  for (const char* key : {"network_mode", "pid", "ipc"}) {
    std::string v = std::string(key) == "network_mode" ? s.network_mode : extra_string(s, key);
    bool by_service = v.rfind("service:", 0) == 0 && v.size() > 8;
    if (!container(v) && !by_service) continue;
    if (!joined.empty() && joined != v && (container(v) || container(joined)))
      diag.error(key_pos(s, key), "service \"" + s.name + "\": " + key + " " + v + " and " +
                                      joined_key + " " + joined +
                                      ": stack joins the namespaces of one container only");
    if (joined.empty()) joined = v, joined_key = key;
  }
}

// pull_refresh_after: a duration, read with pull_policy refresh (or none, or missing).
void check_pull_refresh(const Service& s, Diagnostics& diag) {
  std::string after = extra_string(s, "pull_refresh_after");
  if (after.empty()) return;
  std::string at = "service \"" + s.name + "\": pull_refresh_after " + after;
  auto d = parse_duration(after);
  if (!d || d->count() < 1000)
    diag.error(key_pos(s, "pull_refresh_after"), at + ": not a duration of a second or more");
  else if (!s.pull_policy.empty() && s.pull_policy != "refresh" && s.pull_policy != "missing")
    diag.error(key_pos(s, "pull_refresh_after"),
               at + " with pull_policy " + s.pull_policy + ": it needs pull_policy refresh");
}

void check_hooks(const Service& s, Diagnostics& diag) {
  for (const char* key : {"post_start", "pre_stop"})
    if (auto h = lifecycle_hooks(s, key); !h) diag.error(key_pos(s, key), h.error().message);
}

}  // namespace

Result<std::vector<LifecycleHook>> lifecycle_hooks(const Service& s, const std::string& key) {
  std::vector<LifecycleHook> out;
  auto it = s.extra.find(key);
  if (it == s.extra.end() || !it->is_array()) return out;
  std::string where = "service \"" + s.name + "\": " + key;
  for (const auto& h : *it) {
    if (!h.is_object()) return fail(where + ": each hook is a mapping with a command");
    LifecycleHook hook;
    const auto& cmd = h.contains("command") ? h["command"] : nlohmann::json();
    if (cmd.is_string()) {
      auto words = split_shell_words(cmd.get<std::string>());
      if (!words) return fail(words.error().wrap(where + ".command"));
      hook.argv = std::move(*words);
    } else if (cmd.is_array()) {
      for (const auto& w : cmd)
        if (w.is_string()) hook.argv.push_back(w.get<std::string>());
    }
    if (hook.argv.empty()) return fail(where + ": a hook needs a command");
    hook.user = h.value("user", "");
    hook.privileged = h.value("privileged", false);
    hook.working_dir = h.value("working_dir", "");
    if (h.contains("environment")) {
      const auto& env = h["environment"];
      auto text = [](const nlohmann::json& v) {
        return v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
      };
      if (env.is_object())
        for (const auto& [k, v] : env.items()) hook.environment[k] = text(v);
      else if (env.is_array())
        for (const auto& e : env) {
          std::string kv = text(e);
          size_t eq = kv.find('=');
          hook.environment[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
        }
    }
    out.push_back(std::move(hook));
  }
  return out;
}

void check_stack_fields(const Stack& stack, Diagnostics& diag) {
  std::map<std::string, std::string> taken;  // container name -> service
  for (const Service& s : stack.services)
    if (s.container_name.empty())
      for (int n = 1; n <= s.replicas && n <= 1000; n++)
        taken[stack.name + "-" + s.name + "-" + std::to_string(n)] = s.name;
  for (const Service& s : stack.services) {
    if (s.container_name.empty()) continue;
    auto [it, fresh] = taken.emplace(s.container_name, s.name);
    if (!fresh)
      diag.error(key_pos(s, "container_name"),
                 "service \"" + s.name + "\": container_name " + s.container_name +
                     " is also the name of a container of service \"" + it->second + "\"");
  }
  for (const Service& s : stack.services) {
    // network_mode, pid and ipc service:NAME: one service, which exists (validate.cpp checks
    // network_mode's) and is not this one (its container_name, if any, names the one joined).
    std::string joined;
    for (const char* key : {"network_mode", "pid", "ipc"}) {
      std::string v = std::string(key) == "network_mode" ? s.network_mode : extra_string(s, key);
      if (v.rfind("service:", 0) != 0 || v.size() <= 8) continue;
      std::string name = v.substr(8);
      std::string at = "service \"" + s.name + "\": " + key + " " + v;
      const Service* target = stack.find(name);
      if (!joined.empty() && joined != name) {
        diag.error(key_pos(s, key), at + " and service:" + joined +
                                        ": stack joins the namespaces of one service only");
      } else if (name == s.name) {
        diag.error(key_pos(s, key), at + ": a service cannot join its own namespaces");
      } else if (!target) {
        if (std::string(key) != "network_mode")
          diag.error(key_pos(s, key), at + ": unknown service \"" + name + "\"");
      } else if (std::string(key) == "ipc" && extra_string(*target, "ipc") != "shareable" &&
                 extra_string(*target, "ipc") != "host") {
        // docker joins only an IPC namespace its owner shares (ipc: shareable).
        diag.error(key_pos(s, key), at + ": the IPC namespace of \"" + name +
                                        "\" is private; give it ipc: shareable");
      }
      joined = name;
    }
  }
}

std::string joined_service(const Service& s) {
  for (const std::string& v : {s.network_mode, extra_string(s, "pid"), extra_string(s, "ipc")})
    if (v.rfind("service:", 0) == 0 && v.size() > 8) return v.substr(8);
  return "";
}

std::optional<int> rlimit_resource(std::string_view name) {
  static const std::map<std::string, int, std::less<>> kNames = {
      {"as", RLIMIT_AS},           {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
      {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},       {"locks", RLIMIT_LOCKS},
      {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
      {"nofile", RLIMIT_NOFILE},   {"nproc", RLIMIT_NPROC},       {"rss", RLIMIT_RSS},
      {"rtprio", RLIMIT_RTPRIO},   {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
      {"stack", RLIMIT_STACK}};
  auto it = kNames.find(name);
  if (it == kNames.end()) return std::nullopt;
  return it->second;
}

std::string host_platform() {
#if defined(__x86_64__)
  return "linux/amd64";
#elif defined(__aarch64__)
  return "linux/arm64";
#elif defined(__riscv) && __riscv_xlen == 64
  return "linux/riscv64";
#else
  return "linux/unknown";
#endif
}

std::string effective_pull_policy(const Service& s) {
  std::string after = extra_string(s, "pull_refresh_after");
  auto d = after.empty() ? std::nullopt : parse_duration(after);
  if (!d || (!s.pull_policy.empty() && s.pull_policy != "refresh" && s.pull_policy != "missing"))
    return s.pull_policy;
  return "every_" +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*d).count()) + "s";
}

std::string effective_restart(const Service& s) {
  auto deploy = s.extra.find("deploy");
  if (deploy == s.extra.end() || !deploy->is_object() || !deploy->contains("restart_policy"))
    return s.restart;
  const auto& p = (*deploy)["restart_policy"];
  std::string condition = p.value("condition", "any");  // compose's default
  int64_t attempts = p.contains("max_attempts") && p["max_attempts"].is_number_integer()
                         ? p["max_attempts"].get<int64_t>()
                         : 0;
  if (condition == "none") return "no";
  if (condition == "on-failure")
    return attempts > 0 ? "on-failure:" + std::to_string(attempts) : "on-failure";
  // "any" restarts whatever the exit code; with max_attempts it stops after that many.
  return attempts > 0 ? "any:" + std::to_string(attempts) : "always";
}

void check_service_fields(const Service& s, Diagnostics& diag) {
  check_platform(s, diag);
  check_runtime(s, diag);
  check_ulimits(s, diag);
  check_sysctls(s, diag);
  check_replicas(s, diag);
  check_hooks(s, diag);
  check_namespaces(s, diag);
  check_pull_refresh(s, diag);
}

}  // namespace stack::spec
