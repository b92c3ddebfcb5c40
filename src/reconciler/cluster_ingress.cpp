// attach_ingress: the `ingress` network added to a cluster project's spec and joined by the
// services that publish meshed ports, before `up` writes the spec to the store; the nodes then
// make it, allocate its addresses and program it as any cluster overlay (cluster_overlay.h).
#include "reconciler/cluster_ingress.h"

#include <algorithm>

#include "spec/stack.h"

namespace stack::reconciler {

bool meshed_port(const std::string& mode, const std::string& host_ip) {
  return mode != "host" && (host_ip.empty() || host_ip == "0.0.0.0");
}

Result<std::vector<IngressPort>> attach_ingress(spec::Stack& stack, const std::string& subnet) {
  for (const auto& n : stack.networks)
    if (n.key == kIngressNetwork || n.name == kIngressNetwork)
      return fail(n.pos.str() + ": network " + n.key +
                  ": the name ingress is reserved in a cluster for the routing mesh's network "
                  "(as in Swarm): name it otherwise");
  std::vector<IngressPort> out;
  bool used = false;
  for (size_t i = 0; i < stack.services.size(); i++) {
    auto& svc = stack.services[i];
    // A container of its own on bridge networks only: network_mode host/none/service:X has no
    // interface to join; a provider runs no container.
    if (svc.networks.empty() || !svc.network_mode.empty() || svc.extra.contains("provider"))
      continue;
    bool meshed = false;
    std::map<std::string, int> seen;  // owner -> how many alike so far
    for (size_t j = 0; j < svc.ports.size(); j++) {
      const auto& p = svc.ports[j];
      if (!meshed_port(p.mode, p.host_ip)) continue;
      meshed = true;
      if (p.published_start) {
        for (int port = *p.published_start; port <= p.published_end.value_or(*p.published_start);
             port++)
          out.push_back({i, j, {svc.name + "@" + std::to_string(port) + "/" + p.protocol,
                                p.protocol, port}});
        continue;
      }
      std::string owner = svc.name + "/" + std::to_string(p.target) + "/" + p.protocol;
      if (int n = ++seen[owner]; n > 1) owner += "#" + std::to_string(n);
      out.push_back({i, j, {owner, p.protocol, 0}});
    }
    if (!meshed) continue;
    used = true;
    spec::NetworkAttachment a;
    a.network = kIngressNetwork;
    a.priority = kIngressPriority;
    a.gw_priority = kIngressPriority;
    a.pos = svc.pos;
    svc.networks.push_back(std::move(a));  // last: the lowest priority
  }
  if (!used) return out;
  spec::Network n;
  n.key = kIngressNetwork;
  n.name = kIngressNetwork;
  n.driver = "overlay";
  n.ipam.push_back({subnet, "", "", {}});
  auto at = std::lower_bound(stack.networks.begin(), stack.networks.end(), n.key,
                             [](const spec::Network& a, const std::string& key) {
                               return a.key < key;
                             });
  stack.networks.insert(at, std::move(n));
  return out;
}

void set_ephemeral_ports(spec::Stack& stack, const std::vector<IngressPort>& ports,
                         const std::map<std::string, int>& claimed) {
  for (const auto& e : ports) {
    if (e.want.fixed) continue;
    auto it = claimed.find(e.want.owner);
    if (it == claimed.end()) continue;
    auto& p = stack.services[e.service].ports[e.port];
    p.published_start = it->second;
    p.published_end = it->second;
  }
}

}  // namespace stack::reconciler
