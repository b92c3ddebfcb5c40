// Overlay networks shared by the nodes of a cluster (issue 18), on a daemon started with
// --cluster: each network's subnet and each container's address from ClusterIpam, this node's
// containers registered as endpoints under its lease, and the other nodes' endpoints programmed
// here (VXLAN FDB and neighbour entries, DNS names) as the store's watch reports them.
// Store calls run on the node agent's query thread (writes, in order) and on this object's
// watch thread; the kernel and the DNS registry change on the loop (posted). Methods are called
// on the loop thread. A lost store stops no container: what is programmed stays.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/network.h"
#include "model/runtime_record.h"
#include "net/address.h"

namespace boost::asio {
class io_context;
}
#include "cluster/store_peers.h"

namespace stack::cluster {
class NodeAgent;
}  // namespace stack::cluster

namespace stack::reconciler {

class Networking;
using model::RuntimeRecord;

class ClusterOverlay {
 public:
  ClusterOverlay(boost::asio::io_context& io, cluster::NodeAgent& agent, Networking& networking);
  ~ClusterOverlay();  // stops the watch thread
  ClusterOverlay(const ClusterOverlay&) = delete;
  ClusterOverlay& operator=(const ClusterOverlay&) = delete;

  // Whether CONFIG is one of the cluster's networks: driver overlay without static peers
  // (driver_opts.peers). Its full name is the same on every node when it has `name:`.
  [[nodiscard]] static bool is_cluster_network(const model::NetworkConfig& config);
  [[nodiscard]] std::optional<net::Ipv4> underlay() const { return underlay_; }

  // Before the network is made here: its subnet as the cluster has it, recorded by the first
  // node that asks (ipam.config's subnet and gateway, else one derived from the name, see
  // default_subnet). A node asking for another subnet is refused with both named.
  boost::asio::awaitable<Result<void>> prepare(const model::NetworkConfig& config);
  // The subnet and gateway prepare found for the network FULL_NAME (none before prepare: a
  // restarted daemon keeps the one it stored).
  struct Subnet {
    net::Cidr subnet;
    net::Ipv4 gateway;
  };
  [[nodiscard]] std::optional<Subnet> subnet(const std::string& full_name) const;
  // The network is made here: its endpoints are watched from now on (idempotent).
  void watch(const std::string& full_name);
  // The network left this node (down, or no replica of its project here any more): its watch
  // ends and the other nodes' endpoints programmed for it are forgotten (their names leave the
  // DNS; the FDB entries went with its device), so that a later watch lists them afresh.
  void unwatch(const std::string& full_name);
  [[nodiscard]] bool is_cluster(const std::string& full_name) const {
    return watched_.count(full_name) > 0;
  }

  // Before a container of RT starts: its address on each cluster network it joins, allocated
  // in the store (its static ipv4_address claimed there too). attach takes them (reserved()).
  boost::asio::awaitable<Result<void>> reserve(const RuntimeRecord& rt);
  [[nodiscard]] std::optional<net::Ipv4> reserved(const std::string& container,
                                                  const std::string& network) const;
  // A container of RT runs with these addresses/MACs on cluster networks (started or adopted):
  // registered as endpoints under the node's lease (and its addresses kept under it).
  struct Attached {
    std::string network;
    net::Ipv4 ip;
    net::Mac mac;
  };
  void attached(const RuntimeRecord& rt, const std::vector<Attached>& endpoints);
  // The container is gone: its endpoints and addresses leave the store.
  void gone(const std::string& container);
  // A start-first update keeps the old container under another name.
  void renamed(const std::string& from, const std::string& to);

  // A container's health check status changed ("starting", "healthy", "unhealthy"): its
  // endpoint records say so (the routing mesh reaches healthy replicas only).
  void health(const std::string& container, const std::string& status);

  // This node's own address on cluster network NETWORK (the routing mesh's SNAT source,
  // cluster_mesh.h), held under the node's lease as owner "<node>/_mesh" and registered as an
  // endpoint with MAC (this node's bridge), so that the other nodes' replicas reach it over the
  // VXLAN. The same address on every call. release_host_address gives it back.
  static constexpr const char* kHostEndpoint = "_mesh";
  boost::asio::awaitable<Result<net::Ipv4>> host_address(const std::string& network,
                                                         const net::Mac& mac);
  void release_host_address(const std::string& network);

  // Every endpoint of NETWORK as the watch last reported it, this node's too, by
  // "<node>/<container>"; LISTENER is called on the loop after each change of a network.
  [[nodiscard]] const std::map<std::string, cluster::OverlayEndpoint>& endpoints(
      const std::string& network) const;
  void set_listener(std::function<void(const std::string& network)> listener) {
    listener_ = std::move(listener);
  }

  // The subnet a cluster network without ipam.config gets: 10.128.0.0/9 cut in /24s, chosen
  // by the name's hash, so that every node proposes the same one.
  [[nodiscard]] static net::Cidr default_subnet(const std::string& full_name);

 private:
  struct Shared;
  void program(const std::string& network, const std::vector<cluster::OverlayEndpoint>& listing);
  void change(const std::string& network, const std::vector<cluster::EndpointChange>& changes);
  void add_remote(const std::string& network, const cluster::OverlayEndpoint& ep);
  void remove_remote(const std::string& network, const std::string& key);

  boost::asio::io_context& io_;
  cluster::NodeAgent& agent_;
  Networking& networking_;
  std::optional<net::Ipv4> underlay_;
  std::map<std::string, Subnet> subnets_;  // by network full name
  std::set<std::string> watched_;
  // container -> network -> address (reserve, until gone)
  std::map<std::string, std::map<std::string, net::Ipv4>> reserved_;
  // network -> "<node>/<container>" -> endpoint programmed here (other nodes' only)
  std::map<std::string, std::map<std::string, std::unique_ptr<cluster::OverlayEndpoint>>> remote_;
  // network -> "<node>/<container>" -> every endpoint (the routing mesh's replicas)
  std::map<std::string, std::map<std::string, cluster::OverlayEndpoint>> all_;
  std::function<void(const std::string&)> listener_;
  std::shared_ptr<Shared> shared_;  // with the watch thread and the agent's queued work
};

}  // namespace stack::reconciler
