// The network library's public face: networks (bridge or VXLAN overlay) made to exist,
// containers attached to them, ports published; IPAM, netlink and nftables underneath.
// Acts on the namespace its Netlink and NftRunner were created in. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "net/address.h"
#include "net/firewall.h"
#include "net/ipam.h"
#include "net/netlink.h"
#include "net/overlay.h"
#include "net/sublinks.h"

namespace stack::net {

// kMacvlan, kIpvlan: children of a parent link (docker's drivers of those names): no bridge, no
// NAT, no published ports; the embedded DNS answers on a "shim" child of the same parent on the
// host, which holds an address of the subnet (see ensure_sublinks in network_sublinks.cpp).
enum class Driver { kBridge, kOverlay, kMacvlan, kIpvlan };

// One network of a stack file, as the reconciler resolved it.
struct NetworkSpec {
  std::string project;  // "demo"
  std::string name;     // the key under `networks:`, "default" for <project>_default
  Driver driver = Driver::kBridge;
  bool internal = false;
  std::optional<Cidr> subnet;  // ipam.config[0]
  std::optional<Cidr> ip_range;
  std::optional<Ipv4> gateway;
  std::map<std::string, Ipv4> reserved = {};  // ipam.config[0].aux_addresses
  std::optional<int> mtu;  // default 1500, 1450 for overlay (VXLAN adds 50 bytes)
  // overlay only: driver_opts.vni (else derived from project and name, the same on every
  // host), and this host's underlay address (driver_opts.local).
  std::optional<uint32_t> vni;
  std::optional<Ipv4> underlay;
  // overlay only: a cluster's (issue 18): the other hosts' endpoints come one by one
  // (add_remote), ARP is answered by the vxlan device, and nothing is flooded to peers.
  bool cluster = false;
  // enable_ipv6: an IPv6 subnet too (ipam.config's IPv6 entry, else a /64 of the ULA pool).
  bool enable_ipv6 = false;
  // false: IPv6-only. The network still reserves an IPv4 subnet in the IPAM (containers'
  // IPv6 addresses and the DNS server's client scoping derive from their IPv4 allocation), but
  // no IPv4 address is put on the bridge or in a container, and ports publish on IPv6 only.
  bool enable_ipv4 = true;
  std::optional<Cidr6> subnet6 = std::nullopt;
  std::optional<Ipv6> gateway6 = std::nullopt;
  // The IPv6 entry's aux_addresses: never a container's, nor the image of an IPv4 address a
  // container is given (so the IPv4 address whose image one is stays out of the pool too).
  std::map<std::string, Ipv6> reserved6 = {};

  // macvlan/ipvlan: driver_opts.parent ("" : a dummy link stack makes; "IFACE.VLAN": the
  // 802.1q link, made when missing), macvlan_mode or ipvlan_mode, ipvlan_flag.
  std::string parent = "";
  std::string mode = "";
  std::string flag = "";

  // `name:` in the file: the network's name on the host, the same for every project naming it
  // (its bridge and VNI derive from it alone). "" : "<project>_<name>".
  std::string host_name = "";

