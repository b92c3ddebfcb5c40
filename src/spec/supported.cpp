// check_supported(): which fields of a loaded stack the engine implements today. ONE table,
// kImplemented: a key path is supported when a pattern names it ("*" is one path segment,
// a trailing ".**" is everything below). A pattern may carry a check of the values under it
// for what the key alone does not say (bind mounts only, ...). Anything else written in the
// file is reported once, at its topmost unsupported key. Extending the engine: add a line.
#include <algorithm>
#include <functional>
#include <map>
#include <tuple>

#include "spec/diagnostics.h"
#include "spec/loader.h"
#include "spec/validate.h"
#include "spec/service_fields.h"
#include "spec/network_fields.h"
#include "spec/security_fields.h"
#include "spec/log_options.h"

namespace stack::spec {
namespace {

// Reports "not supported yet: WHAT" at POS.
using Report = std::function<void(const SourcePos& pos, const std::string& what)>;
using ValueCheck = std::function<void(const Service& s, const Report& report)>;

struct Implemented {
  std::string pattern;
  ValueCheck check;  // may be empty
};

// Mounts of every kind but npipe (Windows) and cluster (Swarm). SELinux relabelling (z, Z) is accepted: the reconciler says once that it does
// nothing (no SELinux labels are set on this host).
void supported_mounts(const Service& s, const Report& report) {
  for (const Mount& m : s.volumes) {
    std::string where = "services." + s.name + ".volumes";
    if (m.type != "bind" && m.type != "volume" && m.type != "tmpfs" && m.type != "image")
      report(m.pos, where + " (mount type " + m.type + ")");
  }
}

// A named volume's driver: only the local one (the driver's options as mount(8) takes them).
void local_volume_drivers(const Stack& stack, const Report& report) {
  for (const Volume& v : stack.volumes)
    if (!v.external && v.driver != "local" && !v.driver.empty())
      report(v.pos, "volumes." + v.key + ".driver " + v.driver + " (only local)");
}

// A provider service runs before every network and container of its `up` (reconciler/
// providers.h), so it may depend on other providers only; a container it needed would not
// exist yet.
void provider_dependencies(const Stack& stack, const Report& report) {
  auto provider = [&](const std::string& name) {
    const Service* s = stack.find(name);
    return s != nullptr && s->extra.contains("provider");
  };
  for (const Service& s : stack.services) {
    if (!s.extra.contains("provider")) continue;
    for (const Dependency& d : s.dependencies)
      if (!provider(d.service))
        report(d.pos.line > 0 ? d.pos : s.pos,
               "services." + s.name + ".depends_on " + d.service +
                   " (a provider service depending on a container service: providers run "
                   "before any container)");
  }
}

// Secrets and configs come from a file, a variable or (configs) inline content; an external
// one would need the Swarm store a single host does not have.
void file_sources(const Stack& stack, const Report& report) {
  for (const auto* list : {&stack.secrets, &stack.configs})
    for (const FileObject& f : *list)
      if (f.external)
        report(f.pos, std::string(list == &stack.secrets ? "secrets." : "configs.") + f.key +
                          ".external (no Swarm store on a single host: give a file instead)");
}

// Logging drivers stack refuses, with the reason: each sends to a vendor's cloud API with
// that vendor's credentials (stack ships no client for them), or runs on Windows only.
const char* refused_log_driver(const std::string& driver) {
  static const std::map<std::string, const char*> kRefused = {
      {"awslogs", "Amazon CloudWatch Logs' API with AWS credentials: stack ships no client for "
                  "it; use gelf, fluentd or syslog to a local collector that forwards there"},
      {"gcplogs", "Google Cloud Logging's API with a service account: stack ships no client for "
                  "it; use gelf, fluentd or syslog to a local collector that forwards there"},
      {"splunk", "Splunk's HTTP Event Collector with its token: stack ships no client for it; "
                 "use gelf, fluentd or syslog to a local collector that forwards there"},
      {"logentries", "the Logentries service with its token: stack ships no client for it; use "
                     "gelf, fluentd or syslog to a local collector that forwards there"},
      {"etwlogs", "Event Tracing for Windows: Windows only"},
  };
  auto it = kRefused.find(driver);
  return it == kRefused.end() ? nullptr : it->second;
}

// `logging`: a refused driver with its reason, or check_log_options (log_options.cpp).
void check_logging(const Service& s, Diagnostics& diag) {
  const char* reason = refused_log_driver(s.logging.driver);
  if (!reason) return check_log_options(s, diag);
  std::string key = "services." + s.name + ".logging.driver";
  SourcePos pos = s.pos;
  for (const KeyUse& k : s.keys)
    if (k.path == key) pos = k.pos;
  diag.error(pos, "refused: " + key + " " + s.logging.driver + " (" + reason + ")");
}

// What cannot work on a single Linux host, with the reason given to the user (a "refused:"
// error, never "not supported yet"). The key alone says it; the value does not matter.
struct Refused {
  std::string pattern;
  std::string reason;
};
const std::vector<Refused>& refused() {
  static const std::vector<Refused> table = {
      {"services.*.credential_spec", "a Windows gMSA credential"},
      {"services.*.cpu_count", "a Windows container setting; use cpus"},
      {"services.*.cpu_percent", "a Windows container setting; use cpus"},
      {"services.*.gpus", "GPU requests need a vendor runtime hook; stack runs its own engine only"},
      {"services.*.models.**",
       "Docker Model Runner serves models from Docker Desktop or its plugin; stack has neither"},
      {"models.**",
       "Docker Model Runner serves models from Docker Desktop or its plugin; stack has neither"},
      {"services.*.deploy.resources.reservations.devices",
       "GPU and device requests need a vendor runtime hook; use devices"},
      {"services.*.deploy.resources.reservations.generic_resources",
       "Swarm node resources; stack runs on one host"},
      {"services.*.deploy.placement",
       "placing replicas on nodes needs a cluster: stack daemon --cluster"},
      {"services.*.storage_opt",
       "a size quota needs overlay on xfs with pquota; the layers are not on one"},
      {"services.*.use_api_socket", "stack's API is not Docker's: there is no Docker socket"},
      {"services.*.build.secrets",
       "build secrets are not mounted into RUN: pass values with args, or COPY a file"},
      {"services.*.build.ssh", "no SSH agent is forwarded into RUN"},
      {"services.*.build.additional_contexts", "a build has one context, its directory"},
      {"services.*.build.entitlements", "RUN gets no extra privileges"},
      {"services.*.build.privileged", "RUN gets no extra privileges"},
      {"services.*.build.isolation", "a Windows container setting"},
      {"services.*.build.ulimits", "RUN runs with the engine's default limits"},
      {"secrets.*.driver", "a secret driver is a Swarm plugin; give a file or a variable"},
      {"secrets.*.driver_opts",
       "a secret driver is a Swarm plugin; give a file or a variable"},
      {"secrets.*.template_driver",
       "Swarm renders templates; stack mounts the content as it is"},
      {"configs.*.template_driver",
       "Swarm renders templates; stack mounts the content as it is"},
      {"volumes.*.driver_opts.*", "the local driver takes type, o and device, as mount(8)"},
      {"networks.*.ipam.options", "options of an IPAM plugin; stack's own IPAM takes none"},
  };
  return table;
}

// Where KEY (a full path such as "services.web.isolation") is written, else FALLBACK.
SourcePos key_pos(const std::vector<KeyUse>& keys, const std::string& key, SourcePos fallback) {
  for (const KeyUse& k : keys)
    if (k.path == key) return k.pos;
  return fallback;
}

std::string text_of(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Fields whose key runs but only some of whose values can: the others are refused with the
// reason (docker compose passes them to an engine that refuses them too, or to Swarm).
// CLUSTER: the stack goes to a cluster (a cluster overlay's addresses come from its own IPAM).
void refused_values(const Stack& stack, Diagnostics& diag, bool cluster) {
  auto refuse = [&](const SourcePos& pos, const std::string& what, const std::string& why) {
    diag.error(pos, "refused: " + what + " (" + why + ")");
  };
  for (const Network& n : stack.networks) {
    std::string at = "networks." + n.key + ".ipam";
    if (!n.ipam_driver.empty() && n.ipam_driver != "default")
      refuse(key_pos(stack.keys, at + ".driver", n.pos), at + ".driver " + n.ipam_driver,
             "an IPAM plugin; stack allocates the addresses itself: default");
    // aux_addresses: the per-host IPAM keeps them out of its pool (an IPv6 one, and the IPv4
    // address whose image it is); a cluster overlay's IPAM has none.
    if (!cluster || n.driver != "overlay" || n.driver_opts.count("peers")) continue;
    for (const IpamPool& p : n.ipam)
      if (!p.aux_addresses.empty())
        refuse(key_pos(stack.keys, at, n.pos),
               at + ".config aux_addresses on a cluster overlay network", "the cluster's IPAM hands out any address of the subnet, on every node: give "
               "the network a subnet that leaves those addresses outside");
  }
  for (const Service& s : stack.services) {
    std::string at = "services." + s.name;
    if (auto it = s.extra.find("isolation"); it != s.extra.end() && *it != "default")
      refuse(key_pos(s.keys, at + ".isolation", s.pos), at + ".isolation " + text_of(*it),
             "a Windows container setting; Linux runs only default");
    auto d = s.extra.find("deploy");
    if (d == s.extra.end() || !d->is_object() || !d->contains("endpoint_mode")) continue;
    const auto& mode = (*d)["endpoint_mode"];
    if (mode != "dnsrr")
      refuse(key_pos(s.keys, at + ".deploy.endpoint_mode", s.pos),
             at + ".deploy.endpoint_mode " + text_of(mode),
             "Swarm's virtual IP; stack's DNS answers with every replica's address: dnsrr");
  }
}

// deploy.mode: replicated is what stack does on one host; global (one replica on every node)
// needs the cluster's scheduler (src/cluster/scheduler.h).
void replicated_mode(const Service& s, const Report& report) {
  auto d = s.extra.find("deploy");
  if (d == s.extra.end() || !d->is_object() || !d->contains("mode")) return;
  const auto& m = (*d)["mode"];
  if (m != "replicated")
    report(s.pos, "services." + s.name + ".deploy.mode " +
                      (m.is_string() ? m.get<std::string>() : m.dump()) +
                      " (one replica per node needs a cluster: stack daemon --cluster)");
}

void supported_network_modes(const Service& s, const Report& report) {
  const std::string& m = s.network_mode;
  bool service = m.rfind("service:", 0) == 0 && m.size() > 8;
  bool container = m.rfind("container:", 0) == 0 && m.size() > 10;
  if (!m.empty() && m != "none" && m != "host" && m != "bridge" && m != "default" && !service &&
      !container)
    report(s.pos, "services." + s.name + ".network_mode " + m);
}

void supported_ports(const Service& s, const Report& report) {
  for (const Port& p : s.ports)
    if (p.protocol != "tcp" && p.protocol != "udp" && p.protocol != "sctp")
      report(p.pos, "services." + s.name + ".ports (protocol " + p.protocol + ")");
    // The kernel drops a packet with source ::1 on any device but lo (RFC 4291 2.5.3), and
    // IPv6 has no route_localnet: a DNAT from [::1] to a container cannot work.
    else if (p.host_ip == "::1" || p.host_ip == "0:0:0:0:0:0:0:1")
      report(p.pos, "services." + s.name + ".ports (host IP ::1: publish on :: or the host's "
                                           "IPv6 address instead)");
}

// security_opt: no-new-privileges and seccomp (unconfined, a profile file) in every form docker
// takes; the values are checked when the container is built. apparmor and label are
// check_lsm_options's (security_fields.cpp): a no-op or refused with the kernel's reason.
void supported_security_opts(const Service& s, const Report& report) {
  const auto it = s.extra.find("security_opt");
  if (it == s.extra.end() || !it->is_array()) return;
  for (const auto& v : *it) {
    if (!v.is_string()) continue;
    std::string o = v.get<std::string>();
    bool nnp = o == "no-new-privileges" || o == "no-new-privileges:true" ||
               o == "no-new-privileges:false" || o == "no-new-privileges=true" ||
               o == "no-new-privileges=false";
    bool seccomp = o.rfind("seccomp=", 0) == 0 || o.rfind("seccomp:", 0) == 0;
    if (nnp || seccomp || lsm_option(o)) continue;
    SourcePos pos = s.pos;
    for (const KeyUse& k : s.keys)
      if (k.path == "services." + s.name + ".security_opt") pos = k.pos;
    report(pos, "services." + s.name + ".security_opt " + o);
  }
}

// userns_mode: "host" opts a service out of the daemon's --userns-remap (docker's only value).
void host_userns_mode(const Service& s, const Report& report) {
  auto it = s.extra.find("userns_mode");
  if (it != s.extra.end() && *it != "host")
    report(s.pos, "services." + s.name + ".userns_mode " +
                      (it->is_string() ? it->get<std::string>() : it->dump()) + " (only host)");
}

// build: a local directory only; platforms only the host's (the engine runs what it builds).
void local_builds(const Service& s, const Report& report) {
  if (!s.build) return;
  const Build& b = *s.build;
  if (!b.context.empty() && b.context.front() != '/')
    report(b.pos, "services." + s.name + ".build.context " + b.context +
                      " (a remote context: clone it and give the directory)");
  auto platforms = b.extra.find("platforms");
  if (platforms == b.extra.end() || !platforms->is_array()) return;
  for (const auto& p : *platforms)
    if (p != "linux/amd64" && p != host_platform())
      report(b.pos, "services." + s.name + ".build.platforms " +
                        (p.is_string() ? p.get<std::string>() : p.dump()) +
                        " (only the host's, " + host_platform() + ")");
}

const std::vector<Implemented>& implemented() {
  static const std::vector<Implemented> table = {
      {"version", {}},
      {"name", {}},
      {"services", {}},
      {"services.*", {}},
      {"services.*.image", {}},
      {"services.*.pull_policy", {}},  // the plan's PullImage steps (planner/plan.cpp)
      {"services.*.pull_refresh_after", {}},  // with refresh: every_<duration> (service_fields)
      // Builds: the plan's BuildImage steps, run by stack's own build engine (src/build).
      {"services.*.build", local_builds},
      {"services.*.build.context", {}},
      {"services.*.build.dockerfile", {}},
      {"services.*.build.dockerfile_inline", {}},
      {"services.*.build.args.**", {}},
      {"services.*.build.target", {}},
      {"services.*.build.labels.**", {}},
      {"services.*.build.network", {}},
      {"services.*.build.no_cache", {}},
      {"services.*.build.pull", {}},
      {"services.*.build.tags", {}},
      {"services.*.build.shm_size", {}},
      {"services.*.build.extra_hosts.**", {}},
      {"services.*.build.platforms", {}},  // the host's only (local_builds)
      // Registry cache import/export: the local layer cache is always used, nothing exported.
      {"services.*.build.cache_from", {}},
      {"services.*.build.cache_to", {}},
      {"services.*.platform", {}},     // the platform pulled (fs/pull.h)
      {"services.*.command", {}},
      {"services.*.entrypoint", {}},
      {"services.*.environment.**", {}},
      {"services.*.env_file.**", {}},
      {"services.*.working_dir", {}},
      {"services.*.hostname", {}},
      {"services.*.user", {}},
      {"services.*.mem_limit", {}},
      {"services.*.cpus", {}},
      {"services.*.cpu_shares", {}},
      {"services.*.pids_limit", {}},
      {"services.*.deploy", {}},
      {"services.*.deploy.replicas", {}},
      {"services.*.deploy.resources", {}},
      {"services.*.deploy.resources.limits", {}},
      {"services.*.deploy.resources.limits.memory", {}},
      {"services.*.deploy.resources.limits.cpus", {}},
      {"services.*.deploy.resources.limits.pids", {}},
      {"services.*.deploy.update_config.**", {}},
      {"services.*.deploy.rollback_config.**", {}},
      {"services.*.scale", {}},
      {"services.*.stop_signal", {}},
      {"services.*.stop_grace_period", {}},
      // Storage: volumes, binds (bind.recursive every value), tmpfs, secrets and configs; a
      // mount's volume.labels on the volume it makes (reconciler/volumes.cpp).
      {"services.*.volumes", supported_mounts},
      {"services.*.volumes.**", {}},
      {"services.*.tmpfs", {}},
      {"services.*.read_only", {}},
      {"services.*.shm_size", {}},
      {"services.*.volumes_from", {}},  // services and container:NAME (reconciler/volumes.cpp)
      {"services.*.secrets.**", {}},
      {"services.*.configs.**", {}},
      {"volumes", {}},
      {"volumes.*", {}},
      {"volumes.*.driver", {}},
      {"volumes.*.driver_opts", {}},
      {"volumes.*.driver_opts.type", {}},
      {"volumes.*.driver_opts.o", {}},
      {"volumes.*.driver_opts.device", {}},
      {"volumes.*.external.**", {}},
      {"volumes.*.name", {}},
      {"volumes.*.labels.**", {}},
      {"secrets", {}},
      {"secrets.*", {}},
      {"secrets.*.file", {}},
      {"secrets.*.environment", {}},
      {"secrets.*.name", {}},
      {"secrets.*.external.**", {}},
      {"secrets.*.labels.**", {}},  // metadata, shown by `stack config` (no secret object)
      {"configs", {}},
      {"configs.*", {}},
      {"configs.*.file", {}},
      {"configs.*.environment", {}},
      {"configs.*.content", {}},
      {"configs.*.name", {}},
      {"configs.*.external.**", {}},
      {"configs.*.labels.**", {}},
      // json-file, local and none; syslog, journald, gelf and fluentd besides a local copy
      // (check_logging: the refused drivers with their reasons).
      {"services.*.logging", {}},
      {"services.*.logging.driver", {}},
      {"services.*.logging.options.**", {}},
      {"services.*.depends_on.**", {}},
      {"services.*.restart", {}},
      {"services.*.healthcheck.**", {}},
      // Networking: bridge, overlay, macvlan and ipvlan networks (drivers and their options are
      // checked in network_fields.cpp), DNS names, published ports.
      {"networks", {}},
      {"networks.*", {}},
      {"networks.*.driver", {}},
      {"networks.*.driver_opts.**", {}},
      {"networks.*.internal", {}},
      {"networks.*.enable_ipv6", {}},
      {"networks.*.enable_ipv4", {}},
      {"networks.*.ipam", {}},
      {"networks.*.ipam.config", {}},  // aux_addresses: not on a cluster overlay
      {"networks.*.ipam.driver", {}},  // default only (refused_values)
      {"networks.*.labels.**", {}},
      {"networks.*.name", {}},  // its name on the host, shared by every project naming it
      {"networks.*.external.**", {}},  // must exist (daemon_ops.cpp); never made or removed
      {"networks.*.attachable", {}},   // `stack run` containers join every network anyway
      {"services.*.networks", {}},
      {"services.*.networks.*", {}},
      {"services.*.networks.*.aliases", {}},
      {"services.*.networks.*.ipv4_address", {}},
      {"services.*.networks.*.ipv6_address", {}},
      {"services.*.networks.*.priority", {}},
      {"services.*.networks.*.gw_priority", {}},
      {"services.*.networks.*.mac_address", {}},
      {"services.*.networks.*.interface_name", {}},
      {"services.*.networks.*.link_local_ips", {}},  // more addresses on that interface
      {"services.*.networks.*.driver_opts.**", {}},
      {"services.*.mac_address", {}},
      {"services.*.links", {}},
      {"services.*.external_links", {}},
      {"services.*.dns", {}},
      {"services.*.network_mode", supported_network_modes},
      {"services.*.ports", supported_ports},
      {"services.*.expose", {}},
      {"services.*.extra_hosts.**", {}},
      {"services.*.dns_search", {}},
      {"services.*.dns_opt", {}},
      // Security: capabilities, privileged, no_new_privs.
      {"services.*.cap_add", {}},
      {"services.*.cap_drop", {}},
      {"services.*.privileged", {}},
      {"services.*.security_opt", supported_security_opts},
      {"services.*.userns_mode", host_userns_mode},
      // Process and resources (service_fields.cpp checks the values).
      {"services.*.container_name", {}},
      {"services.*.labels.**", {}},
      {"services.*.label_file", {}},
      {"services.*.annotations.**", {}},  // in the container's record: ps --format json
      {"services.*.tty", {}},         // a pty held by the init (engine/init/init.c)
      {"services.*.stdin_open", {}},  // a stdin pipe held by the init, for `stack attach`
      {"services.*.develop.**", {}},  // read by `stack watch` and `up --watch`, not by up
      {"services.*.attach", {}},      // the attached `up` leaves its output out (cli, up)
      {"services.*.init", {}},  // stack-init is always PID 1: true and false both run it
      {"services.*.runtime", {}},
      {"services.*.deploy.labels.**", {}},
      {"services.*.deploy.restart_policy.**", {}},
      {"services.*.deploy.resources.reservations", {}},
      {"services.*.deploy.resources.reservations.memory", {}},
      {"services.*.deploy.resources.reservations.cpus", {}},
      {"services.*.ulimits.**", {}},
      {"services.*.sysctls.**", {}},
      {"services.*.group_add", {}},
      {"services.*.devices", {}},
      {"services.*.device_cgroup_rules", {}},
      {"services.*.domainname", {}},
      {"services.*.oom_score_adj", {}},
      {"services.*.oom_kill_disable", {}},
      {"services.*.mem_reservation", {}},
      {"services.*.memswap_limit", {}},
      {"services.*.mem_swappiness", {}},
      {"services.*.cpu_quota", {}},
      {"services.*.cpu_period", {}},
      {"services.*.cpuset", {}},
      {"services.*.blkio_config.**", {}},
      {"services.*.uts", {}},  // host only (service_fields.cpp)
      {"services.*.ipc", {}},
      {"services.*.pid", {}},             // host, service:NAME (service_fields.cpp)
      {"services.*.cgroup", {}},          // host, private: a cgroup namespace
      {"services.*.cgroup_parent", {}},   // reconciler/service_fields.cpp
      {"services.*.cpu_rt_runtime", {}},  // refused at up where the kernel lacks RT groups
      {"services.*.cpu_rt_period", {}},
      {"services.*.deploy.mode", replicated_mode},
      {"services.*.deploy.endpoint_mode", {}},  // dnsrr only (refused_values)
      {"services.*.isolation", {}},             // default only (refused_values)
      {"services.*.post_start.**", {}},  // run through the exec path (reconciler/hooks.cpp)
      {"services.*.pre_stop.**", {}},
      // A provider's binary, run by an explicit up and down (reconciler/providers.h).
      {"services.*.provider.**", {}},
      // Handled entirely by the loader.
      {"services.*.profiles", {}},
      {"services.*.extends.**", {}},
  };
  return table;
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1)
    out.push_back(path.substr(start, dot - start));
  out.push_back(path.substr(start));
  return out;
}

bool matches(const std::vector<std::string>& pattern, const std::vector<std::string>& path) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == "**") return path.size() > i - 1;
    if (i >= path.size()) return false;
    if (pattern[i] != "*" && pattern[i] != path[i]) return false;
  }
  return pattern.size() == path.size();
}

