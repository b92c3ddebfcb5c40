// What the network layer needs to make one network, as the desired state carries it from the
// stack file to the plan's EnsureNetwork step. Plain data shared by the planner (which only
// passes it along), the reconciler and the state store; no behaviour, no dependencies.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace stack::model {

struct IpamPool {
  std::string subnet;    // CIDR, "" for one from the pool
  std::string ip_range;  // CIDR within the subnet
  std::string gateway;
  // aux_addresses: name -> an address of SUBNET that no container is ever given (a router or
  // host already there, as docker keeps them out of the pool).
  std::map<std::string, std::string> aux_addresses = {};
};

struct NetworkConfig {
  std::string project;  // "demo"
  std::string key;      // as named in the file: "default"
  std::string name;     // on the host: "demo_default"
  std::string driver = "bridge";  // bridge | overlay
  bool internal = false;
  bool enable_ipv6 = false;  // an IPv6 subnet too (ipam.config's IPv6 entry, or the ULA pool)
  bool enable_ipv4 = true;   // false: IPv6-only (needs enable_ipv6)
  std::vector<IpamPool> ipam;
  std::map<std::string, std::string> driver_opts;  // mtu; overlay: vni, local, peers
  std::map<std::string, std::string> labels;
  std::string config_hash;  // of everything above that shapes the network on the host
};

}  // namespace stack::model