  [[nodiscard]] std::string full_name() const {  // "demo_default"
    return host_name.empty() ? project + "_" + name : host_name;
  }
};

// A network as it exists on this host.
struct NetworkInfo {
  NetworkSpec spec;
  NetworkAddressing addressing;  // subnet, gateway (where its DNS server listens), ip_range
  std::string bridge;            // "stk-1a2b3c4d"
  std::string vxlan;             // "stx-4242" for overlay, else ""
  uint32_t vni = 0;
  int mtu = 1500;
  std::optional<Addressing6> v6 = std::nullopt;  // enable_ipv6
  // macvlan/ipvlan (bridge is ""): the parent link, the host's shim child ("stk-<hash8>-s")
  // and its address, where the network's DNS server listens.
  std::string parent = "";
  std::string shim = "";
  std::optional<Ipv4> shim_address = std::nullopt;
  [[nodiscard]] bool sublinks() const {
    return spec.driver == Driver::kMacvlan || spec.driver == Driver::kIpvlan;
  }
};

struct EndpointRequest {
  std::string network;                              // full name, "demo_default"
  std::optional<Ipv4> ipv4_address = std::nullopt;  // static address
  std::optional<Mac> mac = std::nullopt;            // mac_address; else derived from the address
  std::string ifname = "";  // interface_name; "" : eth<N>, N its position among the requests
  int gw_priority = 0;  // the default route goes through the highest (ties: the first)
  std::optional<Ipv6> ipv6_address = std::nullopt;  // static, on a network with enable_ipv6
  // link_local_ips: extra addresses on the interface, outside the network's IPAM.
  std::vector<Cidr> link_local_ips = {};
  std::vector<Cidr6> link_local_ips6 = {};
};

// A container's interface on one network.
struct Endpoint {
  std::string network;
  std::string ifname;     // "eth0", "eth1", ... in the order of the requests
  std::string host_veth;  // "stk0123456789", enslaved to the bridge; "" on macvlan/ipvlan
  Cidr address;           // 10.89.0.2/24
  Ipv4 gateway;
  int mtu = 1500;
  Mac mac = {};                // the container's interface (container_mac of its address)
  bool default_route = false;  // the container's default route goes through this gateway
  std::optional<Cidr6> address6 = std::nullopt;  // on a network with enable_ipv6
  std::optional<Ipv6> gateway6 = std::nullopt;
  bool default_route6 = false;  // the IPv6 default route goes through GATEWAY6
  std::vector<Cidr> extra = {};  // link_local_ips
  std::vector<Cidr6> extra6 = {};
};

struct NetworkOptions {
  std::string instance;  // tells apart instances with different roots ("" for the default)
  SubnetPool pool;
  bool enable_ip_forward = true;  // net.ipv4.ip_forward=1 when a non-internal network exists
  std::optional<Cidr6> pool6 = std::nullopt;  // default IPv6 subnets; unset: ula_pool(instance)
};

// Opens /proc/PID/ns/net: what Engine::start's attach hook receives is the init's PID.
[[nodiscard]] Result<UniqueFd> open_netns(pid_t pid);

class NetworkManager {
 public:
  NetworkManager(Netlink& kernel, Firewall& firewall, AddressStore& store, OverlayPeers& peers,
                 NetworkOptions options);

  // Makes the network exist: subnet (given or from the pool), bridge with its gateway address
  // and route_localnet, the vxlan device and its peers' FDB entries for overlay, the firewall.
  // Idempotent, and the repair for drift (a deleted bridge is made again).
  [[nodiscard]] Result<NetworkInfo> ensure_network(const NetworkSpec& spec);
  // Deletes the bridge and vxlan device, forgets the subnet and its allocations, updates the
  // firewall (the table goes with the last network). Refused while containers are attached.
  [[nodiscard]] Result<void> remove_network(std::string_view full_name);
  [[nodiscard]] const NetworkInfo* find(std::string_view full_name) const;
  // The macvlan or ipvlan network other than EXCEPT whose parent link is PARENT (given in its
  // driver_opts), "" when none: docker's drivers give one parent to one network only.
  [[nodiscard]] std::string parent_user(std::string_view parent, std::string_view except) const;

  // Attaches the container whose network namespace is NETNS_FD to each requested network:
  // an address, a veth born in the namespace as eth0, eth1... (or its interface_name), its
  // MAC, address, MTU, default route (through the non-internal network of highest
  // gw_priority). GENERATION (the init's PID) keeps the host-side name unique across restarts. On failure the addresses are released; veths
  // already made go away with the namespace when the caller abandons the container.
  [[nodiscard]] Result<std::vector<Endpoint>> attach(std::string_view container, int netns_fd,
                                                     uint64_t generation,
                                                     const std::vector<EndpointRequest>& requests);
  // The container is gone (or going): releases its addresses and published ports. Deletes no
  // link: the veth disappears with the container's namespace, at no cost (deleting it here
  // would take ~35 ms).
  [[nodiscard]] Result<void> detach(std::string_view container);
  // A running container that an earlier daemon attached: its endpoints as they are (addresses
  // from the store, host veth names from GENERATION, MACs as its interfaces in NETNS_FD have
  // them), so that its ports are filtered and published again. Makes no link.
  [[nodiscard]] Result<std::vector<Endpoint>> adopt(std::string_view container, int netns_fd,
                                                    uint64_t generation,
                                                    const std::vector<EndpointRequest>& requests);
  // Puts CONTAINER's ports back on their bridges, without restarting anything: a host end its
  // bridge lost (a deleted bridge releases its ports, which survive) is enslaved again; a veth
  // that is gone (its peer went with it) is made again with its peer born in NETNS_FD, with the
  // same name, MAC, address and route. Returns the networks repaired.
  [[nodiscard]] Result<std::vector<std::string>> reattach(std::string_view container,
                                                          int netns_fd);
  // Containers with a port that is missing, down or not on its network's bridge.
  [[nodiscard]] Result<std::vector<std::string>> observe_detached();
  [[nodiscard]] std::vector<Endpoint> endpoints(std::string_view container) const;

