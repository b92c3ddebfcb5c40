// Builders for the scheduler's tests and its simulation: nodes and services in one line each
// (a_node("a").label("zone", "east").cpus(2)), and renderings of a schedule that tables
// compare ("a=2 b=2 c=2", "1=a 2=b"). Header-only; no I/O.
#pragma once

#include <cmath>
#include <map>
#include <string>

#include "cluster/scheduler.h"

namespace stack::test {

struct NodeBuilder {
  cluster::Node node;
  NodeBuilder& label(const std::string& k, const std::string& v) {
    node.labels[k] = v;
    return *this;
  }
  NodeBuilder& cpus(double n) {
    node.capacity.nano_cpus = std::llround(n * 1e9);
    return *this;
  }
  NodeBuilder& memory_mib(int64_t m) {
    node.capacity.memory_bytes = m << 20;
    return *this;
  }
  NodeBuilder& role(const std::string& r) {
    node.role = r;
    return *this;
  }
  NodeBuilder& down() {
    node.ready = false;
    return *this;
  }
  operator cluster::Node() const { return node; }  // NOLINT: a builder converts implicitly
};

// A node with room for anything the tests reserve unless told otherwise.
inline NodeBuilder a_node(const std::string& name) {
  NodeBuilder b;
  b.node.name = name;
  b.node.capacity = {64'000'000'000, int64_t{256} << 30};
  return b;
}

struct ServiceBuilder {
  cluster::ServicePlacement s;
  ServiceBuilder& replicas(int n) {
    s.replicas = n;
    return *this;
  }
  ServiceBuilder& global() {
    s.global = true;
    return *this;
  }
  ServiceBuilder& constraint(const std::string& key, const std::string& value, bool eq = true) {
    s.constraints.push_back({key, eq ? cluster::Constraint::Op::eq : cluster::Constraint::Op::ne,
                             value, key + (eq ? "==" : "!=") + value});
    return *this;
  }
  ServiceBuilder& spread(const std::string& label) {
    s.spread.push_back(label);
    return *this;
  }
  ServiceBuilder& max_per_node(int n) {
    s.max_replicas_per_node = n;
    return *this;
  }
  ServiceBuilder& reserve_cpus(double n) {
    s.reservations.nano_cpus = std::llround(n * 1e9);
    return *this;
  }
  ServiceBuilder& reserve_mib(int64_t m) {
    s.reservations.memory_bytes = m << 20;
    return *this;
  }
  operator cluster::ServicePlacement() const { return s; }  // NOLINT
};

inline ServiceBuilder a_service(const std::string& name, const std::string& project = "p") {
  ServiceBuilder b;
  b.s.project = project;
  b.s.name = name;
  return b;
}

// Slots per node of one service: "a=2 b=2 c=2" (nodes by name, empty ones left out).
inline std::string per_node(const cluster::Assignments& a, const std::string& key) {
  std::map<std::string, int> count;
  if (auto it = a.find(key); it != a.end())
    for (const auto& [slot, node] : it->second) count[node]++;
  std::string out;
  for (const auto& [node, n] : count) {
    if (!out.empty()) out += ' ';
    out += node;
    out += '=';
    out += std::to_string(n);
  }
  return out;
}

// Slot by slot: "1=a 2=b".
inline std::string slots(const cluster::Assignments& a, const std::string& key) {
  std::string out;
  if (auto it = a.find(key); it != a.end())
    for (const auto& [slot, node] : it->second) {
      if (!out.empty()) out += ' ';
      out += std::to_string(slot);
      out += '=';
      out += node;
    }
  return out;
}

}  // namespace stack::test
