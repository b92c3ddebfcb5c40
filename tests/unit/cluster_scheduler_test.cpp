// The scheduler's rules, one table each: even spread, constraints, hierarchical spread
// preferences, reservations never overcommitted, max replicas per node, global mode, no churn,
// slots of a lost node moved, scale-down from the most loaded node, determinism, and the
// reasons in Swarm's words when a service cannot be fully placed.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "cluster/scheduler.h"
#include "support/cluster_builders.h"

using namespace stack;
using namespace stack::test;
using cluster::Assignments;
using cluster::SchedulerInput;

namespace {

cluster::Schedule run(std::vector<cluster::Node> nodes,
                      std::vector<cluster::ServicePlacement> services, Assignments current = {}) {
  return cluster::schedule(
      SchedulerInput{std::move(nodes), std::move(services), std::move(current)});
}

std::string reason(const cluster::Schedule& s, const std::string& key) {
  for (const auto& u : s.unplaced)
    if (u.service == key) return std::to_string(u.missing) + " missing: " + u.reason;
  return "";
}

}  // namespace

TEST_CASE("replicas spread evenly over the nodes") {
  struct Row {
    int nodes;
    int replicas;
    std::string expected;
  };
  for (const Row& row : std::vector<Row>{{3, 6, "a=2 b=2 c=2"},
                                         {3, 7, "a=3 b=2 c=2"},
                                         {3, 2, "a=1 b=1"},
                                         {2, 5, "a=3 b=2"},
                                         {1, 4, "a=4"}}) {
    std::vector<cluster::Node> nodes;
    for (int i = 0; i < row.nodes; ++i) nodes.push_back(a_node(std::string(1, char('a' + i))));
    auto s = run(nodes, {a_service("web").replicas(row.replicas)});
    CAPTURE(row.replicas);
    CHECK(per_node(s.assignments, "p/web") == row.expected);
    CHECK(s.unplaced.empty());
    CHECK(s.placed == static_cast<size_t>(row.replicas));
  }
}

TEST_CASE("a service goes first to the nodes that hold fewest slots in all") {
  auto s = run({a_node("a"), a_node("b"), a_node("c")},
               {a_service("db").replicas(1), a_service("web").replicas(2)}, {{"p/db", {{1, "a"}}}});
  CHECK(slots(s.assignments, "p/web") == "1=b 2=c");
}

TEST_CASE("the same input gives the same schedule whatever the order of nodes and services") {
  std::vector<cluster::Node> nodes;
  for (const char* n : {"n3", "n1", "n4", "n2", "n5"})
    nodes.push_back(a_node(n).label("zone", n[1] < '3' ? "x" : "y"));
  std::vector<cluster::ServicePlacement> services = {
      a_service("a").replicas(7).spread("zone"), a_service("b").replicas(3).reserve_cpus(1),
      a_service("c").global(), a_service("d").replicas(4).max_per_node(1)};
  auto first = run(nodes, services);
  std::reverse(nodes.begin(), nodes.end());
  std::reverse(services.begin(), services.end());
  auto second = run(nodes, services);
  CHECK(first.assignments == second.assignments);
  CHECK(run(nodes, services).assignments == second.assignments);
}

TEST_CASE("constraints choose the nodes, as Swarm matches them") {
  std::vector<cluster::Node> nodes = {a_node("a").label("disk", "ssd").role("manager"),
                                      a_node("b").label("disk", "hdd"), a_node("c")};
  struct Row {
    cluster::ServicePlacement service;
    std::string expected;
  };
  for (const Row& row : std::vector<Row>{
           {a_service("web").replicas(2).constraint("node.hostname", "b"), "b=2"},
           {a_service("web").replicas(2).constraint("node.hostname", "B"), "b=2"},  // any case
           {a_service("web").replicas(3).constraint("node.hostname", "b", false), "a=2 c=1"},
           {a_service("web").replicas(2).constraint("node.labels.disk", "ssd"), "a=2"},
           {a_service("web").replicas(2).constraint("node.labels.disk", "ssd", false), "b=1 c=1"},
           {a_service("web").replicas(2).constraint("node.labels.Disk", "ssd"),
            ""},  // names: exact
           {a_service("web").replicas(2).constraint("node.role", "manager"), "a=2"},
           {a_service("web").replicas(2).constraint("node.role", "worker"), "b=1 c=1"},
           {a_service("web").replicas(2).constraint("node.id", "c"), "c=2"},
           {a_service("web")
                .replicas(3)
                .constraint("node.labels.disk", "ssd", false)
                .constraint("node.hostname", "c", false),
            "b=3"},
       }) {
    CAPTURE(row.service.constraints.front().text);
    CHECK(per_node(run(nodes, {row.service}).assignments, "p/web") == row.expected);
  }
}

