// Cluster IPAM: a cluster network's subnet and its addresses, allocated in the store so that no
// two nodes ever hand out the same address: each address is a key created only if absent
// (/stack/ipam/<network>/addr/<ip> → owner), and a conflict is retried on another address.
// Touches nothing on the host; NetworkManager's per-host Ipam stays as it is.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "cluster/store.h"
#include "net/address.h"

namespace stack::cluster {

struct ClusterSubnet {
  net::Cidr subnet;    // network address, e.g. 10.90.0.0/24
  net::Ipv4 gateway;   // every node's bridge shares it; never handed out
  bool operator==(const ClusterSubnet&) const = default;
};

struct ClusterAllocation {
  net::Ipv4 address;
  std::string owner;
  bool operator==(const ClusterAllocation&) const = default;
};

class ClusterIpam {
 public:
  explicit ClusterIpam(Store& store) : store_(store) {}

  // Records NETWORK's subnet unless one is recorded already; returns the recorded one. A node
  // asking for a different subnet gets an error naming both (the first one recorded stays).
  // GATEWAY defaults to the subnet's first host address.
  [[nodiscard]] Result<ClusterSubnet> ensure_subnet(const std::string& network,
                                                    const net::Cidr& subnet,
                                                    std::optional<net::Ipv4> gateway = {});
  [[nodiscard]] Result<ClusterSubnet> subnet(const std::string& network);

  // OWNER's address on NETWORK: the one it holds already, else STATIC (which must be in the
  // subnet and free), else a free one chosen at random (so that nodes allocating at once
  // rarely collide; a collision is retried). OWNER names the holder cluster-wide, e.g.
  // "<node>/<container>". LEASE (the node's; 0: none) holds the address: it is released when
  // the node's lease expires. An address OWNER holds under another lease (a daemon that
  // registered again) is moved under LEASE.
  [[nodiscard]] Result<net::Ipv4> allocate(const std::string& network, const std::string& owner,
                                           std::optional<net::Ipv4> static_address = {},
                                           LeaseId lease = 0);
  // Releases what OWNER holds on NETWORK (never an address another owner holds by then).
  [[nodiscard]] Result<void> release(const std::string& network, const std::string& owner);
  [[nodiscard]] Result<std::vector<ClusterAllocation>> allocations(const std::string& network);

  // How many create-if-absent transactions lost a race since construction (for tests and the
  // simulation's figures).
  [[nodiscard]] int conflicts() const { return conflicts_; }

 private:
  Store& store_;
  std::atomic<int> conflicts_ = 0;
};

}  // namespace stack::cluster
