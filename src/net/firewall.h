// Firewall and NAT for one stack instance's networks: its own tables (`ip` and `bridge`, named
// after the instance) rendered from a model (pure) and applied in one nftables transaction; plus
// the accept rules, tagged with the instance, a Docker host needs in its `ip filter` FORWARD
// chain. Never touches another instance's tables or rules. Acts on the NftRunner's namespace.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/address.h"
#include "net/netlink.h"

namespace stack::net {

struct FirewallNetwork {
  std::string bridge;  // "stk-1a2b3c4d"
  Cidr subnet;
  bool internal = false;  // no masquerade, nothing in or out of the bridge
  // Overlay only: every host's bridge holds the same GATEWAY address on one L2 segment, so ARP
  // for it must not cross the vxlan device (a container would reach another host's gateway, and
  // its DNS server).
  std::string vxlan = {};
  Ipv4 gateway = {};
  std::optional<Cidr6> subnet6 = std::nullopt;  // enable_ipv6: `table ip6` NAT and filtering
};

// sctp is matched and DNATed like tcp and udp (nf_conntrack's sctp tracker, built into the
// kernel even where CONFIG_IP_SCTP is not); like docker, no userland proxy serves it.
enum class Proto { kTcp, kUdp, kSctp };

// One `ports:` entry: HOST_IP (any local address when unset) : HOST_PORT[-HOST_PORT_END] ->
// CONTAINER_IP : CONTAINER_PORT[-CONTAINER_PORT_END]. A host range maps onto an equal container
// range port by port, or onto a single container port.
struct PortMapping {
  std::optional<Ipv4> host_ip;
  uint16_t host_port = 0;
  uint16_t host_port_end = 0;  // 0: a single port
  Proto proto = Proto::kTcp;
  Ipv4 container_ip;
  uint16_t container_port = 0;
  uint16_t container_port_end = 0;
  // The container's IPv6 address when it has one: the port is published on the host's IPv6
  // addresses too (not on ::1: see render_table6). HOST_IP6 limits it to one, and to IPv6.
  std::optional<Ipv6> container_ip6 = std::nullopt;
  std::optional<Ipv6> host_ip6 = std::nullopt;
};

// A container's port on a bridge: frames entering through VETH must carry MAC and ADDRESS as
// their source (anti-spoofing).
struct FirewallEndpoint {
  std::string veth;  // the host end, "stk0123456789"
  Mac mac;           // the container's interface
  Ipv4 address;
  std::optional<Ipv6> address6 = std::nullopt;  // the port's IPv6 source, when it has one
};

// A published port of a cluster service, answered on every node of the cluster (the routing
// mesh, reconciler/cluster_mesh.h): PORT on any local address is DNATed to one of BACKENDS
// (round robin) on TARGET, across the service's overlay network (bridge BRIDGE here).
// Connections to another node's replica leave with SNAT, this node's own address on the overlay
// as their source, so that the replies come back through this node; to a local replica they are
// masqueraded to the gateway. No backend: the port drops (it falls through to no local port).
struct MeshBackend {
  Ipv4 address;
  bool local = false;  // a replica on this node
  auto operator<=>(const MeshBackend&) const = default;
};
struct MeshPort {
  Proto proto = Proto::kTcp;
  uint16_t port = 0;
  uint16_t target = 0;
  std::string bridge;
  Ipv4 snat;
  std::vector<MeshBackend> backends;
  bool operator==(const MeshPort&) const = default;
};
// The mark the mesh's DNAT gives a connection's first packet, for its SNAT in postrouting.
inline constexpr uint32_t kMeshMark = 0x53544d00;  // "STM\0"

struct FirewallModel {
  std::vector<FirewallNetwork> networks;
  std::vector<PortMapping> ports;
  std::vector<FirewallEndpoint> endpoints;
  std::vector<MeshPort> mesh;  // before PORTS: a meshed port shadows a local one
  // The instance's tables, one name in both families: "stack" for the default root,
  // "stack-<instance id>" for another (table_name in naming.h). Also the comment that tags its
  // rules in Docker's chain.
  std::string table = "stack";
};

// `table ip TABLE { ... }` for MODEL; deterministic (sorted), so equal models render equally.
[[nodiscard]] Result<std::string> render_table(const FirewallModel& model);
// The mesh's lines of `chain published` and of `chain postrouting` (render_table puts them
// first in each); deterministic. Fails on a port 0.
struct MeshRules {
  std::string published, postrouting;
};
[[nodiscard]] Result<MeshRules> render_mesh(const std::vector<MeshPort>& mesh);
// `table ip6 TABLE { ... }` for MODEL's networks with IPv6: published ports, NAT66 masquerade,
// isolation. "" when none has IPv6.
[[nodiscard]] Result<std::string> render_table6(const FirewallModel& model);
// `table bridge TABLE { ... }`: anti-spoofing on every container port (IPv4 and ARP only, its
// own MAC and IPv4 address as source and ARP sender), and ARP for overlay gateways kept on their
// own host. "" when there is no network.
[[nodiscard]] std::string render_bridge_table(const FirewallModel& model);
// The one transaction that replaces the instance's tables: create-if-missing (so the delete
// cannot fail), delete, re-add. With no network it only removes them.
[[nodiscard]] Result<std::string> render_transaction(const FirewallModel& model);
// The transaction that adds ADD to (or removes REMOVE from) the anti-spoofing sets of TABLE
// (which must exist): what one container's start or exit changes, without re-writing the
// rest, whose cost grows with every container (bench/bench_firewall).
[[nodiscard]] std::string render_endpoint_change(std::string_view table,
                                                 const std::vector<FirewallEndpoint>& add,
                                                 const std::vector<FirewallEndpoint>& remove);

// Runs nft command text in one transaction; returns what nft printed (for list commands).
class NftRunner {
 public:
  virtual ~NftRunner() = default;
  [[nodiscard]] virtual Result<std::string> run(std::string_view commands,
                                                bool with_handles = false) = 0;
};
// The real one, through libnftables, on the calling thread's namespace.
[[nodiscard]] Result<std::unique_ptr<NftRunner>> make_libnftables();

// What a Docker host's `ip filter` table does to stack's traffic.
struct DockerForward {
  bool forward_drop = false;  // `ip filter FORWARD` exists with policy drop
  bool br_netfilter = false;  // net.bridge.bridge-nf-call-iptables=1: bridged frames pass it too
  std::string chain;          // where stack's accepts go: "DOCKER-USER" if present, else "FORWARD"
};

class Firewall {
 public:
  // KERNEL is used only to read sysctls (br_netfilter).
  Firewall(NftRunner& nft, Netlink& kernel) : nft_(nft), kernel_(kernel) {}

  // Makes the instance's tables exactly MODEL, atomically; removes them when MODEL has no
  // network. On a Docker host, also inserts (or, with no network, removes) the instance's
  // accept rules in Docker's chain, and logs it; other instances' rules are left alone.
  [[nodiscard]] Result<void> apply(const FirewallModel& model);
  // Runs render_endpoint_change; fails if the sets are not as the model says (the caller then
  // applies the whole model).
  [[nodiscard]] Result<void> change_endpoints(std::string_view table,
                                              const std::vector<FirewallEndpoint>& add,
                                              const std::vector<FirewallEndpoint>& remove);
  [[nodiscard]] Result<DockerForward> observe_docker_forward();
  // The ruleset of `table ip TABLE` as nft prints it, "" when there is none.
  [[nodiscard]] Result<std::string> observe_table(std::string_view table);

 private:
  Result<void> ensure_docker_accepts(bool wanted, std::string_view tag);

  NftRunner& nft_;
  Netlink& kernel_;
};

// The rules an instance inserts in Docker's chain: bridged and routed traffic of stack's bridges,
// each tagged `comment "TAG"` (its table name), so that it removes its own only.
std::vector<std::string> docker_accept_rules(std::string_view tag);

}  // namespace stack::net