TEST_CASE("a service that cannot be placed says why in Swarm's words") {
  std::vector<cluster::Node> nodes = {a_node("a").cpus(1), a_node("b").cpus(4),
                                      a_node("c").cpus(4).label("zone", "east")};
  auto s = run(
      nodes, {a_service("web").replicas(1).reserve_cpus(2).constraint("node.labels.zone", "west")});
  CHECK(reason(s, "p/web") ==
        "1 missing: no suitable node (scheduling constraints not satisfied on 2 nodes; "
        "insufficient resources on 1 node)");
  CHECK(s.assignments.empty());

  s = run({a_node("a").down(), a_node("b").down()}, {a_service("web")});
  CHECK(reason(s, "p/web") == "1 missing: no suitable node (2 nodes not available for new tasks)");
  s = run({}, {a_service("web")});
  CHECK(reason(s, "p/web") == "1 missing: no suitable node");
}

TEST_CASE("reservations are never overcommitted") {
  auto s = run({a_node("a").cpus(2).memory_mib(1024), a_node("b").cpus(2).memory_mib(1024)},
               {a_service("web").replicas(5).reserve_cpus(1)});
  CHECK(per_node(s.assignments, "p/web") == "a=2 b=2");
  CHECK(reason(s, "p/web") == "1 missing: no suitable node (insufficient resources on 2 nodes)");

  // Memory counts across services; a service reserving nothing still goes anywhere.
  s = run({a_node("a").cpus(8).memory_mib(1024)},
          {a_service("big").replicas(1).reserve_mib(768),
           a_service("small").replicas(2).reserve_mib(256), a_service("free").replicas(3)});
  CHECK(per_node(s.assignments, "p/big") == "a=1");
  CHECK(per_node(s.assignments, "p/small") == "a=1");
  CHECK(per_node(s.assignments, "p/free") == "a=3");
  CHECK(reason(s, "p/small") == "1 missing: no suitable node (insufficient resources on 1 node)");
}

TEST_CASE("max_replicas_per_node caps each node") {
  auto s = run({a_node("a"), a_node("b")}, {a_service("web").replicas(5).max_per_node(2)});
  CHECK(per_node(s.assignments, "p/web") == "a=2 b=2");
  CHECK(reason(s, "p/web") == "1 missing: no suitable node (max replicas per node limit exceed)");
}

TEST_CASE("spread preferences split the replicas by label value, level by level") {
  std::vector<cluster::Node> nodes = {
      a_node("a1").label("zone", "a").label("rack", "1"),
      a_node("a2").label("zone", "a").label("rack", "1"),
      a_node("a3").label("zone", "a").label("rack", "2"),
      a_node("b1").label("zone", "b").label("rack", "1"),
      a_node("x1"),  // no zone label: the "" branch, as in Swarm
  };
  struct Row {
    cluster::ServicePlacement service;
    std::string expected;
  };
  for (const Row& row : std::vector<Row>{
           {a_service("web").replicas(6).spread("zone"), "a1=1 a2=1 b1=2 x1=2"},
           {a_service("web").replicas(5).spread("zone").spread("rack"), "a1=1 a3=1 b1=1 x1=2"},
           {a_service("web").replicas(6).spread("zone").spread("rack").constraint(
                "node.labels.zone", "a"),
            "a1=2 a2=1 a3=3"},  // rack 1 (a1, a2) gets 3, rack 2 (a3) gets 3
           {a_service("web").replicas(5).spread("nolabel"), "a1=1 a2=1 a3=1 b1=1 x1=1"},
       }) {
    CAPTURE(row.expected);
    CHECK(per_node(run(nodes, {row.service}).assignments, "p/web") == row.expected);
  }
}

