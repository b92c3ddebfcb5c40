// The nodes of the cluster, read and changed through the Store: registration under a lease
// (refused while another daemon's lease holds the name), the list that `stack node ls` shows
// (a node with labels but no live record is down), and label edits. Blocking: call from the
// cluster agent's threads, never from the daemon's loop. No logging.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cluster/node_record.h"
#include "cluster/store.h"

namespace stack::cluster {

struct NodeStatus {
  NodeRecord record;  // for a down node: its name and labels only
  bool ready = false;  // its record lives (its lease is kept alive)
  bool leader = false;  // it leads the scheduler's election
};

struct NodeList {
  std::vector<NodeStatus> nodes;  // sorted by name
  bool election = false;          // a scheduler election key exists
};

// Writes RECORD (its labels replaced by /stack/node-labels/<name>'s) under LEASE: when the
// name is free, or held by the same daemon_id (a restarted daemon takes its name back at once).
// Another daemon's live record is refused, naming it. Returns the record as written.
[[nodiscard]] Result<NodeRecord> register_node(Store& store, NodeRecord record, LeaseId lease);

[[nodiscard]] Result<NodeList> list_nodes(Store& store);
// An error naming NAME when it has neither a record nor labels.
[[nodiscard]] Result<NodeStatus> inspect_node(Store& store, const std::string& name);
// Edits NAME's labels (and the copy in its live record, keeping its lease) in one
// transaction, retried when another writer came between. NAME must be a known node.
[[nodiscard]] Result<NodeStatus> update_node_labels(Store& store, const std::string& name,
                                                    const Labels& add,
                                                    const std::vector<std::string>& remove);

// The node a scheduler leader's value names: the value itself, or its "node" field when it
// is a JSON object.
[[nodiscard]] std::string leader_node(const std::string& value);

}  // namespace stack::cluster
