// See toplevel.h. Each section is validated by a shape, then read into the typed model.
#include "spec/toplevel.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "spec/loader.h"
#include "spec/shape.h"
#include "spec/text.h"

namespace stack::spec {
namespace {

using nlohmann::json;

const std::vector<std::string> kTopLevel = {"version", "name",    "include", "services",
                                            "networks", "volumes", "secrets", "configs",
                                            "models"};

Shape external_shape() {
  using namespace shapes;
  return either({boolean(), object({{"name", str()}})});
}

std::map<std::string, std::string> strings_of(const json& j, const char* key) {
  std::map<std::string, std::string> out;
  if (!j.contains(key)) return out;
  for (auto& [k, v] : j[key].items())
    out[k] = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
  return out;
}

// `external: true`, `external: {name: x}` (the old form of `name:`), or false.
bool read_external(json& j, std::string& name) {
  if (!j.contains("external")) return false;
  if (j["external"].is_object()) {
    if (j["external"].contains("name")) name = j["external"]["name"];
    return true;
  }
  return j["external"].get<bool>();
}

std::string object_name(const json& j, const std::string& explicit_name, bool external,
                        const std::string& project, const std::string& key) {
  if (!explicit_name.empty()) return explicit_name;
  if (j.contains("name")) return j["name"];
  return external ? key : project + "_" + key;
}

bool valid_cidr(const std::string& cidr) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos || slash + 1 >= cidr.size()) return false;
  std::string bits = cidr.substr(slash + 1);
  if (!std::all_of(bits.begin(), bits.end(), ::isdigit) || bits.size() > 3) return false;
  std::string ip = cidr.substr(0, slash);
  return !ip.empty() && ip.find_first_not_of("0123456789abcdefABCDEF.:") == std::string::npos;
}

// Why ADDRESS (aux_addresses NAME) cannot be kept out of SUBNET's pool; "" when it can.
std::string aux_problem(const std::string& subnet, const std::string& name,
                        const std::string& address) {
  std::string what = "aux address " + name + " \"" + address + "\"";
  if (subnet.empty()) return what + " needs a subnet in the same ipam.config entry";
  bool v6 = subnet.find(':') != std::string::npos;
  size_t slash = subnet.find('/');
  unsigned char net[16], ip[16];
  if (slash == std::string::npos ||
      inet_pton(v6 ? AF_INET6 : AF_INET, subnet.substr(0, slash).c_str(), net) != 1)
    return "";  // the subnet's own error is reported
  if (inet_pton(v6 ? AF_INET6 : AF_INET, address.c_str(), ip) != 1)
    return what + " is not an IPv" + std::string(v6 ? "6" : "4") + " address";
  int bits = std::atoi(subnet.c_str() + slash + 1);
  for (int i = 0; i < bits && i < (v6 ? 128 : 32); i++) {
    unsigned char bit = static_cast<unsigned char>(0x80 >> (i % 8));
    if ((net[i / 8] & bit) != (ip[i / 8] & bit)) return what + " is not in subnet " + subnet;
  }
  return "";
}

// Where aux_addresses NAME of the ipam.config entry AT is written (its value).
SourcePos aux_pos(const Node& at, const std::string& name) {
  const Node* aux = at.find("aux_addresses");
  if (aux == nullptr) return at.pos;
  for (const Entry& e : aux->entries)
    if (e.key == name) return e.value.pos;
  for (const Node& item : aux->items)
    if (item.value.rfind(name + "=", 0) == 0) return item.pos;
  return aux->pos;
}

template <class Fn>
void each_entry(const FieldCtx& ctx, const Node& root, const char* section, Fn fn) {
  const Node* n = root.find(section);
  if (n == nullptr || n->is_null()) return;
  FieldCtx sc = ctx.child(section);
  if (!n->is_mapping()) return sc.type_error(*n, "a mapping");
  for (const Entry& e : n->entries) {
    if (e.key.rfind("x-", 0) == 0) continue;
    if (!valid_object_name(e.key)) {
      sc.error(e.key_pos, "invalid name \"" + e.key + "\": use letters, digits, '.', '_' and '-'");
      continue;
    }
    fn(sc.child(e.key), e);
  }
}