TEST_CASE("a full branch of the spread tree leaves its share to the others") {
  auto s = run({a_node("a1").label("zone", "a").cpus(1), a_node("b1").label("zone", "b").cpus(8)},
               {a_service("web").replicas(4).spread("zone").reserve_cpus(1)});
  CHECK(per_node(s.assignments, "p/web") == "a1=1 b1=3");
  CHECK(s.unplaced.empty());
}

TEST_CASE("global mode runs one slot on every eligible node") {
  std::vector<cluster::Node> nodes = {a_node("a"), a_node("b").label("edge", "no"),
                                      a_node("c").down(), a_node("d").cpus(0.5)};
  auto s = run(
      nodes,
      {a_service("agent").global().constraint("node.labels.edge", "no", false).reserve_cpus(1)});
  CHECK(slots(s.assignments, "p/agent") == "1=a");
  CHECK(reason(s, "p/agent") == "1 missing: no suitable node (insufficient resources on 1 node)");

  // A node that joins gets a slot; one that goes loses its slot, which is not moved.
  s = run({a_node("a"), a_node("b"), a_node("c")}, {a_service("agent").global()},
          {{"p/agent", {{1, "a"}, {2, "b"}}}});
  CHECK(slots(s.assignments, "p/agent") == "1=a 2=b 3=c");
  CHECK(s.kept == 2);
  CHECK(s.placed == 1);
  s = run({a_node("a"), a_node("b").down()}, {a_service("agent").global()},
          {{"p/agent", {{1, "a"}, {2, "b"}}}});
  CHECK(slots(s.assignments, "p/agent") == "1=a");
  CHECK(s.removed == 1);
  CHECK(s.moved == 0);
}

TEST_CASE("slots that may stay stay, even unevenly: a node joining moves nothing") {
  Assignments current = {{"p/web", {{1, "a"}, {2, "a"}, {3, "a"}}}};
  auto s = run({a_node("a"), a_node("b"), a_node("c")}, {a_service("web").replicas(3)}, current);
  CHECK(s.assignments == current);
  CHECK(s.kept == 3);
  CHECK(s.moved + s.placed + s.removed == 0);
  CHECK(cluster::changes(current, s.assignments).empty());
  // Scaling up then fills the new node first.
  s = run({a_node("a"), a_node("b"), a_node("c")}, {a_service("web").replicas(5)}, current);
  CHECK(slots(s.assignments, "p/web") == "1=a 2=a 3=a 4=b 5=c");
}

TEST_CASE("the slots of a node that is not ready move, keeping their numbers") {
  Assignments current = {{"p/web", {{1, "a"}, {2, "b"}, {3, "c"}, {4, "a"}, {5, "b"}, {6, "c"}}},
                         {"p/db", {{1, "a"}}}};
  auto s = run({a_node("a"), a_node("b"), a_node("c").down()},
               {a_service("web").replicas(6), a_service("db")}, current);
  CHECK(slots(s.assignments, "p/web") == "1=a 2=b 3=b 4=a 5=b 6=a");
  CHECK(s.moved == 2);
  CHECK(s.kept == 5);
  auto diff = cluster::changes(current, s.assignments);
  REQUIRE(diff.size() == 2);
  CHECK(diff[0].service == "p/web");
  CHECK(diff[0].slot == 3);
  CHECK(diff[0].node == "b");  // a holds db-1: b has fewer slots in all
  // A node gone from the list is the same as a node not ready.
  s = run({a_node("a"), a_node("b")}, {a_service("web").replicas(6), a_service("db")}, current);
  CHECK(slots(s.assignments, "p/web") == "1=a 2=b 3=b 4=a 5=b 6=a");
}

