// config_hash: sha256 over the canonical JSON of a normalised service (service_json). Replicas
// and source positions are left out: scaling or moving a line in the file must not recreate
// containers.
#include <nlohmann/json.hpp>

#include "common/sha256.h"
#include "spec/loader.h"

namespace stack::spec {

std::string default_hostname(std::string_view container_name) {
  if (container_name.size() <= kMaxHostname) return std::string(container_name);
  return sha256_hex(std::string(container_name)).substr(0, 12);
}

std::string config_hash(const Service& service) {
  nlohmann::json doc = service_json(service);
  doc.erase("scale");
  // How the image is built is not how the container runs: a rebuild that changes the image
  // changes its id (which recreates), an edit of `build:` alone recreates nothing (compose).
  doc.erase("build");
  // nlohmann::json objects are std::map based, so keys come out sorted.
  return sha256_hex(nlohmann::json{{"name", service.name}, {"service", doc}}.dump());
}

std::string network_config_hash(const Network& n) {
  // What shapes the network on the host; its position in the file and `external` do not.
  nlohmann::json ipam = nlohmann::json::array();
  for (const auto& p : n.ipam) {
    ipam.push_back({{"subnet", p.subnet}, {"ip_range", p.ip_range}, {"gateway", p.gateway}});
    // Only when given: the hash of every network made before the field existed stays the same.
    if (!p.aux_addresses.empty()) ipam.back()["aux_addresses"] = p.aux_addresses;
  }
  nlohmann::json doc = {{"name", n.name},         {"driver", n.driver},
                        {"driver_opts", n.driver_opts}, {"internal", n.internal},
                        {"enable_ipv6", n.enable_ipv6}, {"ipam", ipam},
                        {"labels", n.labels}};
  // Only when false: the hash of every network made before the field existed stays the same.
  if (n.enable_ipv4 && !*n.enable_ipv4) doc["enable_ipv4"] = false;
  return sha256_hex(doc.dump());
}

std::map<std::string, std::string> config_field_hashes(const Service& service) {
  nlohmann::json doc = service_json(service);
  doc.erase("scale");
  doc.erase("build");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : doc.items()) out[key] = sha256_hex(value.dump()).substr(0, 16);
  return out;
}

}  // namespace stack::spec
