// The network fields of a service that need more than their shape: links and external_links
// (DNS aliases seen by the linking service only), dns servers, MAC addresses, interface names
// and the endpoint driver_opts the bridge driver takes. Pure: checks and reads, no host state.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "spec/diagnostics.h"
#include "spec/stack.h"

namespace stack::spec {

// Endpoint driver_opts of a network attachment that stack's bridge driver takes (docker's
// names): the interface's name and MAC, as interface_name and mac_address say them.
inline constexpr const char* kEndpointIfnameOpt = "com.docker.network.endpoint.ifname";
inline constexpr const char* kEndpointMacOpt = "com.docker.network.endpoint.macaddress";

// SERVICE's links ("service[:alias]") and external_links ("container[:alias]") as
// (alias, target) pairs, in file order; an entry without an alias is its own alias.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> link_aliases(const Service& service);

// The name on the host of STACK's network KEY: its `name:` (or, external, its key), else
// "<project>_<key>" (the implicit default network too).
[[nodiscard]] std::string network_name(const Stack& stack, const std::string& key);

// Every problem of the network fields of STACK's services, at the key that says it: a link to
// no service, a dns entry that is not an IP address, a malformed or multicast MAC, a MAC given
// twice or to replicas, an invalid or repeated interface name, an endpoint driver option the
// bridge driver does not take.
void check_network_fields(const Stack& stack, Diagnostics& diag);

// Warnings at load about macvlan and ipvlan networks: a service's ports on such networks only
// (not published, as docker), a mode in which its containers cannot reach the embedded DNS.
void warn_network_drivers(const Stack& stack, Diagnostics& diag);

}  // namespace stack::spec
