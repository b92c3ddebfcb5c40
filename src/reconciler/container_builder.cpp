// From a service of the stack file and its image to what the engine runs: the command,
// environment, user, mounts and limits, with compose's rules for combining the image's
// defaults with the service's overrides. Reads the image's files; changes nothing.
#include "reconciler/container_builder.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>

#include "common/files.h"
#include "common/instance.h"
#include "common/log.h"
#include "reconciler/volumes.h"
#include "reconciler/service_fields.h"
#include "spec/loader.h"
#include "spec/network_fields.h"
#include "spec/security_fields.h"

namespace stack::reconciler {

namespace {

const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Image env first, then the service's: a service value replaces the image's of the same key.
std::vector<std::string> merge_env(const std::vector<std::string>& image_env,
                                   const std::map<std::string, std::string>& service_env,
                                   const std::string& hostname) {
  std::vector<std::string> keys;
  std::map<std::string, std::string> values;
  auto set = [&](const std::string& k, const std::string& v) {
    if (!values.count(k)) keys.push_back(k);
    values[k] = v;
  };
  set("PATH", std::string(kDefaultPath + 5));
  set("HOSTNAME", hostname);
  for (const auto& kv : image_env) {
    auto eq = kv.find('=');
    set(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  for (const auto& [k, v] : service_env) set(k, v);
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(k + "=" + values[k]);
  return out;
}

// Where KEY of the service was written ("cap_add"), for errors; the service's own position
// when it is not in the file.
std::string key_pos(const spec::Service& svc, const std::string& key) {
  for (const auto& k : svc.keys)
    if (k.path == "services." + svc.name + "." + key) return k.pos.str();
  return svc.pos.str();
}

// Capabilities, privileged, no_new_privs and seccomp, as Docker maps them. A seccomp profile
// file is read now, relative to the project directory, and kept in the record.
Result<void> security(const spec::Stack& stack, const spec::Service& svc,
                      engine::ContainerSpec& s) {
  auto where = [&](const std::string& key) {
    return key_pos(svc, key) + ": service \"" + svc.name + "\"";
  };
  auto caps = engine::capabilities_from(svc.cap_add, svc.cap_drop);
  if (!caps) {
    bool in_add = caps.error().message.rfind("cap_add", 0) == 0;
    return fail(caps.error().wrap(where(in_add ? "cap_add" : "cap_drop")));
  }
  s.process.capabilities = svc.privileged ? engine::all_capabilities() : *caps;
  s.privileged = svc.privileged;
  std::vector<std::string> opts;
  if (auto it = svc.extra.find("security_opt"); it != svc.extra.end() && it->is_array())
    for (const auto& o : *it)
      if (o.is_string()) opts.push_back(o.get<std::string>());
  for (const auto& o : opts)
    if (spec::lsm_noop_option(o)) {
      static bool said = false;  // once per daemon: compose files carry these for other hosts
      if (!said)
        log::get("reconciler")
            ->warn("security_opt {} ignored: stack confines with namespaces, capabilities and "
                   "seccomp, and applies no AppArmor profile or SELinux label",
                   o);
      said = true;
    }
  auto nnp = engine::no_new_privileges_from(opts);
  if (!nnp) return fail(nnp.error().wrap(where("security_opt")));
  s.process.no_new_privs = *nnp;
  auto seccomp = engine::seccomp_from_security_opt(opts, stack.project_dir, s.process.capabilities);
  if (!seccomp) return fail(seccomp.error().wrap(where("security_opt")));
  s.process.seccomp = std::move(*seccomp);
  if (svc.privileged) s.process.seccomp = {engine::SeccompSpec::Mode::kUnconfined, "", 0};
  return {};
}

// The user namespace: the daemon's --userns-remap user, or the service's own
// (x-stack: {userns_remap: USER}), unless the service says userns_mode: host.
Result<void> user_namespace(const Paths& paths, const spec::Service& svc, RuntimeRecord& r) {
  std::string user = paths.userns_remap;
  if (svc.x_stack.is_object() && svc.x_stack.contains("userns_remap") &&
      svc.x_stack["userns_remap"].is_string())
    user = svc.x_stack["userns_remap"].get<std::string>();
  if (auto it = svc.extra.find("userns_mode"); it != svc.extra.end() && *it == "host") user.clear();
  if (user.empty()) return {};
  auto where = key_pos(svc, "userns_mode") + ": service \"" + svc.name + "\"";
  if (r.network_mode == "host" || r.network_mode == "service" || r.network_mode == "container")
    return fail(where + ": network_mode " + r.network_mode +
                " shares a network namespace a user namespace cannot own; add userns_mode: host");
  for (const char* ns : {"uts", "ipc", "pid"}) {
    auto it = svc.extra.find(ns);
    if (it == svc.extra.end() || !it->is_string()) continue;
    std::string v = it->get<std::string>();
    if (v == "host" || v.rfind("service:", 0) == 0 || v.rfind("container:", 0) == 0)
      return fail(key_pos(svc, ns) + ": service \"" + svc.name + "\": " + ns + ": " + v +
                  " shares a namespace a user namespace cannot own; add userns_mode: host");
  }
  auto ids = engine::subordinate_ids(user);
  if (!ids) return fail(ids.error().wrap(where));
  r.spec.userns = *ids;
  return {};
}

// The health check as compose has it: the service's; its test, when it gives none, and the
// whole check when the service has none, from the image's HEALTHCHECK (whose unset durations
// take docker's defaults). A test of NONE, or disable, turns it off.
model::HealthConfig health_of(const spec::Service& svc, const fs::ImageConfig& image) {
  model::HealthConfig out;
  if (svc.healthcheck && svc.healthcheck->disable) return out;
  std::vector<std::string> test;
  if (svc.healthcheck) {
    const auto& h = *svc.healthcheck;
    test = h.test;
    out.interval = h.interval;
    out.timeout = h.timeout;
    out.start_period = h.start_period;
    out.start_interval = h.start_interval;
    out.retries = h.retries;
  } else if (image.healthcheck) {
    const auto& h = *image.healthcheck;
    auto ms = [](int64_t ns, std::chrono::milliseconds def) {
      return ns > 0 ? std::chrono::milliseconds(ns / 1'000'000) : def;
    };
    out.interval = ms(h.interval_ns, out.interval);
    out.timeout = ms(h.timeout_ns, out.timeout);
    out.start_period = ms(h.start_period_ns, out.start_period);
    out.start_interval = ms(h.start_interval_ns, out.start_interval);
    if (h.retries > 0) out.retries = h.retries;
  }
  if (test.empty() && image.healthcheck) test = image.healthcheck->test;
  if (test.empty()) return out;
  if (test[0] == "CMD") out.argv.assign(test.begin() + 1, test.end());
  else if (test[0] == "CMD-SHELL" && test.size() > 1) out.argv = {"/bin/sh", "-c", test[1]};
  return out;
}

}  // namespace

Result<engine::ProcessSpec> build_process(const spec::Service& svc, const fs::Image& image,
                                          const std::string& hostname, std::string* user) {
  engine::ProcessSpec p;
  // compose: an entrypoint set by the service discards the image's command too.
  const auto& ic = image.config;
  std::vector<std::string> entrypoint = svc.entrypoint ? *svc.entrypoint : ic.entrypoint;
  std::vector<std::string> command =
      svc.command ? *svc.command : (svc.entrypoint ? std::vector<std::string>{} : ic.cmd);
  p.argv = entrypoint;
  p.argv.insert(p.argv.end(), command.begin(), command.end());
  if (p.argv.empty())
    return fail(svc.pos.str() + ": service \"" + svc.name +
                "\" has no command: the image defines none and the stack file sets none");
  p.env = merge_env(ic.env, svc.environment, hostname);
  p.cwd = !svc.working_dir.empty() ? svc.working_dir
          : !ic.working_dir.empty() ? ic.working_dir
                                    : "/";
  std::string name = !svc.user.empty() ? svc.user : ic.user;
  if (auto u = engine::resolve_user(name, image.layers, p); !u)
    return fail(u.error().wrap(svc.pos.str() + ": service \"" + svc.name + "\""));
  if (user) *user = name;
  return p;
}

Result<void> check_exec_limits(const spec::Service& svc, const engine::ProcessSpec& p) {
  // execve(2): MAX_ARG_STRLEN (32 pages) per string, and a quarter of the stack limit for all
  // strings and their pointers (ARG_MAX, 2 MiB under the usual 8 MiB RLIMIT_STACK).
  constexpr size_t kPerString = 32 * 4096, kTotal = 2 * 1024 * 1024;
  size_t total = 0, largest = 0;
  std::string largest_name;
  auto count = [&](const std::string& v, const char* kind) {
    total += v.size() + 1 + sizeof(char*);
    if (v.size() + 1 > largest) {
      largest = v.size() + 1;
      size_t shown = std::min<size_t>(v.find('='), 40);  // a variable's name, an argument's start
      largest_name = std::string(kind) + " " + v.substr(0, shown) +
                     (shown < v.size() && v[shown] != '=' ? "..." : "");
    }
  };
  for (const auto& a : p.argv) count(a, "argument");
  for (const auto& e : p.env) count(e, "variable");
  auto mib = [](size_t n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1024 * 1024));
    return std::string(buf);
  };
  std::string where = svc.pos.str() + ": service \"" + svc.name + "\": ";
  if (largest > kPerString)
    return fail(where + largest_name + " is " + mib(largest) +
                "; execve(2) takes at most 128 KiB per argument or variable");
  if (total > kTotal)
    return fail(where + "its command and environment are " + mib(total) +
                "; execve(2) takes at most 2 MiB in all (largest: " + largest_name + ", " +
                mib(largest) + ")");
  return {};
}

namespace {

// mac_address (the service's is its first network's), interface names, gw_priority, links,
// and external_links (spec/network_fields.cpp checked them).
void network_fields(const spec::Service& svc, RuntimeRecord& r) {
  for (size_t i = 0; i < svc.networks.size() && i < r.networks.size(); i++) {
    const auto& a = svc.networks[i];
    auto& j = r.networks[i];
    auto opt = [&](const char* key) {
      auto it = a.driver_opts.find(key);
      return it == a.driver_opts.end() ? std::string() : it->second;
    };
    j.mac_address = !a.mac_address.empty() ? a.mac_address : opt(spec::kEndpointMacOpt);
    j.interface_name = !a.interface_name.empty() ? a.interface_name : opt(spec::kEndpointIfnameOpt);
    j.gw_priority = a.gw_priority.value_or(0);
  }
  if (auto m = svc.extra.find("mac_address"); m != svc.extra.end() && m->is_string())
    r.networks.front().mac_address = m->get<std::string>();
  for (const auto& [alias, target] : spec::link_aliases(svc)) r.links[alias] = target;
}

}  // namespace

Result<RuntimeRecord> build_runtime(const Paths& paths, const spec::Stack& stack,
                                    const spec::Service& svc, int number, const fs::Image& image,
                                    const fs::ImageStore* images) {
  RuntimeRecord r;
  auto& s = r.spec;
  s.name = svc.container_name.empty() ? planner::container_name(stack.name, svc.name, number)
                                      : svc.container_name;
  s.cgroup = paths.cgroup_parent() + "/" + stack.name + "/" + s.name;
  s.dir = paths.root / "containers" / s.name;
  s.layers = image.layers;
  s.hostname = svc.hostname.empty() ? spec::default_hostname(s.name) : svc.hostname;

  auto process = build_process(svc, image, s.hostname, &r.user);
  if (!process) return fail(process.error());
  s.process = std::move(*process);
  const auto& ic = image.config;
  if (auto sec = security(stack, svc, s); !sec) return fail(sec.error());

  // Volumes, binds, tmpfs, secrets (volumes.cpp), and an anonymous volume for each of the
  // image's VOLUME paths the service does not mount otherwise. A missing bind source is made
  // by the CreateContainer step, as compose makes it.
  if (auto st = build_storage(paths, stack, svc, r, ic.volumes, images); !st) return fail(st.error());
  s.limits.memory_bytes = svc.limits.memory_bytes;
  s.limits.cpus = svc.limits.cpus;
  s.limits.cpu_shares = svc.limits.cpu_shares;
  s.limits.pids = svc.limits.pids;
  s.log_max_size = svc.logging.max_size_set ? svc.logging.max_size_bytes : paths.log_max_size;
  s.log_max_files = svc.logging.max_files_set ? svc.logging.max_files : paths.log_max_files;
  s.log_none = svc.logging.driver == "none";
  s.hosts = "127.0.0.1\tlocalhost " + s.hostname +
            "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& h : svc.extra_hosts) s.hosts += h.ip + "\t" + h.host + "\n";

  r.project = stack.name;
  r.service = svc.name;
  r.dns_search = svc.dns_search;
  r.dns_opt = svc.dns_opt;
  r.dns = svc.dns;
  if (svc.network_mode == "none") {
    r.network_mode = "none";
  } else if (svc.network_mode == "host") {
    r.network_mode = "host";
    s.host_network = true;
  } else if (svc.network_mode.empty() || svc.network_mode == "bridge" ||
             svc.network_mode == "default") {
    r.network_mode = "bridge";
    for (const auto& a : svc.networks) {
      r.networks.push_back({spec::network_name(stack, a.network), a.aliases, a.ipv4_address});
      r.networks.back().ipv6_address = a.ipv6_address;
      r.networks.back().link_local_ips = a.link_local_ips;
    }
    if (svc.networks.empty())
      r.networks.push_back({spec::network_name(stack, "default"), {}, ""});
    network_fields(svc, r);
  } else if (svc.network_mode.rfind("service:", 0) == 0) {
    r.network_mode = "service";
    r.network_service = svc.network_mode.substr(8);
  } else if (svc.network_mode.rfind("container:", 0) == 0 && svc.network_mode.size() > 10) {
    r.network_mode = "container";
    r.join_container = svc.network_mode.substr(10);
  } else {
    // (check_supported refuses it first: a stack loaded without it gets this.)
    return fail(svc.pos.str() + ": service \"" + svc.name + "\": network_mode " +
                svc.network_mode + ": not none, host, bridge, service:NAME or container:NAME");
  }
  for (const auto& p : svc.ports) {
    PublishedPort out;
    out.host_ip = p.host_ip;
    out.protocol = p.protocol;
    out.container_port = p.target;
    if (p.published_start) {
      out.host_port = *p.published_start;
      if (p.published_end && *p.published_end != *p.published_start)
        out.host_port_end = *p.published_end;
    }  // else 0: a free host port, chosen by the CreateContainer step
    if (r.network_mode != "bridge") continue;  // host: the port is the host's already
    r.ports.push_back(out);
  }

  std::string stop = !ic.stop_signal.empty() && svc.stop_signal == "SIGTERM" ? ic.stop_signal
                                                                             : svc.stop_signal;
  auto sig = parse_signal(stop);
  if (!sig) return fail(sig.error().wrap(svc.pos.str() + ": stop_signal"));
  r.stop_signal = *sig;
  r.stop_grace = svc.stop_grace_period;
  r.restart = svc.restart;
  r.health = health_of(svc, ic);
  // x-stack: {restart_on_unhealthy: false} keeps compose's behaviour (health only reported).
  if (svc.x_stack.is_object() && svc.x_stack.contains("restart_on_unhealthy") &&
      svc.x_stack["restart_on_unhealthy"].is_boolean())
    r.restart_on_unhealthy = svc.x_stack["restart_on_unhealthy"].get<bool>();
  if (auto ns = user_namespace(paths, svc, r); !ns) return fail(ns.error());
  if (auto f = apply_service_fields(stack, svc, image, r); !f) return fail(f.error());
  return r;
}

// A host port the kernel considers free now, for a `ports:` entry without one ("80").
Result<int> free_host_port(bool udp) {
  int fd = ::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  if (port <= 0) return fail("no free host port for a published port");
  return port;
}

std::string Paths::instance() const { return instance_id(root); }

std::string Paths::cgroup_parent() const {
  auto id = instance();
  return id.empty() ? "stack" : "stack/i-" + id;
}

Result<int> parse_signal(std::string_view name) {
  static const std::map<std::string, int, std::less<>> kSignals = {
      {"HUP", 1},   {"INT", 2},   {"QUIT", 3},   {"ILL", 4},   {"TRAP", 5},  {"ABRT", 6},
      {"BUS", 7},   {"FPE", 8},   {"KILL", 9},   {"USR1", 10}, {"SEGV", 11}, {"USR2", 12},
      {"PIPE", 13}, {"ALRM", 14}, {"TERM", 15},  {"CHLD", 17}, {"CONT", 18}, {"STOP", 19},
      {"TSTP", 20}, {"TTIN", 21}, {"TTOU", 22},  {"URG", 23},  {"XCPU", 24}, {"XFSZ", 25},
      {"VTALRM", 26}, {"PROF", 27}, {"WINCH", 28}, {"IO", 29}, {"PWR", 30}, {"SYS", 31}};
  std::string_view n = name;
  if (n.substr(0, 3) == "SIG") n.remove_prefix(3);
  if (auto it = kSignals.find(n); it != kSignals.end()) return it->second;
  int v = 0;
  for (char c : n) {
    if (c < '0' || c > '9' || v > 64) return fail("unknown signal \"" + std::string(name) + "\"");
    v = v * 10 + (c - '0');
  }
  if (n.empty() || v < 1 || v > 64) return fail("unknown signal \"" + std::string(name) + "\"");
  return v;
}

}  // namespace stack::reconciler
