// IP address management: subnets for networks (the user's, or picked from a pool so that they
// overlap nothing routed on the host) and addresses for containers. Pure: the host's routes
// come in as a list, and allocations persist through an AddressStore the caller provides.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/address.h"

namespace stack::net {

// Where default subnets come from: POOL split into blocks of /SIZE, taken lowest first.
// The default, 10.89.0.0/16 in /24s, gives 256 networks of 253 containers each, away from
// Docker's 172.17.0.0/16 + 172.18-31 and podman's 10.88.0.0/16, so all three coexist.
struct SubnetPool {
  Cidr pool{Ipv4{(10u << 24) | (89u << 16)}, 16};
  int size = 24;
};

// One network's addressing. For an overlay network, every host shares SUBNET and GATEWAY and
// allocates only from its own IP_RANGE, so no two hosts hand out the same address.
struct NetworkAddressing {
  std::string network;           // the caller's key for the network, e.g. "demo_default"
  Cidr subnet;                   // network address, e.g. 10.89.0.0/24
  Ipv4 gateway;                  // the bridge's address, by default the first host address
  std::optional<Cidr> ip_range;  // containers get addresses only from here when set
  // aux_addresses, by name: inside the subnet, never handed out (taken by something that is
  // not a container, as docker keeps them out of its pool).
  std::map<std::string, Ipv4> reserved = {};
};

// What a user (or compose's ipam.config) asked for; unset fields are chosen.
struct AddressingRequest {
  std::string network;
  std::optional<Cidr> subnet = std::nullopt;
  std::optional<Cidr> ip_range = std::nullopt;
  std::optional<Ipv4> gateway = std::nullopt;
  std::map<std::string, Ipv4> reserved = {};  // aux_addresses
};

// Validates REQUEST (ip_range, gateway and the reserved addresses inside the subnet, subnet
// neither /31 nor /32) and
// fills what is missing. A missing subnet is the first block of POOL that overlaps none of
// TAKEN (other networks' subnets and the host's routed subnets).
[[nodiscard]] Result<NetworkAddressing> plan_addressing(const AddressingRequest& request,
                                                        const SubnetPool& pool,
                                                        const std::vector<Cidr>& taken);

// Fails naming both networks when two subnets overlap:
// "subnet 10.1.0.0/16 of network a overlaps 10.1.2.0/24 of network b".
[[nodiscard]] Result<void> check_overlaps(const std::vector<NetworkAddressing>& networks);

// A network's IPv6 side (enable_ipv6). A container's IPv6 address is not allocated apart: it is
// its IPv4 address's position in the IPv4 subnet, placed in SUBNET (10.89.3.7 -> <subnet>::7),
// unless it asked for one (ipv6_address). So the IPv4 allocation the store keeps decides it,
// and a restarted daemon finds the same one.
struct Addressing6 {
  Cidr6 subnet;  // network address, e.g. fd3a:1b2c:4d5e:9f01::/64
  Ipv6 gateway;  // the bridge's address, by default <subnet>::1
  std::map<std::string, Ipv6> reserved = {};  // the IPv6 entry's aux_addresses, by name
  auto operator<=>(const Addressing6&) const = default;
};

// A container's IPv6 address is the image of its IPv4 one: each of RESERVED6 (IPv6
// aux_addresses of SUBNET6) that is such an image keeps its IPv4 original out of A's pool, as
// "NAME (IPv6)".
void reserve_images(const std::map<std::string, Ipv6>& reserved6, const Cidr6& subnet6,
                    NetworkAddressing& a);

// The instance's default IPv6 pool: a ULA /48 (RFC 4193, fd00::/8 and a 40-bit global ID) taken
// from a hash of INSTANCE, so that two instances on one host do not collide.
[[nodiscard]] Cidr6 ula_pool(std::string_view instance);

// Validates the user's SUBNET (large enough for every IPv4 host of a /V4_PREFIX network to have
// its image) and GATEWAY (inside, not the network address), or chooses a /64 of POOL: the one
// NETWORK's name hashes to, the next one while it overlaps one of TAKEN.
[[nodiscard]] Result<Addressing6> plan_ipv6(std::string_view network, int v4_prefix,
                                            const std::optional<Cidr6>& subnet,
                                            const std::optional<Ipv6>& gateway, const Cidr6& pool,
                                            const std::vector<Cidr6>& taken);

// A container's IPv6 address on a network: STATIC (inside the subnet, neither the network
// address nor the gateway), else the image of its IPv4 address V4 (see Addressing6).
[[nodiscard]] Result<Ipv6> ipv6_address_for(const Addressing6& v6, const Cidr& v4_subnet, Ipv4 v4,
                                            const std::optional<Ipv6>& static_address);

struct Allocation {
  std::string network;
  std::string owner;  // the container (or its endpoint) holding it, e.g. "demo-web-1"
  Ipv4 address;
  auto operator<=>(const Allocation&) const = default;
};

// Where allocations live across restarts. The integrator implements it on the state store;
// each call is one transaction.
class AddressStore {
 public:
  virtual ~AddressStore() = default;
  [[nodiscard]] virtual Result<std::vector<Allocation>> load(std::string_view network) = 0;
  [[nodiscard]] virtual Result<void> save(const Allocation& allocation) = 0;
  [[nodiscard]] virtual Result<void> erase(std::string_view network, std::string_view owner) = 0;
};

class MemoryAddressStore final : public AddressStore {
 public:
  Result<std::vector<Allocation>> load(std::string_view network) override;
  Result<void> save(const Allocation& allocation) override;
  Result<void> erase(std::string_view network, std::string_view owner) override;
  [[nodiscard]] const std::vector<Allocation>& all() const { return rows_; }

 private:
  std::vector<Allocation> rows_;
};

// Addresses of every known network, written through to the store before they are returned, so
// a daemon restarted at any point never hands out an address twice.
class Ipam {
 public:
  explicit Ipam(AddressStore& store) : store_(store) {}

  // Registers a network and loads its allocations. Fails if it overlaps a registered one.
  [[nodiscard]] Result<void> add_network(const NetworkAddressing& addressing);
  // Forgets the network and all its allocations (in the store too).
  [[nodiscard]] Result<void> remove_network(std::string_view network);
  [[nodiscard]] const NetworkAddressing* find(std::string_view network) const;
  [[nodiscard]] std::vector<Cidr> subnets() const;

  // OWNER's address on NETWORK: the one it already holds, else STATIC (ipv4_address, which must
  // be in the subnet and free), else the lowest free one of the range. Network, broadcast,
  // gateway and reserved (aux_addresses) addresses are never handed out.
  [[nodiscard]] Result<Ipv4> allocate(std::string_view network, std::string_view owner,
                                      std::optional<Ipv4> static_address = std::nullopt);
  // Releases OWNER's address; a no-op when it holds none.
  [[nodiscard]] Result<void> release(std::string_view network, std::string_view owner);
  [[nodiscard]] std::optional<Ipv4> address_of(std::string_view network,
                                               std::string_view owner) const;

 private:
  struct Net {
    NetworkAddressing addressing;
    std::map<std::string, Ipv4, std::less<>> by_owner;
    std::set<Ipv4> used;
    uint32_t next = 0;  // where the next search starts: addresses are not reused at once
  };
  Net* get(std::string_view network);

  AddressStore& store_;
  std::map<std::string, Net, std::less<>> nets_;
};

}  // namespace stack::net