void read_networks(const FieldCtx& ctx, const Node& root, Stack& out) {
  using namespace shapes;
  static const Shape shape = object({
      {"name", str()},
      {"driver", str()},
      {"driver_opts", dict()},
      {"ipam", object({{"driver", str()},
                       {"config", list(object({{"subnet", str()},
                                               {"ip_range", str()},
                                               {"gateway", str()},
                                               {"aux_addresses", dict()}}))},
                       {"options", dict()}})},
      {"external", external_shape()},
      {"internal", boolean()},
      {"enable_ipv4", boolean()},
      {"enable_ipv6", boolean()},
      {"attachable", boolean()},
      {"labels", dict()},
  });
  each_entry(ctx, root, "networks", [&](const FieldCtx& c, const Entry& e) {
    json j = shape_json(c, e.value, shape);
    if (j.is_null()) j = json::object();
    Network net;
    net.key = e.key;
    net.pos = e.key_pos;
    std::string ext_name;
    net.external = read_external(j, ext_name);
    net.name = object_name(j, ext_name, net.external, out.name, e.key);
    c.check_length(e.key_pos, c.path + ": network name", net.name, kMaxObjectName,
                   "names on the host are bounded as path components");
    net.driver = j.value("driver", "bridge");
    net.driver_opts = strings_of(j, "driver_opts");
    net.internal = j.value("internal", false);
    net.attachable = j.value("attachable", false);
    net.enable_ipv6 = j.value("enable_ipv6", false);
    if (j.contains("enable_ipv4")) net.enable_ipv4 = j["enable_ipv4"].get<bool>();
    net.labels = strings_of(j, "labels");
    if (j.contains("ipam")) {
      json& ipam = j["ipam"];
      net.ipam_driver = ipam.value("driver", "");
      net.ipam_options = strings_of(ipam, "options");
      const Node* config = e.value.find("ipam")->find("config");
      size_t i = 0;
      for (json& pool : ipam.value("config", json::array())) {
        IpamPool p;
        p.subnet = pool.value("subnet", "");
        p.ip_range = pool.value("ip_range", "");
        p.gateway = pool.value("gateway", "");
        p.aux_addresses = strings_of(pool, "aux_addresses");
        const Node& at = config != nullptr && i < config->items.size() ? config->items[i] : e.value;
        for (const std::string* cidr : {&p.subnet, &p.ip_range})
          if (!cidr->empty() && !valid_cidr(*cidr))
            c.child("ipam.config").error(at.pos, "expected a CIDR like 10.5.0.0/16, got \"" +
                                                     *cidr + "\"");
        for (const auto& [name, address] : p.aux_addresses)
          if (auto why = aux_problem(p.subnet, name, address); !why.empty())
            c.child("ipam.config").error(aux_pos(at, name), why);
        net.ipam.push_back(std::move(p));
        ++i;
      }
    }
    out.networks.push_back(std::move(net));
  });
}

void read_volumes(const FieldCtx& ctx, const Node& root, Stack& out) {
  using namespace shapes;
  static const Shape shape = object({{"name", str()},
                                     {"driver", str()},
                                     {"driver_opts", dict()},
                                     {"external", external_shape()},
                                     {"labels", dict()}});
  each_entry(ctx, root, "volumes", [&](const FieldCtx& c, const Entry& e) {
    json j = shape_json(c, e.value, shape);
    if (j.is_null()) j = json::object();
    Volume v;
    v.key = e.key;
    v.pos = e.key_pos;
    std::string ext_name;
    v.external = read_external(j, ext_name);
    v.name = object_name(j, ext_name, v.external, out.name, e.key);
    c.check_length(e.key_pos, c.path + ": volume name", v.name, kMaxObjectName,
                   "a volume is a directory of that name");
    v.driver = j.value("driver", "local");
    v.driver_opts = strings_of(j, "driver_opts");
    v.labels = strings_of(j, "labels");
    out.volumes.push_back(std::move(v));
  });
}