TEST_CASE("a slot whose node no longer satisfies the service moves") {
  Assignments current = {{"p/web", {{1, "a"}, {2, "b"}}}};
  auto s = run({a_node("a").label("disk", "ssd"), a_node("b"), a_node("c").label("disk", "ssd")},
               {a_service("web").replicas(2).constraint("node.labels.disk", "ssd")}, current);
  CHECK(slots(s.assignments, "p/web") == "1=a 2=c");
  // Capacity lowered under two slots: the lower slot keeps its room, the other moves.
  current = {{"p/web", {{1, "a"}, {2, "a"}}}};
  s = run({a_node("a").cpus(1), a_node("b").cpus(1)},
          {a_service("web").replicas(2).reserve_cpus(1)}, current);
  CHECK(slots(s.assignments, "p/web") == "1=a 2=b");
  // max_replicas_per_node lowered: the highest slots on the node move.
  current = {{"p/web", {{1, "a"}, {2, "a"}, {3, "a"}}}};
  s = run({a_node("a"), a_node("b")}, {a_service("web").replicas(3).max_per_node(2)}, current);
  CHECK(slots(s.assignments, "p/web") == "1=a 2=a 3=b");
}

TEST_CASE("scaling down removes from the most loaded node first, its highest slot") {
  Assignments current = {{"p/web", {{1, "a"}, {2, "a"}, {3, "a"}, {4, "b"}, {5, "b"}, {6, "c"}}}};
  struct Row {
    int replicas;
    std::string expected;
  };
  for (const Row& row : std::vector<Row>{{5, "1=a 2=a 4=b 5=b 6=c"},
                                         {3, "1=a 4=b 6=c"},
                                         {1, "6=c"},  // the last node by load, not by name
                                         {0, ""}}) {
    auto s = run({a_node("a"), a_node("b"), a_node("c")}, {a_service("web").replicas(row.replicas)},
                 current);
    CAPTURE(row.replicas);
    CHECK(slots(s.assignments, "p/web") == row.expected);
    CHECK(s.removed == static_cast<size_t>(6 - row.replicas));
  }
  // A slot on a lost node goes before any slot that may stay.
  auto s = run({a_node("a"), a_node("b")}, {a_service("web").replicas(5)}, current);
  CHECK(slots(s.assignments, "p/web") == "1=a 2=a 3=a 4=b 5=b");
}

TEST_CASE("scaling up fills the lowest free slot numbers") {
  Assignments current = {{"p/web", {{2, "a"}, {5, "b"}}}};
  auto s = run({a_node("a"), a_node("b")}, {a_service("web").replicas(4)}, current);
  CHECK(slots(s.assignments, "p/web") == "1=a 2=a 3=b 5=b");
}

TEST_CASE("a service no longer in the input loses its slots") {
  Assignments current = {{"p/old", {{1, "a"}}}, {"p/web", {{1, "a"}}}};
  auto s = run({a_node("a")}, {a_service("web")}, current);
  CHECK(s.assignments == Assignments{{"p/web", {{1, "a"}}}});
  CHECK(s.removed == 1);
  auto diff = cluster::changes(current, s.assignments);
  REQUIRE(diff.size() == 1);
  CHECK(diff[0].service == "p/old");
  CHECK(diff[0].node.empty());
}

TEST_CASE("re-scheduling a schedule changes nothing") {
  std::vector<cluster::Node> nodes;
  for (int i = 0; i < 12; ++i) {
    std::string name = "n";
    name += std::to_string(i);
    nodes.push_back(a_node(name).label("zone", std::to_string(i % 3)).cpus(4));
  }
  std::vector<cluster::ServicePlacement> services = {
      a_service("a").replicas(17).spread("zone"), a_service("b").replicas(9).reserve_cpus(1.5),
      a_service("c").global().constraint("node.labels.zone", "0", false),
      a_service("d").replicas(30).max_per_node(2), a_service("e").replicas(5).reserve_cpus(3)};
  auto first = run(nodes, services);
  auto again = run(nodes, services, first.assignments);
  CHECK(again.assignments == first.assignments);
  CHECK(again.kept == first.placed);
  CHECK(again.moved + again.placed + again.removed == 0);
}

