// The cluster's published ports (issue 18, as Swarm's): each port the routing mesh serves is
// claimed in the store by a transaction (/stack/ingress/ports/<proto>/<port> → owner, created
// only if absent), so that two services never get the same one: a fixed one another service
// holds is refused, one published without a host port gets the lowest free of 30000-32767, the
// same on every node. Kept while the project has the port, freed on down.
// Store work only: blocking, for the node agent's threads, never the daemon's loop.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cluster/store.h"
#include "common/result.h"

namespace stack::cluster {

inline constexpr int kIngressPortFirst = 30000, kIngressPortLast = 32767;
inline std::string ingress_ports_prefix() { return "/stack/ingress/ports/"; }

// One port a project needs: OWNER names it within the project, stable across ups
// ("<service>/<target>/<proto>", "#2" for a second one alike; "<service>@<port>/<proto>" for a
// fixed one); PROTO "tcp", "udp" or "sctp"; FIXED the published port, 0 for an ephemeral one.
struct PortWant {
  std::string owner;
  std::string proto;
  int fixed = 0;
};

// PROJECT's meshed ports from now on: a fixed one unless another owner holds it (an error
// naming the holder), an ephemeral one the port it holds already, else the lowest free one of
// its protocol (a lost race is retried on a fresh read); what PROJECT held and no longer wants
// is freed in the same transaction. Returns owner -> port.
[[nodiscard]] Result<std::map<std::string, int>> claim_ingress_ports(
    Store& store, const std::string& project, const std::vector<PortWant>& wants);
// Frees every port PROJECT holds (its down).
[[nodiscard]] Result<void> release_ingress_ports(Store& store, const std::string& project);
// Every claimed port: "<proto>/<port>" -> "<project>/<owner>".
[[nodiscard]] Result<std::map<std::string, std::string>> ingress_ports(Store& store);

}  // namespace stack::cluster
