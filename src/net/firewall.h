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
};

enum class Proto { kTcp, kUdp };

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
};

struct FirewallModel {
  std::vector<FirewallNetwork> networks;
  std::vector<PortMapping> ports;
  // The instance's tables, one name in both families: "stack" for the default root,
  // "stack-<instance id>" for another (table_name in naming.h). Also the comment that tags its
  // rules in Docker's chain.
  std::string table = "stack";
};

// `table ip TABLE { ... }` for MODEL; deterministic (sorted), so equal models render equally.
[[nodiscard]] Result<std::string> render_table(const FirewallModel& model);
// `table bridge TABLE { ... }` keeping ARP for overlay gateways on their own host; "" when
// there is no overlay network.
[[nodiscard]] std::string render_bridge_table(const FirewallModel& model);
// The one transaction that replaces the instance's tables: create-if-missing (so the delete
// cannot fail), delete, re-add. With no network it only removes them.
[[nodiscard]] Result<std::string> render_transaction(const FirewallModel& model);

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
