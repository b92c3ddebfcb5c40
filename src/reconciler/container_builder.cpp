// From a service of the stack file and its image to what the engine runs: the command,
// environment, user, mounts and limits, with compose's rules for combining the image's
// defaults with the service's overrides. Reads the image's files; changes nothing.
#include "reconciler/container_builder.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include "common/files.h"
#include "spec/loader.h"

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

// A host port the kernel considers free now, for a `ports:` entry without one ("80").
Result<int> ephemeral_port(bool udp) {
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

}  // namespace

Result<RuntimeRecord> build_runtime(const Paths& paths, const spec::Stack& stack,
                                    const spec::Service& svc, int number, const fs::Image& image) {
  RuntimeRecord r;
  auto& s = r.spec;
  s.name = planner::container_name(stack.name, svc.name, number);
  s.cgroup = paths.cgroup_parent() + "/" + stack.name + "/" + s.name;
  s.dir = paths.root / "containers" / s.name;
  s.layers = image.layers;
  s.hostname = svc.hostname.empty() ? spec::default_hostname(s.name) : svc.hostname;

  // compose: an entrypoint set by the service discards the image's command too.
  const auto& ic = image.config;
  std::vector<std::string> entrypoint = svc.entrypoint ? *svc.entrypoint : ic.entrypoint;
  std::vector<std::string> command =
      svc.command ? *svc.command : (svc.entrypoint ? std::vector<std::string>{} : ic.cmd);
  s.process.argv = entrypoint;
  s.process.argv.insert(s.process.argv.end(), command.begin(), command.end());
  if (s.process.argv.empty())
    return fail(svc.pos.str() + ": service \"" + svc.name +
                "\" has no command: the image defines none and the stack file sets none");
  s.process.env = merge_env(ic.env, svc.environment, s.hostname);
  s.process.cwd = !svc.working_dir.empty() ? svc.working_dir
                  : !ic.working_dir.empty() ? ic.working_dir
                                            : "/";
  r.user = !svc.user.empty() ? svc.user : ic.user;
  if (auto u = engine::resolve_user(r.user, image.layers, s.process); !u)
    return fail(u.error().wrap(svc.pos.str() + ": service \"" + svc.name + "\""));
  s.process.capabilities = engine::default_capabilities();

  for (const auto& m : svc.volumes) {
    // compose creates a missing host directory of a short-syntax bind.
    if (::access(m.source.c_str(), F_OK) != 0)
      if (auto made = make_dirs(m.source); !made)
        return fail(made.error().wrap(m.pos.str() + ": bind source"));
    s.mounts.push_back({m.source, m.target, m.read_only});
  }
  s.limits.memory_bytes = svc.limits.memory_bytes;
  s.limits.cpus = svc.limits.cpus;
  s.limits.cpu_shares = svc.limits.cpu_shares;
  s.limits.pids = svc.limits.pids;
  s.log_max_size = svc.logging.max_size_bytes;
  s.log_max_files = svc.logging.max_files;
  s.hosts = "127.0.0.1\tlocalhost " + s.hostname +
            "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& h : svc.extra_hosts) s.hosts += h.ip + "\t" + h.host + "\n";

  r.project = stack.name;
  r.service = svc.name;
  r.dns_search = svc.dns_search;
  r.dns_opt = svc.dns_opt;
  if (svc.network_mode == "none") {
    r.network_mode = "none";
  } else if (svc.network_mode == "host") {
    r.network_mode = "host";
    s.host_network = true;
  } else if (svc.network_mode.empty() || svc.network_mode == "bridge" ||
             svc.network_mode == "default") {
    r.network_mode = "bridge";
    for (const auto& a : svc.networks)
      r.networks.push_back({stack.name + "_" + a.network, a.aliases, a.ipv4_address});
    if (svc.networks.empty()) r.networks.push_back({stack.name + "_default", {}, ""});
  } else if (svc.network_mode.rfind("service:", 0) == 0) {
    r.network_mode = "service";
    r.network_service = svc.network_mode.substr(8);
  } else {
    return fail(svc.pos.str() + ": service \"" + svc.name + "\": network_mode " +
                svc.network_mode + " is not supported yet");
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
    } else {
      auto port = ephemeral_port(p.protocol == "udp");
      if (!port) return fail(port.error().wrap(p.pos.str()));
      out.host_port = *port;
    }
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
  if (svc.healthcheck && !svc.healthcheck->disable && !svc.healthcheck->test.empty()) {
    const auto& h = *svc.healthcheck;
    if (h.test[0] == "CMD") r.health.argv.assign(h.test.begin() + 1, h.test.end());
    else if (h.test[0] == "CMD-SHELL" && h.test.size() > 1) r.health.argv = {"/bin/sh", "-c", h.test[1]};
    r.health.interval = h.interval;
    r.health.timeout = h.timeout;
    r.health.start_period = h.start_period;
    r.health.start_interval = h.start_interval;
    r.health.retries = h.retries;
  }
  // x-stack: {restart_on_unhealthy: false} keeps compose's behaviour (health only reported).
  if (svc.x_stack.is_object() && svc.x_stack.contains("restart_on_unhealthy") &&
      svc.x_stack["restart_on_unhealthy"].is_boolean())
    r.restart_on_unhealthy = svc.x_stack["restart_on_unhealthy"].get<bool>();
  return r;
}

std::string Paths::cgroup_parent() const {
  if (root == "/var/lib/stack") return "stack";
  uint64_t h = 1469598103934665603ull;  // FNV-1a: short, stable across builds
  for (unsigned char c : root.lexically_normal().string()) h = (h ^ c) * 1099511628211ull;
  char buf[24];
  std::snprintf(buf, sizeof buf, "stack/i-%08x", static_cast<unsigned>(h ^ (h >> 32)));
  return buf;
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
