// The canonical rendering of the normalised model in Compose long syntax (service_json,
// stack_json) and its YAML and JSON text. Defaults are printed; empty lists and maps and false
// flags are left out. Pure.
#include <cctype>
#include <cstdio>

#include "spec/field.h"
#include "spec/loader.h"

namespace stack::spec {
namespace {

using nlohmann::json;

template <class Map>
void put_map(json& j, const char* key, const Map& m) {
  if (!m.empty()) j[key] = m;
}

void put_list(json& j, const char* key, const std::vector<std::string>& v) {
  if (!v.empty()) j[key] = v;
}

void put_text(json& j, const char* key, const std::string& v) {
  if (!v.empty()) j[key] = v;
}

std::string octal(int mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%o", mode);
  return buf;
}

json mount_json(const Mount& m) {
  json j = {{"type", m.type}, {"target", m.target}};
  if (!m.source.empty()) j["source"] = m.source.string();
  if (m.read_only) j["read_only"] = true;
  put_text(j, "consistency", m.consistency);
  if (m.type == "bind") {
    json b = {{"create_host_path", m.create_host_path}};
    put_text(b, "propagation", m.propagation);
    put_text(b, "selinux", m.selinux);
    put_text(b, "recursive", m.recursive);  // "" : enabled, and the hash of a file without it
    j["bind"] = b;
  }
  if (m.type == "volume" && (m.nocopy || !m.subpath.empty() || !m.volume_labels.empty())) {
    json v = json::object();
    if (m.nocopy) v["nocopy"] = true;
    put_text(v, "subpath", m.subpath);
    if (!m.volume_labels.empty()) v["labels"] = m.volume_labels;
    j["volume"] = v;
  }
  if (m.type == "image" && !m.subpath.empty()) j["image"] = {{"subpath", m.subpath}};
  if (m.type == "tmpfs" && (m.tmpfs_size || m.tmpfs_mode)) {
    json t = json::object();
    if (m.tmpfs_size) t["size"] = *m.tmpfs_size;
    if (m.tmpfs_mode) t["mode"] = octal(*m.tmpfs_mode);
    j["tmpfs"] = t;
  }
  return j;
}

json port_json(const Port& p) {
  json j = {{"target", p.target}, {"protocol", p.protocol}, {"mode", p.mode}};
  if (p.published_start) {
    std::string published = std::to_string(*p.published_start);
    if (p.published_end && *p.published_end != *p.published_start)
      published.append(1, '-').append(std::to_string(*p.published_end));
    j["published"] = published;
  }
  put_text(j, "host_ip", p.host_ip);
  put_text(j, "name", p.name);
  put_text(j, "app_protocol", p.app_protocol);
  return j;
}

json healthcheck_json(const Healthcheck& h) {
  json j = {{"interval", format_duration(h.interval)},
            {"timeout", format_duration(h.timeout)},
            {"retries", h.retries},
            {"start_period", format_duration(h.start_period)},
            {"start_interval", format_duration(h.start_interval)}};
  if (!h.test.empty()) j["test"] = h.test;
  if (h.disable) j = {{"disable", true}, {"test", h.test}};
  return j;
}

json file_refs_json(const std::vector<FileRef>& refs) {
  json out = json::array();
  for (const FileRef& r : refs) {
    json j = {{"source", r.source}, {"target", r.target}};
    put_text(j, "uid", r.uid);
    put_text(j, "gid", r.gid);
    if (r.mode) j["mode"] = octal(*r.mode);
    out.push_back(j);
  }
  return out;
}

void put_network_like(json& j, const std::map<std::string, std::string>& driver_opts,
                      const std::map<std::string, std::string>& labels, bool external) {
  put_map(j, "driver_opts", driver_opts);
  put_map(j, "labels", labels);
  if (external) j["external"] = true;
}

json network_json(const Network& n) {
  json j = {{"name", n.name}};
  if (!n.external) j["driver"] = n.driver;
  put_network_like(j, n.driver_opts, n.labels, n.external);
  if (n.internal) j["internal"] = true;
  if (n.attachable) j["attachable"] = true;
  if (n.enable_ipv6) j["enable_ipv6"] = true;
  if (n.enable_ipv4) j["enable_ipv4"] = *n.enable_ipv4;
  if (!n.ipam.empty() || !n.ipam_driver.empty() || !n.ipam_options.empty()) {
    json ipam = json::object();
    put_text(ipam, "driver", n.ipam_driver);
    put_map(ipam, "options", n.ipam_options);
    json pools = json::array();
    for (const IpamPool& p : n.ipam) {
      json pool = json::object();
      put_text(pool, "subnet", p.subnet);
      put_text(pool, "ip_range", p.ip_range);
      put_text(pool, "gateway", p.gateway);
      put_map(pool, "aux_addresses", p.aux_addresses);
      pools.push_back(pool);
    }
    if (!pools.empty()) ipam["config"] = pools;
    j["ipam"] = ipam;
  }
  return j;
}

json file_object_json(const FileObject& f) {
  json j = {{"name", f.name}};
  if (!f.file.empty()) j["file"] = f.file.string();
  put_text(j, "environment", f.environment);
  if (f.content) j["content"] = *f.content;
  put_network_like(j, f.driver_opts, f.labels, f.external);
  put_text(j, "driver", f.driver);
  put_text(j, "template_driver", f.template_driver);
  return j;
}

void put_networking(json& j, const Service& s) {
  json ports = json::array();
  for (const Port& p : s.ports) ports.push_back(port_json(p));
  if (!ports.empty()) j["ports"] = ports;
  json expose = json::array();
  for (const ExposedPort& e : s.expose) expose.push_back(std::to_string(e.port) + "/" + e.protocol);
  if (!expose.empty()) j["expose"] = expose;
  if (!s.networks.empty()) {
    json nets = json::object();
    for (const NetworkAttachment& a : s.networks) {
      json n = json::object();
      put_list(n, "aliases", a.aliases);
      put_text(n, "ipv4_address", a.ipv4_address);
      put_text(n, "ipv6_address", a.ipv6_address);
      put_text(n, "mac_address", a.mac_address);
      put_text(n, "interface_name", a.interface_name);
      put_list(n, "link_local_ips", a.link_local_ips);
      put_map(n, "driver_opts", a.driver_opts);
      if (a.priority != 0) n["priority"] = a.priority;
      if (a.gw_priority) n["gw_priority"] = *a.gw_priority;
      nets[a.network] = n.empty() ? json(nullptr) : n;
    }
    j["networks"] = nets;
  }
  put_text(j, "network_mode", s.network_mode);
  json hosts = json::array();
  for (const HostEntry& h : s.extra_hosts) hosts.push_back(h.host + "=" + h.ip);
  if (!hosts.empty()) j["extra_hosts"] = hosts;
  put_list(j, "dns", s.dns);
  put_list(j, "dns_search", s.dns_search);
  put_list(j, "dns_opt", s.dns_opt);
  put_list(j, "links", s.links);
}

void put_security(json& j, const Service& s) {
  put_map(j, "labels", s.labels);
  put_map(j, "sysctls", s.sysctls);
  if (!s.ulimits.empty()) {
    json u = json::object();
    for (const auto& [name, l] : s.ulimits) u[name] = {{"soft", l.soft}, {"hard", l.hard}};
    j["ulimits"] = u;
  }
  put_list(j, "cap_add", s.cap_add);
  put_list(j, "cap_drop", s.cap_drop);
  if (s.privileged) j["privileged"] = true;
  if (s.read_only) j["read_only"] = true;
  if (s.init) j["init"] = *s.init;
  if (s.tty) j["tty"] = true;
  if (s.stdin_open) j["stdin_open"] = true;
  json devices = json::array();
  for (const Device& d : s.devices)
    devices.push_back({{"source", d.source}, {"target", d.target}, {"permissions", d.permissions}});
  if (!devices.empty()) j["devices"] = devices;
  put_list(j, "profiles", s.profiles);
  if (!s.secrets.empty()) j["secrets"] = file_refs_json(s.secrets);
  if (!s.configs.empty()) j["configs"] = file_refs_json(s.configs);
}

// Values were interpolated already: "$" is written "$$" so the rendering reads back the same.
void escape_dollars(json& j) {
  if (j.is_string()) {
    const std::string& v = j.get_ref<const std::string&>();
    if (v.find('$') == std::string::npos) return;
    std::string out;
    for (char c : v) out += c == '$' ? std::string("$$") : std::string(1, c);
    j = out;
  } else if (j.is_structured()) {
    for (json& item : j) escape_dollars(item);
  }
}

}  // namespace

json service_json(const Service& s) {
  json j = s.extra;
  put_text(j, "image", s.image);
  if (s.build) {
    json b = s.build->extra;
    b["context"] = s.build->context;
    if (s.build->dockerfile_inline.empty())
      b["dockerfile"] = s.build->dockerfile;
    else
      b["dockerfile_inline"] = s.build->dockerfile_inline;
    put_text(b, "target", s.build->target);
    put_map(b, "args", s.build->args);
    put_map(b, "labels", s.build->labels);
    put_text(b, "network", s.build->network);
    if (s.build->no_cache) b["no_cache"] = true;
    if (s.build->pull) b["pull"] = true;
    if (!s.build->tags.empty()) b["tags"] = s.build->tags;
    if (s.build->shm_size > 0) b["shm_size"] = s.build->shm_size;
    std::vector<std::string> hosts;
    for (const HostEntry& h : s.build->extra_hosts) hosts.push_back(h.host + "=" + h.ip);
    if (!hosts.empty()) b["extra_hosts"] = hosts;
    j["build"] = b;
  }
  j["pull_policy"] = s.pull_policy;
  if (s.entrypoint) j["entrypoint"] = *s.entrypoint;
  if (s.command) j["command"] = *s.command;
  put_map(j, "environment", s.environment);
  put_text(j, "working_dir", s.working_dir);
  put_text(j, "hostname", s.hostname);
  put_text(j, "domainname", s.domainname);
  put_text(j, "container_name", s.container_name);
  put_text(j, "user", s.user);
  if (s.limits.memory_bytes) j["mem_limit"] = *s.limits.memory_bytes;
  if (s.limits.cpus) j["cpus"] = *s.limits.cpus;
  if (s.limits.cpu_shares) j["cpu_shares"] = *s.limits.cpu_shares;
  if (s.limits.pids) j["pids_limit"] = *s.limits.pids;
  j["stop_signal"] = s.stop_signal;
  j["stop_grace_period"] = format_duration(s.stop_grace_period);
  json volumes = json::array();
  for (const Mount& m : s.volumes) volumes.push_back(mount_json(m));
  if (!volumes.empty()) j["volumes"] = volumes;
  put_list(j, "tmpfs", s.tmpfs);
  json options = s.logging.options;
  // The size caps are the file drivers' (syslog and journald refuse them).
  if (s.logging.driver == "json-file" || s.logging.driver == "local" || s.logging.max_size_set)
    options["max-size"] = std::to_string(s.logging.max_size_bytes);
  if (s.logging.driver == "json-file" || s.logging.driver == "local" || s.logging.max_files_set)
    options["max-file"] = std::to_string(s.logging.max_files);
  j["logging"] = {{"driver", s.logging.driver}, {"options", options}};
  j["scale"] = s.replicas;
  if (!s.dependencies.empty()) {
    json deps = json::object();
    for (const Dependency& d : s.dependencies)
      deps[d.service] = {{"condition", d.condition}, {"required", d.required},
                         {"restart", d.restart}};
    j["depends_on"] = deps;
  }
  j["restart"] = s.restart;
  if (s.healthcheck) j["healthcheck"] = healthcheck_json(*s.healthcheck);
  put_networking(j, s);
  put_security(j, s);
  if (!s.x_stack.is_null()) j["x-stack"] = s.x_stack;
  return j;
}

json stack_json(const Stack& stack) {
  json j = stack.extra;
  j["name"] = stack.name;
  json services = json::object();
  for (const Service& s : stack.services) services[s.name] = service_json(s);
  j["services"] = services;
  json networks = json::object();
  for (const Network& n : stack.networks) networks[n.key] = network_json(n);
  if (!networks.empty()) j["networks"] = networks;
  json volumes = json::object();
  for (const Volume& v : stack.volumes) {
    json vj = {{"name", v.name}};
    if (!v.external) vj["driver"] = v.driver;
    put_network_like(vj, v.driver_opts, v.labels, v.external);
    volumes[v.key] = vj;
  }
  if (!volumes.empty()) j["volumes"] = volumes;
  for (auto [key, list] : {std::pair{"secrets", &stack.secrets}, {"configs", &stack.configs}}) {
    json objects = json::object();
    for (const FileObject& f : *list) objects[f.key] = file_object_json(f);
    if (!objects.empty()) j[key] = objects;
  }
  escape_dollars(j);
  return j;
}

std::string render_json(const json& doc) { return doc.dump(2) + "\n"; }

}  // namespace stack::spec
