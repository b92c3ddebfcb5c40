// The daemon's networking: one NetworkManager (netlink + nftables in the daemon's namespace),
// IPAM persisted in the state store, one DNS server per network on its gateway, and the DNS
// registry fed as containers start and exit. Private to the reconciler. Every method runs on
// the loop thread (NetworkManager, IPAM, the DNS registry and the state store are not
// thread-safe).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "net/address.h"
#include "reconciler/controller.h"
#include "model/runtime_record.h"
#include "model/network.h"
#include "state/store.h"

namespace boost::asio {
class io_context;
}

namespace stack::net {
class Netlink;
class NftRunner;
class Firewall;
class NetworkManager;
class Sublinks;
class StaticPeers;
class AddressStore;
struct NetworkInfo;
struct PortMapping;
struct MeshPort;
namespace dns {
class DnsRegistry;
class DnsServer;
struct Endpoint;
}  // namespace dns
}  // namespace stack::net

namespace stack::reconciler {

class ClusterOverlay;

// What `stack port` prints: "0.0.0.0:8080".
struct PortAnswer {
  std::string host_ip;
  int host_port = 0;
};

class Networking {
 public:
  Networking(boost::asio::io_context& io, state::Store& store, const Paths& paths);
  ~Networking();

  // Opens netlink and nftables (in the calling thread's namespace: the daemon's).
  [[nodiscard]] Result<void> open();

  // Makes the network exist as CONFIG says (idempotent; repairs a deleted bridge), records it
  // with its project and config hash, and starts its DNS server.
  [[nodiscard]] Result<void> ensure(const model::NetworkConfig& config);
  // Stops its DNS server, deletes it and forgets it (its record and allocations). Its
  // containers must be gone.
  [[nodiscard]] Result<void> remove_network(const std::string& name);
  // NAME (a network named in the file) stays for PROJECT, whose containers still join it: it
  // is recorded as PROJECT's from now on (its down removes it).
  [[nodiscard]] Result<void> hand_over(const std::string& name, const std::string& project);
  // Every network of PROJECT, as remove_network.
  [[nodiscard]] Result<void> remove_project(const std::string& project);

  // What a container's /etc/resolv.conf should say, given its runtime (empty: keep the
  // image's): the gateway of its first network, or the host's file for network_mode host.
  [[nodiscard]] std::string resolv_conf(const RuntimeRecord& rt) const;

  // Whether a container of RT has interfaces to attach between the engine's create and start.
  [[nodiscard]] bool attaches(const RuntimeRecord& rt) const;
  // Step 4 of the start sequence (engine/init/init.c): a created container's interfaces, veths
  // born in its network namespace NETNS (its init, PID, waits for GO), and its address added
  // to its /etc/hosts. What a failure leaves allocated goes with gone(its name).
  [[nodiscard]] Result<void> attach(const RuntimeRecord& rt, pid_t pid, int netns);

  // After a successful start (or on adoption by a restarted daemon): DNS names registered and
  // ports published. ADOPTED: the endpoints come from the stored addresses. Without SERVE (the
  // new container of a start-first update) neither: switch_traffic gives them later.
  void started(const RuntimeRecord& rt, bool adopted, bool serve = true);
  // FROM (running, attached) is known as TO from now on: addresses, ports, names.
  [[nodiscard]] Result<void> rename(const std::string& from, const std::string& to);
  // FROM's published ports and DNS names go to TO at once.
  [[nodiscard]] Result<void> switch_traffic(const std::string& from, const RuntimeRecord& to);
  // A running container found by a restarted daemon (its init is PID): its endpoints and their
  // anti-spoofing rules known again, its ports put back on bridges made again meanwhile, then
  // started(rt, true).
  void adopt(const RuntimeRecord& rt, pid_t pid);
  // Firewall changes are held while a restarting daemon re-learns its networks and containers,
  // then applied at once: the previous ruleset is never replaced by a partial one.
  void hold_firewall();
  [[nodiscard]] Result<void> release_firewall();
  // The container exited or is removed: its names, addresses and ports go.
  void gone(const std::string& container);

