// What the network code needs from the kernel's rtnetlink, nothing more: bridges, veths born in
// a container's namespace, vxlan, FDB and neighbour entries, addresses and routes, sysctls.
// Implementations act on the network namespace they were created in (the "host").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/address.h"

namespace stack::net {

struct BridgeConfig {
  std::string name;  // "stk-1a2b3c4d"
  Cidr gateway;      // the bridge's own address, e.g. 10.89.0.1/24
  int mtu = 1500;
  std::optional<Mac> mac;  // fixed, so the bridge's address does not follow its ports
  std::optional<Cidr6> gateway6 = std::nullopt;  // enable_ipv6: fd..::1/64, without DAD
  bool address4 = true;  // false (enable_ipv4: false): GATEWAY is not put on the bridge
};

// A veth pair whose peer is born in NETNS_FD (IFLA_NET_NS_FD in the same RTM_NEWLINK: 0.5 ms,
// against ~35 ms to create it here and move it). The host end is
// enslaved to BRIDGE with hairpin on (so a container can reach itself through a published port).
// The host end comes up at birth; the peer cannot (ENOTCONN): configure_interface brings it up.
struct VethConfig {
  std::string host_name;  // "stk0123456789"
  std::string bridge;
  int netns_fd = -1;      // an open /proc/PID/ns/net or /run/netns/NAME
  std::string peer_name;  // "eth0"
  int mtu = 1500;
  // The peer's MAC, set in the same message: known (and in the firewall's anti-spoofing rules)
  // before the link exists. Unset: the kernel picks a random one.
  std::optional<Mac> peer_mac = std::nullopt;
};

// An interface inside a container's namespace: its address, MTU, up, and (optionally) the
// default route through GATEWAY.
struct InterfaceConfig {
  int netns_fd = -1;
  std::string name;  // "eth0"
  Cidr address;      // 10.89.0.2/24
  int mtu = 1500;
  std::optional<Ipv4> gateway;
  // enable_ipv6: the IPv6 address (added without DAD, usable at once) and default route.
  std::optional<Cidr6> address6 = std::nullopt;
  std::optional<Ipv6> gateway6 = std::nullopt;
  // link_local_ips: more addresses on the interface (no route through them).
  std::vector<Cidr> extra = {};
  std::vector<Cidr6> extra6 = {};
  bool address4 = true;  // false (enable_ipv4: false): no IPv4 ADDRESS, no IPv4 route
};

struct VxlanConfig {
  std::string name;  // "stx-4242"
  uint32_t vni = 0;
  uint16_t port = 4789;
  Ipv4 local;  // this host's underlay address
  std::string bridge;
  int mtu = 1450;  // 1500 underlay minus the 50-byte VXLAN header
  // ARP proxy (IFLA_VXLAN_PROXY): the device answers ARP requests from its own neighbour
  // entries and sends none across the underlay. A cluster overlay (every remote endpoint known
  // with its MAC) needs it; static peers (head-end replication) must not have it: it swallows
  // ARP requests it has no entry for. Set on creation only.
  bool proxy = false;
};

struct LinkInfo {
  std::string name;
  std::string kind;    // "bridge", "veth", "vxlan", "" for a plain device
  std::string master;  // the bridge it is enslaved to, "" when none
  int mtu = 0;
  bool up = false;
  Mac mac = {};
};

class Netlink {
 public:
  virtual ~Netlink() = default;

  // Creates the bridge if missing; sets its MTU, MAC, address and brings it up. Idempotent.
  // Fails if NAME exists and is not a bridge.
  [[nodiscard]] virtual Result<void> ensure_bridge(const BridgeConfig& config) = 0;
  // Fails with ENODEV when there is no such link. Deleting a veth costs ~35 ms (RCU): the normal
  // path never does; a container's veth goes with its namespace.
  [[nodiscard]] virtual Result<void> delete_link(std::string_view name) = 0;
  [[nodiscard]] virtual Result<std::optional<LinkInfo>> get_link(std::string_view name) = 0;
  // The same inside the namespace NETNS_FD (a container's).
  [[nodiscard]] virtual Result<std::optional<LinkInfo>> get_link_in(int netns_fd,
                                                                    std::string_view name) = 0;
  // Links whose name starts with PREFIX, sorted by name: drift and leak checks.
  [[nodiscard]] virtual Result<std::vector<LinkInfo>> list_links(std::string_view prefix) = 0;