  // A container on another host of cluster overlay NETWORK: frames to MAC go to UNDERLAY (an
  // FDB entry on the vxlan device) and ARP for IP is answered by the device (a permanent
  // neighbour entry; the device has proxy on). Idempotent. remove_remote undoes it.
  [[nodiscard]] Result<void> add_remote(std::string_view network, Ipv4 ip, const Mac& mac,
                                        Ipv4 underlay);
  [[nodiscard]] Result<void> remove_remote(std::string_view network, Ipv4 ip, const Mac& mac,
                                           Ipv4 underlay);

  // Publishes the container's ports (CONTAINER_IP of each mapping is filled from its first
  // endpoint when unset, or from its stored address after a restart) and applies the firewall;
  // replaces what it published before. After a daemon restart, ensure every network and
  // publish every running container's ports again: the table is rebuilt from this state.
  [[nodiscard]] Result<void> publish(std::string_view container, std::vector<PortMapping> ports);

  // CONTAINER's endpoints, addresses (IPAM owner) and published ports are TO's from now on:
  // a start-first update keeps the old container under another name. Changes no link.
  [[nodiscard]] Result<void> rename(std::string_view from, std::string_view to);
  // FROM's published ports go and TO's (PORTS, CONTAINER_IP filled as publish does) come, in
  // one firewall transaction: no connection attempt finds neither.
  [[nodiscard]] Result<void> switch_ports(std::string_view from, std::string_view to,
                                          std::vector<PortMapping> ports);

  // Names of known networks whose bridge or vxlan device is missing: drift to repair with
  // ensure_network.
  [[nodiscard]] Result<std::vector<std::string>> observe_missing();

  // The kernel calls of macvlan and ipvlan networks; without it they are refused.
  void use_sublinks(Sublinks& sublinks) { sublinks_ = &sublinks; }

  // The routing mesh's ports (reconciler/cluster_mesh.h) in the firewall from now on; applied
  // when they changed.
  [[nodiscard]] Result<void> set_mesh(std::vector<MeshPort> mesh);

  [[nodiscard]] FirewallModel firewall_model() const;
  // While held, changes to the model are not applied; release applies them in one transaction
  // (if any). A restarted daemon holds it while it re-learns its networks and containers, so
  // the previous daemon's ruleset stays in force until the complete one replaces it.
  void hold_firewall() { held_ = true; }
  [[nodiscard]] Result<void> release_firewall();

 private:
  Result<void> apply_firewall();
  // ADD's ports into and REMOVE's out of the anti-spoofing sets: one small transaction on a
  // container's start and exit, the whole model if it fails.
  Result<void> change_ports(const std::vector<Endpoint>& add, const std::vector<Endpoint>& remove);
  Result<void> ensure_links(const NetworkInfo& info);
  // macvlan/ipvlan (network_sublinks.cpp): the parent (dummy or 802.1q link) and the shim
  // with its address; remove_sublinks deletes what stack made of them.
  Result<void> ensure_sublinks(const NetworkInfo& info);
  Result<void> remove_sublinks(const NetworkInfo& info);
  Result<void> make_sublink_port(const NetworkInfo& info, const Endpoint& ep, int netns_fd);
  Result<bool> sublinks_missing(const NetworkInfo& info);
  // The endpoints REQUESTS ask for, ADDRESS giving each one's address; no kernel call.
  Result<std::vector<Endpoint>> plan_endpoints(
      std::string_view container, uint64_t generation, const std::vector<EndpointRequest>& requests,
      const std::function<Result<Ipv4>(const EndpointRequest&)>& address);
  // EP's veth with its peer born in NETNS_FD, configured there.
  Result<void> make_port(const Endpoint& ep, int netns_fd);
  // enable_ipv4: false on NETWORK: P goes to IPv6 only; an IPv4 host IP is refused.
  Result<void> ipv6_only_port(std::string_view network, PortMapping& p) const;

  Netlink& kernel_;
  Sublinks* sublinks_ = nullptr;
  Firewall& firewall_;
  Ipam ipam_;
  OverlayPeers& peers_;
  NetworkOptions options_;
  std::map<std::string, NetworkInfo, std::less<>> networks_;
  std::map<std::string, std::vector<Endpoint>, std::less<>> endpoints_;
  std::map<std::string, std::vector<PortMapping>, std::less<>> ports_;
  std::vector<MeshPort> mesh_;
  bool held_ = false;
  bool dirty_ = false;  // changed while held
};

}  // namespace stack::net