  // A daemon in a cluster: its overlay networks without static peers are the cluster's
  // (reconciler/cluster_overlay.h): subnet and addresses from the store, endpoints registered.
  void set_cluster(ClusterOverlay* cluster) { cluster_ = cluster; }
  // Another node's container on cluster overlay NETWORK: frames and ARP for it go across the
  // VXLAN (FDB and neighbour entries), and the DNS answers its names there. KEY
  // ("<node>/<container>") keys it; CONTAINER, SERVICE and ALIASES are its names.
  struct RemoteEndpoint {
    std::string key, container, service;
    std::vector<std::string> aliases;
    net::Ipv4 ip, underlay;
    net::Mac mac;
  };
  [[nodiscard]] Result<void> add_remote(const std::string& network, const RemoteEndpoint& ep);
  [[nodiscard]] Result<void> remove_remote(const std::string& network, const RemoteEndpoint& ep);

  // The routing mesh's ports on this node (reconciler/cluster_mesh.h), in the firewall.
  [[nodiscard]] Result<void> set_mesh(std::vector<net::MeshPort> mesh);
  // NETWORK's bridge here and its MAC; nullopt when the network is not made here.
  struct Bridge {
    std::string name;
    net::Mac mac;
  };
  [[nodiscard]] std::optional<Bridge> bridge_of(const std::string& network) const;

  // `stack port`: the host side of CONTAINER's PRIVATE_PORT/PROTOCOL.
  [[nodiscard]] Result<PortAnswer> port(const RuntimeRecord& rt, int private_port,
                                        const std::string& protocol) const;

  // A build's RUN containers (build/build.h, BuildNetwork) join the builds' network
  // (kBuildNetwork, made on first use: a bridge with NAT and its DNS server, which forwards to
  // the host's resolvers). build_resolv_conf: what their resolv.conf says. detach_build when
  // one is gone; remove_build_network when no build runs.
  [[nodiscard]] Result<std::string> build_resolv_conf();
  [[nodiscard]] Result<void> attach_build(const std::string& container, int netns, pid_t pid);
  void detach_build(const std::string& container);
  [[nodiscard]] Result<void> remove_build_network();
  // "_stack_build": no project's network can have it (project names begin with a letter or a
  // digit).
  static constexpr const char* kBuildNetwork = "_stack_build";
  // Makes NETWORK (a known one) exist again.
  [[nodiscard]] Result<void> repair(const std::string& network);
  // The macvlan or ipvlan network (not EXCEPT) on parent link PARENT, "" when none.
  [[nodiscard]] std::string parent_user(const std::string& parent, const std::string& except) const;
  // NAME's driver as this daemon made it: bridge, overlay, macvlan or ipvlan.
  [[nodiscard]] std::string driver_of(const std::string& name) const;
  // Names of networks whose bridge (or vxlan device) has gone missing.
  [[nodiscard]] std::vector<std::string> missing();

  // A container put back on its networks, and which.
  struct Reattached {
    std::string container;
    std::vector<std::string> networks;
  };
  // Every container whose port left its bridge (the bridge was deleted, and made again by
  // repair or ensure) or vanished is re-attached where it runs, without a restart.
  [[nodiscard]] std::vector<Reattached> reattach_detached();

 private:
  void register_names(const RuntimeRecord& rt, bool adopted);
  static std::vector<net::PortMapping> port_mappings(const RuntimeRecord& rt);
  // The container's network namespace, checked to be the one it was attached in (a PID reused
  // by another process since would have another).
  Result<UniqueFd> netns_of(const std::string& container) const;

  boost::asio::io_context& io_;
  state::Store& store_;
  std::string instance_;
  ClusterOverlay* cluster_ = nullptr;
  std::unique_ptr<net::AddressStore> addresses_;
  std::unique_ptr<net::StaticPeers> peers_;
  std::unique_ptr<net::Netlink> netlink_;
  std::unique_ptr<net::NftRunner> nft_;
  std::unique_ptr<net::Firewall> firewall_;
  std::unique_ptr<net::Sublinks> sublinks_;
  std::unique_ptr<net::NetworkManager> manager_;
  std::unique_ptr<net::dns::DnsRegistry> registry_;
  std::map<std::string, std::unique_ptr<net::dns::DnsServer>> dns_;  // by network full name
  std::map<std::string, std::string> projects_;                      // network -> project
  struct Namespace {
    pid_t pid = 0;  // the container's init
    ino_t inode = 0;
  };
  std::map<std::string, Namespace> netns_;  // container -> where its interfaces live
  std::map<std::string, std::vector<net::dns::Endpoint>> names_;  // container -> its DNS entries
};

}  // namespace stack::reconciler