// Random small clusters (a fixed seed: the same cases every run) and the properties every
// schedule must have, whatever the mix.
TEST_CASE("every schedule of 300 random clusters keeps the rules") {
  std::mt19937 random(18);
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
  for (int round = 0; round < 300; ++round) {
    std::vector<cluster::Node> nodes;
    int node_count = 1 + pick(8);
    for (int i = 0; i < node_count; ++i) {
      std::string name = "n";
      name += std::to_string(i);
      auto node = a_node(name).cpus(1 + pick(4)).memory_mib(256 * (1 + pick(4)));
      if (pick(3) > 0) node.label("zone", pick(2) ? "a" : "b");
      if (pick(8) == 0) node.down();
      nodes.push_back(node);
    }
    std::vector<cluster::ServicePlacement> services;
    int service_count = 1 + pick(6);
    for (int i = 0; i < service_count; ++i) {
      std::string name = "s";
      name += std::to_string(i);
      auto s = a_service(name).replicas(pick(10));
      if (pick(6) == 0) s.global();
      if (pick(3) == 0) s.constraint("node.labels.zone", pick(2) ? "a" : "b", pick(2) == 0);
      if (pick(3) == 0) s.spread("zone");
      if (pick(3) == 0) s.reserve_cpus(0.5 * pick(3)).reserve_mib(128 * pick(3));
      if (pick(4) == 0) s.max_per_node(1 + pick(2));
      services.push_back(s);
    }
    CAPTURE(round);
    auto first = run(nodes, services);

    std::map<std::string, const cluster::Node*> by_name;
    for (const auto& n : nodes) by_name[n.name] = &n;
    std::map<std::string, cluster::Resources> used;
    for (const auto& s : services) {
      std::string key = cluster::service_key(s.project, s.name);
      std::map<std::string, int> per;
      auto it = first.assignments.find(key);
      size_t placed = it == first.assignments.end() ? 0 : it->second.size();
      if (it != first.assignments.end())
        for (const auto& [slot, node] : it->second) {
          REQUIRE(by_name.count(node));
          CHECK(by_name[node]->ready);
          CHECK(cluster::satisfies(s.constraints, *by_name[node]));
          per[node]++;
          used[node].nano_cpus += s.reservations.nano_cpus;
          used[node].memory_bytes += s.reservations.memory_bytes;
        }
      int missing = 0;
      for (const auto& u : first.unplaced)
        if (u.service == key) missing = u.missing;
      for (const auto& [node, n] : per) {
        if (s.global) CHECK(n == 1);
        if (s.max_replicas_per_node > 0) CHECK(n <= s.max_replicas_per_node);
      }
      if (!s.global) CHECK(static_cast<int>(placed) + missing == s.replicas);
      // Nothing reserved, nothing constrained, no preference: counts differ by one at most.
      if (!s.global && s.constraints.empty() && s.spread.empty() && s.reservations.nano_cpus == 0 &&
          s.reservations.memory_bytes == 0 && s.max_replicas_per_node == 0) {
        int lo = 1 << 20, hi = 0;
        for (const auto& n : nodes)
          if (n.ready) {
            lo = std::min(lo, per[n.name]);
            hi = std::max(hi, per[n.name]);
          }
        if (hi > 0) CHECK(hi - lo <= 1);
      }
    }
    for (const auto& n : nodes) {
      CHECK(used[n.name].nano_cpus <= n.capacity.nano_cpus);
      CHECK(used[n.name].memory_bytes <= n.capacity.memory_bytes);
    }

    // Scheduling the result again changes nothing.
    auto again = run(nodes, services, first.assignments);
    CHECK(again.assignments == first.assignments);
    // A node lost: only the slots it held change.
    auto lost = nodes;
    cluster::Node& gone = lost[static_cast<size_t>(pick(node_count))];
    gone.ready = false;
    auto after = run(lost, services, first.assignments);
    for (const auto& c : cluster::changes(first.assignments, after.assignments)) {
      const auto& was = first.assignments[c.service];
      std::string before = was.count(c.slot) ? was.at(c.slot) : "";
      CHECK_MESSAGE(before == gone.name, c.service << " slot " << c.slot << " moved from " << before
                                                   << " to " << c.node);
    }
  }
}
