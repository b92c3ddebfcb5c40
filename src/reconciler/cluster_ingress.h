// The cluster's `ingress` network (issue 18, as Swarm's): on `up` in a cluster, every service
// publishing ports in mode ingress joins one cluster-wide overlay, `ingress`, through which the
// routing mesh (cluster_mesh.h) reaches its replicas from every node; its ephemeral ports get a
// cluster-wide number (cluster/ingress_ports.h). Rewrites the spec before it is written to the
// store; touches nothing on the host. Light header: spec types only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cluster/ingress_ports.h"
#include "common/result.h"

namespace stack::spec {
struct Stack;
}

namespace stack::reconciler {

// The network's key and full name: the same in every project, one network on each node
// (networking keeps it while a project there uses it; steps.cpp remove_network).
inline constexpr const char* kIngressNetwork = "ingress";
// Its subnet: outside the cluster overlays' pool (10.128.0.0/9, ClusterOverlay::default_subnet)
// and the host's bridge pool (10.89.0.0/16); a /16 for one address per replica and per node.
inline constexpr const char* kIngressSubnet = "10.127.0.0/16";
// Its attachment sorts last (priority) and never takes the default route from another network
// (gw_priority): resolv.conf names the first network's DNS server, and ingress has no names.
inline constexpr int kIngressPriority = -1000;

// A meshed port of STACK, to be claimed cluster-wide: services[service].ports[port] (a
// published range gives one per port).
struct IngressPort {
  size_t service = 0, port = 0;
  cluster::PortWant want;
};

// Whether a port with MODE and HOST_IP is the routing mesh's: mode ingress, on every address.
[[nodiscard]] bool meshed_port(const std::string& mode, const std::string& host_ip);

// Adds the ingress network to STACK and joins it from each service that publishes a meshed port
// (on a bridge network: not network_mode host/service/container); returns those ports.
// A network of the file keyed or named `ingress` is refused (reserved, as in Swarm).
// SUBNET: the network's (the cluster's recorded one, else the daemon's --ingress-subnet).
[[nodiscard]] Result<std::vector<IngressPort>> attach_ingress(
    spec::Stack& stack, const std::string& subnet = kIngressSubnet);
// Writes the numbers claimed for the ephemeral ones (owner -> port, claim_ingress_ports) into
// STACK's ports.
void set_ephemeral_ports(spec::Stack& stack, const std::vector<IngressPort>& ports,
                         const std::map<std::string, int>& claimed);

}  // namespace stack::reconciler
