// The scheduler at cluster scale, in process (no store, no daemon, no host change): 1,000
// simulated nodes and 20,000 containers in 2,000 services with mixed constraints, spread,
// reservations and global services; the time to place them all, then to react to a node lost
// and a node joining (slots moved, keys to write), and how that grows at 100 / 1,000 / 5,000
// nodes. Figures go to stdout: run build/tests/sim_tests to read them.
#include <doctest/doctest.h>
#include <time.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cluster/scheduler.h"
#include "support/cluster_builders.h"

using namespace stack;
using namespace stack::test;

namespace {

struct Cluster {
  std::vector<cluster::Node> nodes;
  std::vector<cluster::ServicePlacement> services;
  size_t containers = 0;
};

// PREFIX then N ("z" 2 → "z2"); not "z" + std::to_string(n), which GCC 12 warns about wrongly.
std::string named(const char* prefix, int n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}

std::string node_name(int i) {
  char name[32];
  std::snprintf(name, sizeof name, "node-%05d", i);
  return name;
}

// N nodes in 3 zones and 20-node racks, a quarter with SSDs, three managers, a fifth of them
// small; 2N services for 20N containers: three global (every node, SSD nodes, zone z0), the
// rest replicated with every 5th pinned to a zone, every 7th to SSDs, every 11th off the
// managers, every 4th spread over zones, every 3rd reserving CPU and memory, every 13th at
// most 2 per node. The last service takes what is left to make 20N.
Cluster make_cluster(int n) {
  Cluster c;
  int ssd = 0, z0 = 0;
  for (int i = 0; i < n; ++i) {
    bool small = i % 5 == 4;
    auto node = a_node(node_name(i))
                    .label("zone", named("z", i % 3))
                    .label("rack", named("r", i / 20))
                    .cpus(small ? 4 : 16)
                    .memory_mib(small ? 16 << 10 : 64 << 10);
    if (i % 4 == 0) {
      node.label("disk", "ssd");
      ssd++;
    }
    if (i < 3) node.role("manager");
    if (i % 3 == 0) z0++;
    c.nodes.push_back(node);
  }
  c.services.push_back(a_service("monitor").global());
  c.services.push_back(a_service("ssd-agent").global().constraint("node.labels.disk", "ssd"));
  c.services.push_back(
      a_service("z0-cache").global().constraint("node.labels.zone", "z0").reserve_mib(64));
  c.containers = static_cast<size_t>(n + ssd + z0);
  const size_t target = static_cast<size_t>(20) * n;
  const int count = 2 * n;
  for (int i = 3; i < count; ++i) {
    auto s = a_service(named("svc-", i), named("p", i % 10));
    int replicas = 1 + i % 17;
    if (i + 1 == count) replicas = static_cast<int>(target - c.containers);
    s.replicas(replicas);
    if (i % 5 == 0) s.constraint("node.labels.zone", named("z", i % 3));
    if (i % 7 == 0) s.constraint("node.labels.disk", "ssd");
    if (i % 11 == 0) s.constraint("node.role", "manager", false);
    if (i % 4 == 0) s.spread("zone");
    if (i % 3 == 0) s.reserve_cpus(0.1).reserve_mib(128);
    if (i % 13 == 0 && i + 1 != count) s.max_per_node(2);
    c.containers += static_cast<size_t>(replicas);
    c.services.push_back(s);
  }
  return c;
}

// The thread's CPU time for F, in ms: on a machine shared with other work, wall time would
// measure the others too.
template <class F>
double cpu_millis(F&& f) {
  auto now = [] {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
  };
  double start = now();
  f();
  return now() - start;
}

// What the assignments take in the store: one key per slot,
// /stack/assign/<project>/<service>/<slot> → node.
size_t store_bytes(const cluster::Assignments& a) {
  size_t bytes = 0;
  for (const auto& [key, slots] : a)
    for (const auto& [slot, node] : slots)
      bytes += std::string("/stack/assign/").size() + key.size() + 1 + std::to_string(slot).size() +
               node.size();
  return bytes;
}

size_t slot_count(const cluster::Assignments& a) {
  size_t n = 0;
  for (const auto& [_, slots] : a) n += slots.size();
  return n;
}

// No node holds more than its capacity in reservations (checked apart from the scheduler).
bool within_capacity(const Cluster& c, const cluster::Assignments& a) {
  std::map<std::string, cluster::Resources> used;
  std::map<std::string, const cluster::ServicePlacement*> by_key;
  for (const auto& s : c.services) by_key[cluster::service_key(s.project, s.name)] = &s;
  for (const auto& [key, slots] : a)
    for (const auto& [slot, node] : slots) {
      used[node].nano_cpus += by_key[key]->reservations.nano_cpus;
      used[node].memory_bytes += by_key[key]->reservations.memory_bytes;
    }
  for (const auto& n : c.nodes) {
    const auto& u = used[n.name];
    if (u.nano_cpus > n.capacity.nano_cpus || u.memory_bytes > n.capacity.memory_bytes)
      return false;
  }
  return true;
}

struct Figures {
  int nodes = 0;
  size_t services = 0, containers = 0, placed = 0, unplaced = 0, bytes = 0;
  double place_ms = 0, death_ms = 0, join_ms = 0;
  size_t death_moved = 0, death_removed = 0, death_writes = 0, on_dead = 0;
  size_t join_moved = 0, join_placed = 0, join_writes = 0;
};

Figures simulate(int n) {
  Figures f;
  Cluster c = make_cluster(n);
  f.nodes = n;
  f.services = c.services.size();
  f.containers = c.containers;

  cluster::Schedule first;
  cluster::SchedulerInput input{c.nodes, c.services, {}};
  f.place_ms = cpu_millis([&] { first = cluster::schedule(input); });
  f.placed = slot_count(first.assignments);
  f.bytes = store_bytes(first.assignments);
  for (const auto& u : first.unplaced) f.unplaced += static_cast<size_t>(u.missing);
  CHECK(within_capacity(c, first.assignments));
  CHECK(cluster::schedule(input).assignments == first.assignments);  // deterministic

  // A node dies (its lease expired): a full node in the middle of the list.
  const std::string dead = node_name(n / 2 + 1);
  for (const auto& [_, slots] : first.assignments)
    for (const auto& [slot, node] : slots) f.on_dead += node == dead;
  std::vector<cluster::Node> after_death = c.nodes;
  for (auto& node : after_death)
    if (node.name == dead) node.ready = false;
  cluster::Schedule death;
  input = {after_death, c.services, first.assignments};
  f.death_ms = cpu_millis([&] { death = cluster::schedule(input); });
  f.death_moved = death.moved;
  f.death_removed = death.removed;
  f.death_writes = cluster::changes(first.assignments, death.assignments).size();
  CHECK(within_capacity(c, death.assignments));

  // A node joins: nothing moves; the global services it satisfies get a slot on it.
  std::vector<cluster::Node> after_join = after_death;
  after_join.push_back(
      a_node("node-new").label("zone", "z0").label("disk", "ssd").cpus(16).memory_mib(64 << 10));
  cluster::Schedule join;
  input = {after_join, c.services, death.assignments};
  f.join_ms = cpu_millis([&] { join = cluster::schedule(input); });
  f.join_moved = join.moved;
  f.join_placed = join.placed;
  f.join_writes = cluster::changes(death.assignments, join.assignments).size();

  // Every slot of the dead node moved (replicated) or went with it (global); none other did.
  CHECK(f.death_moved + f.death_removed == f.on_dead);
  CHECK(death.kept == f.placed - f.on_dead);
  CHECK(f.join_moved == 0);
  CHECK(f.join_placed == 3);  // monitor, ssd-agent, z0-cache
  return f;
}

// One row per simulated cluster; times are the scheduler's CPU time.
void print_header() {
  std::printf("%6s %8s %10s | %-29s | %-43s | %s\n", "nodes", "services", "containers",
              "place all: ms, waiting, B/slot", "node lost: ms, its slots, moved, removed, keys",
              "node joined: ms, moved, placed, keys");
}

void print(const Figures& f) {
  std::printf(
      "%6d %8zu %10zu | %8.1f %8zu %11.0f | %8.1f %9zu %6zu %8zu %6zu | %8.1f %6zu %7zu %4zu\n",
      f.nodes, f.services, f.containers, f.place_ms, f.unplaced,
      f.placed ? static_cast<double>(f.bytes) / static_cast<double>(f.placed) : 0.0, f.death_ms,
      f.on_dead, f.death_moved, f.death_removed, f.death_writes, f.join_ms, f.join_moved,
      f.join_placed, f.join_writes);
  std::fflush(stdout);
}

}  // namespace

TEST_CASE("1,000 nodes and 20,000 containers: placed, a node lost, a node joined") {
  Figures f = simulate(1000);
  print_header();
  print(f);
  CHECK(f.containers == 20000);
  CHECK(f.placed == 20000);
  CHECK(f.unplaced == 0);
  CHECK(f.death_moved > 0);
}

TEST_CASE("how the scheduler grows with the cluster: 100, 1,000 and 5,000 nodes") {
  print_header();
  for (int n : {100, 1000, 5000}) {
    Figures f = simulate(n);
    print(f);
    CHECK(f.placed + f.unplaced == f.containers);
  }
}
