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

// A hook's whole process (post_start, pre_stop): what exec needs without the stack file.
json hook_json(const model::ProcessSpec& p) {
  json rl = json::array();
  for (const auto& x : p.rlimits) rl.push_back({x.resource, x.soft, x.hard});
  return {{"argv", p.argv},         {"env", p.env},
          {"cwd", p.cwd},           {"uid", p.uid},
          {"gid", p.gid},           {"groups", p.groups},
          {"capabilities", p.capabilities}, {"no_new_privs", p.no_new_privs},
          {"seccomp", seccomp_json(p.seccomp)}, {"rlimits", rl}};
}

model::ProcessSpec hook_from(const json& j) {
  model::ProcessSpec p;
  p.argv = j.at("argv").get<std::vector<std::string>>();
  p.env = j.at("env").get<std::vector<std::string>>();
  p.cwd = j.at("cwd");
  p.uid = j.at("uid");
  p.gid = j.at("gid");
  p.groups = j.at("groups").get<std::vector<gid_t>>();
  p.capabilities = j.at("capabilities");
  p.no_new_privs = j.value("no_new_privs", true);
  p.seccomp = seccomp_from(j);
  for (const auto& x : j.at("rlimits")) p.rlimits.push_back({x.at(0), x.at(1), x.at(2)});
  return p;
}

// Process and resource fields of a service (ulimits, sysctls, cgroup knobs, labels, ...):
// written only when set, so records of containers made before them still read.
void encode_service_fields(const RuntimeRecord& r, json& j) {
  const auto& s = r.spec;
  const auto& l = s.limits;
  json extra = json::object();
  if (l.memory_reservation) extra["memory_reservation"] = *l.memory_reservation;
  if (l.memory_swap) extra["memory_swap"] = *l.memory_swap;
  if (l.swappiness) extra["swappiness"] = *l.swappiness;
  if (l.oom_kill_disable) extra["oom_kill_disable"] = true;
  if (l.cpu_quota) extra["cpu_quota"] = *l.cpu_quota;
  if (l.cpu_period) extra["cpu_period"] = *l.cpu_period;
  if (!l.cpuset_cpus.empty()) extra["cpuset_cpus"] = l.cpuset_cpus;
  if (l.cpu_rt_runtime) extra["cpu_rt_runtime"] = *l.cpu_rt_runtime;
  if (l.cpu_rt_period) extra["cpu_rt_period"] = *l.cpu_rt_period;
  if (l.blkio_weight) extra["blkio_weight"] = *l.blkio_weight;
  if (!l.blkio_device.empty()) extra["blkio_device"] = l.blkio_device;
  if (!extra.empty()) j["limits_more"] = extra;
  for (const auto* hooks : {&r.post_start, &r.pre_stop}) {
    if (hooks->empty()) continue;
    json list = json::array();
    for (const auto& h : *hooks) list.push_back(hook_json(h));
    j[hooks == &r.post_start ? "post_start" : "pre_stop"] = list;
  }
  if (!s.process.rlimits.empty()) {
    json rl = json::array();
    for (const auto& x : s.process.rlimits) rl.push_back({x.resource, x.soft, x.hard});
    j["rlimits"] = rl;
  }
  if (!s.sysctls.empty()) j["sysctls"] = s.sysctls;
  if (!s.domainname.empty()) j["domainname"] = s.domainname;
  if (s.oom_score_adj) j["oom_score_adj"] = *s.oom_score_adj;
  if (r.restart_delay.count()) j["restart_delay_ms"] = r.restart_delay.count();
  if (r.restart_window.count()) j["restart_window_ms"] = r.restart_window.count();
  if (!r.labels.empty()) j["labels"] = r.labels;
  if (!r.annotations.empty()) j["annotations"] = r.annotations;
  if (!r.volume_labels.empty()) j["volume_labels"] = r.volume_labels;
  if (r.log_driver != "json-file") j["log_driver"] = r.log_driver;
  if (!r.log_options.empty()) j["log_options"] = r.log_options;
  if (!s.devices.empty()) {
    json d = json::array();
    for (const auto& x : s.devices)
      d.push_back({x.path, std::string(1, x.type), x.major, x.minor, x.mode});
    j["devices"] = d;
  }
  if (!s.device_rules.empty()) {
    json d = json::array();
    for (const auto& x : s.device_rules)
      d.push_back({std::string(1, x.type), x.major, x.minor, x.access});
    j["device_rules"] = d;
  }
}

