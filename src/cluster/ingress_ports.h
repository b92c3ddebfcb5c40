// The cluster's ephemeral published ports (issue 18, as Swarm's): a port published without a
// host port gets one from 30000-32767, the same on every node, claimed in the store by a
// transaction (/stack/ingress/ports/<proto>/<port> → owner, created only if absent) so that two
// services never get the same one; kept while the project has the port, freed on down.
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

// One ephemeral port a project needs: OWNER names it within the project, stable across ups
// ("<service>/<target>/<proto>", "#2" for a second one alike); PROTO "tcp", "udp" or "sctp".
struct PortWant {
  std::string owner;
  std::string proto;
  bool operator<(const PortWant& o) const { return owner < o.owner; }
};

// PROJECT's ephemeral ports from now on: the port each of WANTS holds already, else the lowest
// free one of its protocol (a lost race is retried on a fresh read); what PROJECT held and no
// longer wants is freed in the same transaction. Returns owner -> port.
[[nodiscard]] Result<std::map<std::string, int>> claim_ingress_ports(
    Store& store, const std::string& project, const std::vector<PortWant>& wants);
// Frees every port PROJECT holds (its down).
[[nodiscard]] Result<void> release_ingress_ports(Store& store, const std::string& project);
// Every claimed port: "<proto>/<port>" -> "<project>/<owner>".
[[nodiscard]] Result<std::map<std::string, std::string>> ingress_ports(Store& store);

}  // namespace stack::cluster