void read_file_objects(const FieldCtx& ctx, const Node& root, const char* section,
                       std::vector<FileObject>& into, const std::string& project) {
  using namespace shapes;
  bool configs = std::string(section) == "configs";
  std::vector<std::pair<std::string, Shape>> fields = {
      {"name", str()},     {"file", str()},   {"environment", str()},
      {"external", either({boolean(), object({{"name", str()}})})},
      {"labels", dict()},  {"driver", str()}, {"driver_opts", dict()},
      {"template_driver", str()}};
  if (configs) fields.emplace_back("content", str());
  const Shape shape = object(fields);
  each_entry(ctx, root, section, [&](const FieldCtx& c, const Entry& e) {
    json j = shape_json(c, e.value, shape);
    if (!j.is_object()) {
      if (e.value.is_null()) c.type_error(e.value, "a mapping with file, environment or external");
      return;
    }
    FileObject f;
    f.key = e.key;
    f.pos = e.key_pos;
    std::string ext_name;
    f.external = read_external(j, ext_name);
    f.name = object_name(j, ext_name, f.external, project, e.key);
    if (j.contains("file")) f.file = c.resolve(e.value.find("file")->pos, j["file"]);
    f.environment = j.value("environment", "");
    if (!f.environment.empty()) f.environment_value = c.lookup(f.environment);
    if (j.contains("content")) f.content = j["content"].get<std::string>();
    f.labels = strings_of(j, "labels");
    f.driver = j.value("driver", "");
    f.driver_opts = strings_of(j, "driver_opts");
    f.template_driver = j.value("template_driver", "");
    int sources = (f.file.empty() ? 0 : 1) + (f.environment.empty() ? 0 : 1) +
                  (f.content ? 1 : 0) + (f.external ? 1 : 0);
    if (sources != 1)
      c.error(e.key_pos, std::string("needs exactly one of file, environment") +
                             (configs ? ", content" : "") + " or external");
    into.push_back(std::move(f));
  });
}

}  // namespace

bool valid_object_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

void check_top_level(const FieldCtx& ctx, const Node& root) {
  for (const Entry& e : root.entries) {
    if (e.key.rfind("x-", 0) == 0) continue;
    if (std::find(kTopLevel.begin(), kTopLevel.end(), e.key) != kTopLevel.end()) continue;
    std::string message = "unknown top-level key \"" + e.key + "\"";
    if (auto guess = closest_match(e.key, kTopLevel)) message += " (did you mean \"" + *guess + "\"?)";
    ctx.diag.error(e.key_pos, message);
  }
}

void normalize_top_level(const FieldCtx& ctx, const Node& root, Stack& out) {
  FieldCtx base{ctx.diag, ctx.project_dir, ctx.lookup, "", ctx.base_dirs};
  read_networks(base, root, out);
  read_volumes(base, root, out);
  read_file_objects(base, root, "secrets", out.secrets, out.name);
  read_file_objects(base, root, "configs", out.configs, out.name);
  if (const Node* models = root.find("models"); models != nullptr && !models->is_null()) {
    json j = shape_json(base.child("models"), *models, shapes::map(model_shape()));
    if (!j.is_null() && !j.empty()) out.extra["models"] = std::move(j);
  }
  auto by_key = [](const auto& a, const auto& b) { return a.key < b.key; };
  std::sort(out.networks.begin(), out.networks.end(), by_key);
  std::sort(out.volumes.begin(), out.volumes.end(), by_key);
  std::sort(out.secrets.begin(), out.secrets.end(), by_key);
  std::sort(out.configs.begin(), out.configs.end(), by_key);
}

}  // namespace stack::spec
