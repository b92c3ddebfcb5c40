// The routing mesh (issue 18), as Swarm's: on every node of the cluster, each published port of
// a cluster project's service answers, whether or not a replica runs here, and is DNATed to one
// of the service's healthy replicas across the cluster's ingress overlay network (net/firewall.h
// MeshPort, in the instance's own nftables table). Methods run on the loop thread.
//
// The replicas are reached at their addresses on the cluster's `ingress` overlay, which `up` joins
// every service publishing ingress ports to (cluster_ingress.h), as Swarm does: a service on no
// cluster overlay of its own is meshed too. A service with no interface of its own (network_mode
// host or service:X) keeps node-local ports (on the nodes that run a replica), and the log says so.
// The replies of another node's replica must come back through this node: connections leave with
// this node's own address on the overlay (ClusterOverlay::host_address) as their source, since
// the gateway address is the same on every node.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cluster/assignment_watch.h"
#include "net/address.h"

namespace boost::asio {
class io_context;
}
namespace stack::cluster {
class NodeAgent;
}

namespace stack::reconciler {

class ClusterOverlay;
class Networking;

// A meshed port of a service, read from its project's canonical JSON (spec::stack_json).
struct MeshService {
  std::string project, service;
  std::string network;  // the ingress network's full name
  struct Port {
    int proto = 0;  // net::Proto
    uint16_t published = 0, target = 0;
    bool operator==(const Port&) const = default;
  };
  std::vector<Port> ports;
  bool operator==(const MeshService&) const = default;
};
// The meshed ports of PROJECT's spec (JSON): ports with mode ingress, a published port (an
// ephemeral one has its cluster-wide number by then) and no host address (or 0.0.0.0), of
// services joined to the ingress network. NOT_MESHED: services publishing such ports on none.
[[nodiscard]] std::vector<MeshService> mesh_services(const std::string& spec_json,
                                                     std::vector<std::string>* not_meshed = nullptr);

class ClusterMesh {
 public:
  ClusterMesh(boost::asio::io_context& io, cluster::NodeAgent& agent, ClusterOverlay& overlay,
              Networking& networking);
  ~ClusterMesh();
  ClusterMesh(const ClusterMesh&) = delete;
  ClusterMesh& operator=(const ClusterMesh&) = delete;

  // Every project of the cluster (cluster_view): their meshed ports from now on.
  void projects(const cluster::LocalView& view);
  // SERVICE's meshed ports (none when it has none).
  [[nodiscard]] std::vector<MeshService::Port> ports_of(const std::string& project,
                                                        const std::string& service) const {
    for (const auto& s : services_)
      if (s.project == project && s.service == service) return s.ports;
    return {};
  }
  // The projects with a service meshed through NETWORK.
  [[nodiscard]] std::set<std::string> projects_on(const std::string& network) const {
    std::set<std::string> out;
    for (const auto& s : services_)
      if (s.network == network) out.insert(s.project);
    return out;
  }

 private:
  // The firewall's mesh made from the projects, the overlays' endpoints and this node's
  // addresses; asks for the addresses it lacks.
  void refresh();

  boost::asio::io_context& io_;
  cluster::NodeAgent& agent_;
  ClusterOverlay& overlay_;
  Networking& networking_;
  std::vector<MeshService> services_;
  std::set<std::string> warned_;                  // "project/service" told it is not meshed
  std::map<std::string, net::Ipv4> host_;         // network -> this node's address on it
  std::set<std::string> pending_;                 // networks whose address is being allocated
  std::string last_;  // what the log said last
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace stack::reconciler