void decode_service_fields(const json& j, RuntimeRecord& r) {
  auto& s = r.spec;
  auto& l = s.limits;
  if (j.contains("limits_more")) {
    const auto& e = j["limits_more"];
    if (e.contains("memory_reservation")) l.memory_reservation = e["memory_reservation"];
    if (e.contains("memory_swap")) l.memory_swap = e["memory_swap"];
    if (e.contains("swappiness")) l.swappiness = e["swappiness"];
    l.oom_kill_disable = e.value("oom_kill_disable", false);
    if (e.contains("cpu_quota")) l.cpu_quota = e["cpu_quota"];
    if (e.contains("cpu_period")) l.cpu_period = e["cpu_period"];
    l.cpuset_cpus = e.value("cpuset_cpus", "");
    if (e.contains("cpu_rt_runtime")) l.cpu_rt_runtime = e["cpu_rt_runtime"];
    if (e.contains("cpu_rt_period")) l.cpu_rt_period = e["cpu_rt_period"];
    if (e.contains("blkio_weight")) l.blkio_weight = e["blkio_weight"];
    if (e.contains("blkio_device"))
      l.blkio_device = e["blkio_device"].get<std::vector<std::pair<std::string, std::string>>>();
  }
  if (j.contains("post_start"))
    for (const auto& h : j["post_start"]) r.post_start.push_back(hook_from(h));
  if (j.contains("pre_stop"))
    for (const auto& h : j["pre_stop"]) r.pre_stop.push_back(hook_from(h));
  if (j.contains("rlimits"))
    for (const auto& x : j["rlimits"]) s.process.rlimits.push_back({x.at(0), x.at(1), x.at(2)});
  if (j.contains("sysctls"))
    s.sysctls = j["sysctls"].get<std::vector<std::pair<std::string, std::string>>>();
  s.domainname = j.value("domainname", "");
  if (j.contains("oom_score_adj")) s.oom_score_adj = j["oom_score_adj"].get<int>();
  r.restart_delay = std::chrono::milliseconds(j.value("restart_delay_ms", int64_t{0}));
  r.restart_window = std::chrono::milliseconds(j.value("restart_window_ms", int64_t{0}));
  if (j.contains("labels")) r.labels = j["labels"].get<std::map<std::string, std::string>>();
  if (j.contains("annotations"))
    r.annotations = j["annotations"].get<std::map<std::string, std::string>>();
  if (j.contains("volume_labels"))
    r.volume_labels =
        j["volume_labels"].get<std::map<std::string, std::map<std::string, std::string>>>();
  r.log_driver = j.value("log_driver", "json-file");
  if (j.contains("log_options"))
    r.log_options = j["log_options"].get<std::map<std::string, std::string>>();
  if (j.contains("devices"))
    for (const auto& x : j["devices"])
      s.devices.push_back({x.at(0), x.at(1).get<std::string>().at(0), x.at(2), x.at(3), x.at(4)});
  if (j.contains("device_rules"))
    for (const auto& x : j["device_rules"])
      s.device_rules.push_back({x.at(0).get<std::string>().at(0), x.at(1), x.at(2), x.at(3)});
}

}  // namespace