const Implemented* find(const std::string& path) {
  static const auto patterns = [] {
    std::vector<std::vector<std::string>> out;
    for (const Implemented& i : implemented()) out.push_back(split(i.pattern));
    return out;
  }();
  std::vector<std::string> parts = split(path);
  for (size_t i = 0; i < patterns.size(); ++i)
    if (matches(patterns[i], parts)) return &implemented()[i];
  return nullptr;
}

// Service names may hold dots; the path is rebuilt as "services.*.rest" before matching.
std::string generic_path(const std::string& path, const std::string& service) {
  std::string prefix = "services." + service;
  if (path.rfind(prefix, 0) != 0) return path;
  return "services.*" + path.substr(prefix.size());
}

}  // namespace

Result<void> check_supported(const Stack& stack, bool cluster) {
  Diagnostics diag(stack.file_names);
  Report report = [&](const SourcePos& pos, const std::string& what) {
    diag.error(pos, "not supported yet: " + what);
  };
  static const auto refused_patterns = [] {
    std::vector<std::vector<std::string>> out;
    for (const Refused& r : refused()) out.push_back(split(r.pattern));
    return out;
  }();
  auto walk = [&](const std::vector<KeyUse>& keys, const std::string& service) {
    std::vector<std::string> reported;  // report the topmost unsupported key only
    for (const KeyUse& k : keys) {
      bool under = std::any_of(reported.begin(), reported.end(), [&](const std::string& r) {
        return k.path.rfind(r + ".", 0) == 0;
      });
      std::string path = generic_path(k.path, service);
      if (under || find(path) != nullptr) continue;
      // The cluster's scheduler reads them (cluster/placement.cpp checks their values).
      if (cluster && (path == "services.*.deploy.placement" ||
                      path.rfind("services.*.deploy.placement.", 0) == 0))
        continue;
      reported.push_back(k.path);
      auto parts = split(path);
      size_t i = 0;
      while (i < refused_patterns.size() && !matches(refused_patterns[i], parts)) i++;
      if (i < refused_patterns.size())
        diag.error(k.pos, "refused: " + k.path + " (" + refused()[i].reason + ")");
      else
        report(k.pos, k.path);
    }
  };
  walk(stack.keys, "");
  const HostLsms lsms = host_lsms();
  local_volume_drivers(stack, report);
  provider_dependencies(stack, report);
  file_sources(stack, report);
  check_stack_fields(stack, diag);
  refused_values(stack, diag, cluster);
  check_network_fields(stack, diag);
  for (const Service& s : stack.services) {
    walk(s.keys, s.name);
    check_service_fields(s, diag);
    check_lsm_options(s, lsms, diag);
    check_logging(s, diag);
    for (const Implemented& i : implemented()) {
      if (!i.check) continue;
      std::string key = i.pattern.substr(std::string("services.*.").size());
      if (key.size() > 3 && key.compare(key.size() - 3, 3, ".**") == 0) key.resize(key.size() - 3);
      bool present = std::any_of(s.keys.begin(), s.keys.end(), [&](const KeyUse& k) {
        return k.path == "services." + s.name + "." + key;
      });
      if (!present) continue;
      if (cluster && i.pattern == "services.*.deploy.mode") continue;  // global: one per node
      i.check(s, report);
    }
  }
  check_host_ports(diag, stack);
  if (diag.has_errors()) return fail(diag.to_error());
  return {};
}

}  // namespace stack::spec