  // Fails with EEXIST when HOST_NAME exists.
  [[nodiscard]] virtual Result<void> create_veth(const VethConfig& config) = 0;
  // LINK (a veth's host end) enslaved to BRIDGE, up, hairpin on: what create_veth makes, for a
  // port its bridge lost (a deleted bridge releases its ports; they survive). Idempotent.
  [[nodiscard]] virtual Result<void> ensure_port(std::string_view link, std::string_view bridge) = 0;
  // Inside the container's namespace; the address and route are added if missing.
  [[nodiscard]] virtual Result<void> configure_interface(const InterfaceConfig& config) = 0;

  // Creates the vxlan device (nolearning) if missing, enslaved to its bridge, up. Idempotent.
  [[nodiscard]] virtual Result<void> ensure_vxlan(const VxlanConfig& config) = 0;
  // Appends an FDB entry MAC -> REMOTE on the vxlan device (NTF_SELF). An all-zeros MAC is
  // head-end replication: broadcast and unknown frames are copied to every such REMOTE.
  [[nodiscard]] virtual Result<void> append_fdb(std::string_view device, const Mac& mac,
                                                Ipv4 remote) = 0;
  // The remote underlay addresses of DEVICE's all-zeros FDB entries.
  [[nodiscard]] virtual Result<std::vector<Ipv4>> list_fdb_remotes(std::string_view device) = 0;
  // Removes the FDB entry MAC -> REMOTE from the vxlan device; one that is not there is fine.
  [[nodiscard]] virtual Result<void> delete_fdb(std::string_view device, const Mac& mac,
                                                Ipv4 remote) = 0;
  // A permanent neighbour (ARP) entry IP -> MAC on DEVICE, in NETNS_FD (-1: this namespace).
  [[nodiscard]] virtual Result<void> add_neighbour(int netns_fd, std::string_view device, Ipv4 ip,
                                                   const Mac& mac) = 0;
  // Removes IP's neighbour entry from DEVICE in this namespace; one that is not there is fine.
  [[nodiscard]] virtual Result<void> delete_neighbour(std::string_view device, Ipv4 ip) = 0;

  // Every IPv4 address and route destination of this namespace (default route excluded):
  // what a default subnet must not overlap.
  [[nodiscard]] virtual Result<std::vector<Cidr>> list_routed_subnets() = 0;
  // Writes VALUE to /proc/sys/KEY ("net/ipv4/conf/stk-1a2b3c4d/route_localnet"). /proc/sys/net
  // is that of the calling thread's namespace.
  [[nodiscard]] virtual Result<void> set_sysctl(std::string_view key, std::string_view value) = 0;
  [[nodiscard]] virtual Result<std::string> get_sysctl(std::string_view key) = 0;
  // The devices of this namespace's IPv6 default routes ("lo" excluded), sorted, unique: the
  // uplinks that NAT66 replies come in through.
  [[nodiscard]] virtual Result<std::vector<std::string>> ipv6_default_route_devices() = 0;
  // The source address of this namespace's IPv4 default route (of the main table, lowest
  // metric), as `ip route get GATEWAY` gives it: the address a cluster node advertises unless
  // told. nullopt when there is no default route.
  [[nodiscard]] virtual Result<std::optional<Ipv4>> default_route_source() = 0;
};

// The real one, through libnl-3, on the calling thread's network namespace at creation.
[[nodiscard]] Result<std::unique_ptr<Netlink>> make_libnl_netlink();

}  // namespace stack::net
