// The JSON form a runtime record is stored in (sealed: it holds the environment); decoded once,
// here, into the typed record every layer above uses. nlohmann/json stays inside this file.
#include "state/runtime_codec.h"

#include <nlohmann/json.hpp>

namespace stack::state {

using model::RuntimeRecord;

using nlohmann::json;

namespace {

using Mode = model::SeccompSpec::Mode;

// The seccomp profile a container runs with: its mode and, for a file, the profile's text
// (the file may change or go; the container keeps what it was created with).
json seccomp_json(const model::SeccompSpec& s) {
  const char* mode = s.mode == Mode::kUnconfined ? "unconfined"
                     : s.mode == Mode::kProfile  ? "profile"
                                                 : "default";
  json j = {{"mode", mode}};
  if (s.mode == Mode::kProfile) j["profile"] = s.profile_json;
  return j;
}

// A record made before seccomp existed gets Docker's default profile.
model::SeccompSpec seccomp_from(const json& process) {
  model::SeccompSpec s;
  if (!process.contains("seccomp")) return s;
  std::string mode = process["seccomp"].value("mode", "default");
  if (mode == "unconfined") s.mode = Mode::kUnconfined;
  if (mode == "profile") {
    s.mode = Mode::kProfile;
    s.profile_json = process["seccomp"].value("profile", "");
  }
  return s;
}

}  // namespace

std::string encode_runtime(const RuntimeRecord& r) {
  const auto& s = r.spec;
  json mounts = json::array();
  for (const auto& m : s.mounts)
    mounts.push_back({{"source", m.source.string()}, {"target", m.target}, {"ro", m.read_only}});
  json layers = json::array();
  for (const auto& l : s.layers) layers.push_back(l.string());
  json limits = json::object();
  if (s.limits.memory_bytes) limits["memory"] = *s.limits.memory_bytes;
  if (s.limits.cpus) limits["cpus"] = *s.limits.cpus;
  if (s.limits.cpu_shares) limits["cpu_shares"] = *s.limits.cpu_shares;
  if (s.limits.pids) limits["pids"] = *s.limits.pids;
  const auto& p = s.process;
  json j = {
      {"name", s.name},
      {"cgroup", s.cgroup},
      {"dir", s.dir.string()},
      {"layers", layers},
      {"hostname", s.hostname},
      {"process",
       {{"argv", p.argv},
        {"env", p.env},
        {"cwd", p.cwd},
        {"uid", p.uid},
        {"gid", p.gid},
        {"groups", p.groups},
        {"capabilities", p.capabilities},
        {"no_new_privs", p.no_new_privs},
        {"seccomp", seccomp_json(p.seccomp)}}},
      {"mounts", mounts},
      {"limits", limits},
      {"log_max_size", s.log_max_size},
      {"log_max_files", s.log_max_files},
      {"hosts", s.hosts},
      {"stop_signal", r.stop_signal},
      {"stop_grace_ms", r.stop_grace.count()},
      {"user", r.user},
      {"restart", r.restart},
      {"health",
       {{"argv", r.health.argv},
        {"interval_ms", r.health.interval.count()},
        {"timeout_ms", r.health.timeout.count()},
        {"start_period_ms", r.health.start_period.count()},
        {"start_interval_ms", r.health.start_interval.count()},
        {"retries", r.health.retries}}},
      {"restart_on_unhealthy", r.restart_on_unhealthy},
      {"fields", r.fields},
      {"resolv_conf", s.resolv_conf},
      {"host_network", s.host_network},
      {"privileged", s.privileged},
      {"project", r.project},
      {"service", r.service},
      {"network_mode", r.network_mode},
      {"network_service", r.network_service},
      {"config_hash", r.config_hash},
      {"image", r.image},
      {"image_id", r.image_id},
  };
  json nets = json::array();
  for (const auto& n : r.networks)
    nets.push_back({{"network", n.network},
                    {"aliases", n.aliases},
                    {"ipv4_address", n.ipv4_address},
                    {"config_hash", n.config_hash}});
  j["networks"] = nets;
  json ports = json::array();
  for (const auto& p : r.ports)
    ports.push_back({{"host_ip", p.host_ip},
                     {"host_port", p.host_port},
                     {"host_port_end", p.host_port_end},
                     {"protocol", p.protocol},
                     {"container_port", p.container_port}});
  j["ports"] = ports;
  if (s.userns)
    j["userns"] = {{"uid_base", s.userns->uid_base},
                   {"gid_base", s.userns->gid_base},
                   {"count", s.userns->count}};
  j["dns_search"] = r.dns_search;
  j["dns_opt"] = r.dns_opt;
  return j.dump();
}

Result<RuntimeRecord> decode_runtime(const std::string& text) {
  try {
    json j = json::parse(text);
    RuntimeRecord r;
    auto& s = r.spec;
    s.name = j.at("name");
    s.cgroup = j.at("cgroup");
    s.dir = j.at("dir").get<std::string>();
    for (const auto& l : j.at("layers")) s.layers.emplace_back(l.get<std::string>());
    s.hostname = j.at("hostname");
    const auto& p = j.at("process");
    s.process.argv = p.at("argv").get<std::vector<std::string>>();
    s.process.env = p.at("env").get<std::vector<std::string>>();
    s.process.cwd = p.at("cwd");
    s.process.uid = p.at("uid");
    s.process.gid = p.at("gid");
    s.process.groups = p.at("groups").get<std::vector<gid_t>>();
    s.process.capabilities = p.at("capabilities");
    s.process.no_new_privs = p.value("no_new_privs", true);
    s.process.seccomp = seccomp_from(p);
    for (const auto& m : j.at("mounts"))
      s.mounts.push_back({m.at("source").get<std::string>(), m.at("target"), m.at("ro")});
    const auto& l = j.at("limits");
    if (l.contains("memory")) s.limits.memory_bytes = l["memory"].get<int64_t>();
    if (l.contains("cpus")) s.limits.cpus = l["cpus"].get<double>();
    if (l.contains("cpu_shares")) s.limits.cpu_shares = l["cpu_shares"].get<int64_t>();
    if (l.contains("pids")) s.limits.pids = l["pids"].get<int64_t>();
    s.log_max_size = j.at("log_max_size");
    s.log_max_files = j.at("log_max_files");
    s.hosts = j.at("hosts");
    r.stop_signal = j.at("stop_signal");
    r.stop_grace = std::chrono::milliseconds(j.at("stop_grace_ms").get<int64_t>());
    r.user = j.value("user", "");
    r.restart = j.value("restart", "no");
    if (j.contains("health")) {
      const auto& h = j["health"];
      using ms = std::chrono::milliseconds;
      r.health.argv = h.at("argv").get<std::vector<std::string>>();
      r.health.interval = ms(h.at("interval_ms").get<int64_t>());
      r.health.timeout = ms(h.at("timeout_ms").get<int64_t>());
      r.health.start_period = ms(h.at("start_period_ms").get<int64_t>());
      r.health.start_interval = ms(h.at("start_interval_ms").get<int64_t>());
      r.health.retries = h.at("retries");
    }
    r.restart_on_unhealthy = j.value("restart_on_unhealthy", true);
    if (j.contains("fields")) r.fields = j["fields"].get<std::map<std::string, std::string>>();
    s.resolv_conf = j.value("resolv_conf", "");
    s.host_network = j.value("host_network", false);
    s.privileged = j.value("privileged", false);
    if (j.contains("userns"))
      s.userns = model::IdMapping{j["userns"].at("uid_base"), j["userns"].at("gid_base"),
                                   j["userns"].at("count")};
    r.project = j.value("project", "");
    r.service = j.value("service", "");
    r.network_mode = j.value("network_mode", "none");
    r.network_service = j.value("network_service", "");
    r.config_hash = j.value("config_hash", "");
    r.image = j.value("image", "");
    r.image_id = j.value("image_id", "");
    if (j.contains("networks"))
      for (const auto& n : j["networks"])
        r.networks.push_back({n.at("network"), n.at("aliases").get<std::vector<std::string>>(),
                              n.at("ipv4_address"), n.value("config_hash", "")});
    if (j.contains("dns_search")) r.dns_search = j["dns_search"].get<std::vector<std::string>>();
    if (j.contains("dns_opt")) r.dns_opt = j["dns_opt"].get<std::vector<std::string>>();
    if (j.contains("ports"))
      for (const auto& p : j["ports"])
        r.ports.push_back({p.at("host_ip"), p.at("host_port"), p.at("host_port_end"),
                           p.at("protocol"), p.at("container_port")});
    return r;
  } catch (const json::exception& e) {
    return fail(std::string("corrupt runtime record: ") + e.what());
  }
}

}  // namespace stack::state