std::string encode_runtime(const RuntimeRecord& r) {
  const auto& s = r.spec;
  json mounts = json::array();
  for (const auto& m : s.mounts) {
    json e = {{"source", m.source.string()}, {"target", m.target}, {"ro", m.read_only}};
    if (m.kind == model::BindMount::Kind::kTmpfs) e["kind"] = "tmpfs";
    if (m.kind == model::BindMount::Kind::kImage) {
      e["kind"] = "image";
      e["image_id"] = m.image_id;
      json ls = json::array();
      for (const auto& l : m.layers) ls.push_back(l.string());
      e["layers"] = std::move(ls);
    }
    if (!m.options.empty()) e["options"] = m.options;
    if (!m.propagation.empty()) e["propagation"] = m.propagation;
    if (!m.subpath.empty()) e["subpath"] = m.subpath;
    if (m.seed) e["seed"] = true;
    if (!m.create_source) e["create_source"] = false;
    if (m.recursive == model::BindMount::Recursive::kTopOnly) e["recursive"] = "disabled";
    if (m.recursive == model::BindMount::Recursive::kWritableBelow) e["recursive"] = "writable";
    mounts.push_back(std::move(e));
  }
  json secret_files = json::array();  // where, whose and which mode: never the content
  for (const auto& f : r.secret_files)
    secret_files.push_back({{"path", f.path.string()}, {"uid", f.uid}, {"gid", f.gid},
                            {"mode", f.mode}});
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
      {"secret_files", secret_files},
      {"read_only_root", s.read_only_root},
      {"tty", s.tty},
      {"stdin_open", s.stdin_open},
      {"shm_size", s.shm_size},
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
      {"auto_remove", r.auto_remove},
      {"fields", r.fields},
      {"resolv_conf", s.resolv_conf},
      {"host_network", s.host_network},
      {"host_uts", s.host_uts},
      {"host_ipc", s.host_ipc},
      {"host_pid", s.host_pid},
      {"cgroupns", s.cgroupns},
      {"join_pid", r.join_pid},
      {"join_ipc", r.join_ipc},
      {"join_container", r.join_container},
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
                    {"config_hash", n.config_hash},
                    {"mac_address", n.mac_address},
                    {"interface_name", n.interface_name},
                    {"gw_priority", n.gw_priority},
                    {"ipv6_address", n.ipv6_address},
                    {"link_local_ips", n.link_local_ips}});
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
  if (!r.dns.empty()) j["dns"] = r.dns;
  if (!r.links.empty()) j["links"] = r.links;
  if (s.log_none) j["log_none"] = true;  // logging driver none: the init writes no log file
  encode_service_fields(r, j);
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
    for (const auto& m : j.at("mounts")) {
      model::BindMount b{m.at("source").get<std::string>(), m.at("target"), m.at("ro")};
      if (m.value("kind", "") == "tmpfs") b.kind = model::BindMount::Kind::kTmpfs;
      if (m.value("kind", "") == "image") {
        b.kind = model::BindMount::Kind::kImage;
        b.image_id = m.value("image_id", "");
        for (const auto& l : m.value("layers", json::array())) b.layers.push_back(l.get<std::string>());
      }
      b.options = m.value("options", "");
      b.propagation = m.value("propagation", "");
      b.subpath = m.value("subpath", "");
      b.seed = m.value("seed", false);
      b.create_source = m.value("create_source", true);
      const std::string recursive = m.value("recursive", "");
      if (recursive == "disabled") b.recursive = model::BindMount::Recursive::kTopOnly;
      if (recursive == "writable") b.recursive = model::BindMount::Recursive::kWritableBelow;
      s.mounts.push_back(std::move(b));
    }
    if (j.contains("secret_files"))
      for (const auto& f : j["secret_files"])
        r.secret_files.push_back({f.at("path").get<std::string>(), f.at("uid"), f.at("gid"),
                                  f.at("mode")});
    s.read_only_root = j.value("read_only_root", false);
    s.tty = j.value("tty", false);
    s.stdin_open = j.value("stdin_open", false);
    s.shm_size = j.value("shm_size", int64_t{0});
    const auto& l = j.at("limits");
    if (l.contains("memory")) s.limits.memory_bytes = l["memory"].get<int64_t>();
    if (l.contains("cpus")) s.limits.cpus = l["cpus"].get<double>();
    if (l.contains("cpu_shares")) s.limits.cpu_shares = l["cpu_shares"].get<int64_t>();
    if (l.contains("pids")) s.limits.pids = l["pids"].get<int64_t>();
    s.log_max_size = j.at("log_max_size");
    s.log_max_files = j.at("log_max_files");
    s.log_none = j.value("log_none", false);
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
    r.auto_remove = j.value("auto_remove", false);
    if (j.contains("fields")) r.fields = j["fields"].get<std::map<std::string, std::string>>();
    s.resolv_conf = j.value("resolv_conf", "");
    s.host_network = j.value("host_network", false);
    s.host_uts = j.value("host_uts", false);
    s.host_ipc = j.value("host_ipc", false);
    s.host_pid = j.value("host_pid", false);
    s.cgroupns = j.value("cgroupns", false);
    r.join_pid = j.value("join_pid", false);
    r.join_ipc = j.value("join_ipc", false);
    r.join_container = j.value("join_container", "");
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
                              n.at("ipv4_address"), n.value("config_hash", ""),
                              n.value("mac_address", ""), n.value("interface_name", ""),
                              n.value("gw_priority", 0), n.value("ipv6_address", ""),
                              n.value("link_local_ips", std::vector<std::string>{})});
    if (j.contains("dns_search")) r.dns_search = j["dns_search"].get<std::vector<std::string>>();
    if (j.contains("dns_opt")) r.dns_opt = j["dns_opt"].get<std::vector<std::string>>();
    if (j.contains("dns")) r.dns = j["dns"].get<std::vector<std::string>>();
    if (j.contains("links")) r.links = j["links"].get<std::map<std::string, std::string>>();
    decode_service_fields(j, r);
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
