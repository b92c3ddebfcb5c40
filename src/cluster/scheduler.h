// The cluster's scheduler: which node runs each replica slot of each service, as Swarm decides
// it (constraints, spread preferences, max replicas per node, reservations, global mode). A pure
// function of its inputs like the planner: no store, no clock, no I/O, same input same output
// (ties broken by name), so it is tested by tables and simulated at thousands of nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stack::cluster {

struct Resources {
  int64_t nano_cpus = 0;  // 1e9 = one CPU, as Swarm counts (no rounding drift over sums)
  int64_t memory_bytes = 0;
};

// A node as the scheduler sees it (from /stack/nodes/<node> and /stack/node-labels/<node>).
struct Node {
  std::string name;             // unique: node.hostname
  std::string id;               // node.id; empty: the name
  std::string role = "worker";  // node.role: manager | worker
  std::map<std::string, std::string> labels;
  Resources capacity;  // what reservations are counted against
  bool ready = true;   // false: its lease expired or it is draining: no slot stays on it
};

// One `deploy.placement.constraints` entry: KEY == VALUE or KEY != VALUE. Values compare
// case-insensitively, label names case-sensitively; a missing label is the empty value.
struct Constraint {
  enum class Op { eq, ne };
  std::string key;  // node.hostname, node.id, node.role, node.labels.<name>
  Op op = Op::eq;
  std::string value;
  std::string text;  // as written, for messages
};

// What the scheduler needs of one service (cluster/placement.h makes it from the stack file).
struct ServicePlacement {
  std::string project;
  std::string name;
  bool global = false;  // deploy.mode global: one slot on every eligible node
  int replicas = 1;     // replicated only
  std::vector<Constraint> constraints;
  std::vector<std::string> spread;  // label names of `spread: node.labels.X`, outermost first
  int max_replicas_per_node = 0;    // 0: no limit
  Resources reservations;
};

// slot → node of one service. Replicated slots are 1..replicas (gaps after a scale-down, as
// Swarm leaves them); a global service's slots are numbered the same way, one per node.
using SlotMap = std::map<int, std::string>;
// "project/service" → its slots: /stack/assign/<project>/<service>/<slot> → node.
using Assignments = std::map<std::string, SlotMap>;

[[nodiscard]] std::string service_key(const std::string& project, const std::string& service);

struct SchedulerInput {
  std::vector<Node> nodes;
  std::vector<ServicePlacement> services;
  Assignments current;  // what the store holds now; services absent from SERVICES are dropped
};

// A service that could not be fully placed: MISSING slots wait, for REASON in Swarm's words
// ("no suitable node (scheduling constraints not satisfied on 2 nodes; insufficient resources
// on 1 node)").
struct Unplaced {
  std::string service;  // service_key
  int missing = 0;
  std::string reason;
};

struct Schedule {
  Assignments assignments;
  std::vector<Unplaced> unplaced;  // by service key
  // Slot by slot against the current assignments.
  size_t kept = 0;     // same slot, same node
  size_t placed = 0;   // a slot that had no node
  size_t moved = 0;    // a slot whose node changed (not ready, no longer eligible, no room)
  size_t removed = 0;  // a slot gone: scaled down, a global service's node gone, a service gone
};

// The new assignments. Rules (Swarm's): a slot stays where it is while its node is ready and
// still satisfies the constraints, max_replicas_per_node and the reservations (no churn: a
// node joining moves nothing); a replicated service scales down from the node holding most of
// its slots; new and moved slots go, level by level of the spread preferences, to the branch
// holding fewest of the service's slots, then to the node holding fewest of them, then fewest
// slots in all, then by name; reservations are never overcommitted; a global service has one
// slot on every ready node that satisfies its constraints and has room.
[[nodiscard]] Schedule schedule(const SchedulerInput& input);

// What to write to the store to go from BEFORE to AFTER, by key, then slot: NODE empty is a
// delete of the slot's key.
struct AssignmentChange {
  std::string service;  // service_key
  int slot = 0;
  std::string node;
};
[[nodiscard]] std::vector<AssignmentChange> changes(const Assignments& before,
                                                    const Assignments& after);

// Whether NODE satisfies every constraint (Swarm's matching rules).
[[nodiscard]] bool satisfies(const std::vector<Constraint>& constraints, const Node& node);

}  // namespace stack::cluster
