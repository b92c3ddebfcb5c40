// A service's placement as the scheduler takes it, from the deploy fields of a loaded stack
// file: deploy.mode, replicas, placement constraints (parsed as Swarm parses them),
// preferences, max_replicas_per_node, reservations. Pure; errors name file:line:column.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cluster/scheduler.h"
#include "common/result.h"

namespace stack::spec {
struct Stack;
struct Service;
}  // namespace stack::spec

namespace stack::cluster {

// "node.labels.zone == east", "node.role!=manager": KEY OP VALUE, spaces allowed around OP.
// Keys: node.hostname, node.id, node.role, node.labels.<name>. The error says what is wrong.
[[nodiscard]] Result<Constraint> parse_constraint(std::string_view text);

// A spread preference's descriptor, "node.labels.zone": the label name ("zone").
[[nodiscard]] Result<std::string> parse_spread(std::string_view text);

// SERVICE's placement (project: STACK's name). The error holds every problem, one per line,
// as "file:line:col: services.web.deploy...: why".
[[nodiscard]] Result<ServicePlacement> placement_of(const spec::Stack& stack,
                                                    const spec::Service& service);

// Every service's, in file order; the error holds every problem of every service.
[[nodiscard]] Result<std::vector<ServicePlacement>> placements_of(const spec::Stack& stack);

}  // namespace stack::cluster
