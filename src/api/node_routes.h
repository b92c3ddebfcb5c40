// The API's cluster node routes: GET /v1/nodes, GET /v1/nodes/NAME, GET /v1/nodes/NAME/ps (the
// slots assigned to it), POST /v1/nodes/NAME/update ({"label_add": {K: V}, "label_rm": [K]}). The store is queried on the cluster agent's thread,
// never on the loop. Private to src/api; routes.cpp hands these paths over.
#pragma once

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "api/routes.h"

namespace stack::cluster {
class NodeAgent;
}

namespace stack::api {

[[nodiscard]] bool is_node_route(const Target& target);
reconciler::awaitable<Reply> node_route(reconciler::Daemon& daemon, const Request& request,
                                        const Target& target, const nlohmann::json& body);

// This daemon's node and its agent's state ({node, state: joining|ready|refused|unreachable,
// error}): what GET /v1/version shows of the cluster, without asking the store.
[[nodiscard]] nlohmann::json cluster_agent_json(const cluster::NodeAgent& agent);

// `ps` in a cluster: each of CONTAINERS (this node's, as status_json made them) gets "node",
// and each slot of PROJECT assigned to another node is added as a row in state "unknown"
// with its node and "reported_by" it (its state is that node's to tell), read from the store
// while this node's lease is kept (otherwise this node's rows alone: ps never waits on an
// unreachable etcd). Unchanged outside a cluster.
reconciler::awaitable<void> add_cluster_rows(reconciler::Daemon& daemon, const std::string& project,
                                             nlohmann::json& containers);

}  // namespace stack::api
