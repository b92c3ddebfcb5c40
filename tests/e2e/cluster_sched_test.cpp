// Scheduled services across nodes: three daemons (each its own --root and --run-root, sharing
// the host's network namespace, containers with network_mode none) on one etcd member, then on
// three. `up` on one node writes the project to etcd, the elected scheduler places the slots and
// each node runs its own: 6 replicas land 2/2/2, a constraint pins a service to the labelled
// node, a killed daemon's slots move to the others after its lease, a returning node stops what
// it no longer holds, and a killed etcd leader loses no assignment. Times are printed.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "e2e/stack_env.h"
#include "support/etcd_fixture.h"

using namespace stack::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> join_args(const std::vector<std::string>& endpoints,
                                   const std::string& name) {
  std::string urls;
  for (const auto& e : endpoints) urls += (urls.empty() ? "" : ",") + e;
  return {"--cluster", urls, "--node-name", name, "--advertise", "127.0.0.1"};
}

// SERVICE's containers running on ENV's node (its own rows, not the slots of other nodes).
int running(StackEnv& env, const std::string& project, const std::string& service) {
  auto r = env.stack({"ps", "-a", "-p", project, "--format", "json"});
  if (r.code != 0) return -1;
  auto list = json::parse(r.out, nullptr, false);
  if (!list.is_array()) return -1;
  int n = 0;
  for (const auto& c : list)
    if (c["service"] == service && c["state"] == "running") n++;
  return n;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return f();
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool all_ready(StackEnv& env, const std::vector<std::string>& names) {
  auto r = env.stack({"node", "ls", "--format", "json"});
  if (r.code != 0) return false;
  auto list = json::parse(r.out, nullptr, false);
  int ready = 0;
  for (const auto& n : list)
    for (const auto& name : names)
      if (n["name"] == name && n["status"] == "ready") ready++;
  return ready == static_cast<int>(names.size());
}

std::string stack_file(const std::string& project, int replicas, bool pinned) {
  std::string y = "name: " + project + "\nservices:\n  web:\n    image: busybox\n"
                  "    command: [sleep, '600']\n    network_mode: none\n"
                  "    stop_grace_period: 1s\n    deploy:\n      replicas: " +
                  std::to_string(replicas) + "\n";
  if (pinned)
    y += "  pinned:\n    image: busybox\n    command: [sleep, '600']\n    network_mode: none\n"
         "    stop_grace_period: 1s\n    deploy:\n      replicas: 2\n      placement:\n"
         "        constraints: ['node.labels.zone==b']\n";
  return y;
}

}  // namespace

TEST_CASE("cluster: replicas spread 2 2 2, a constraint pins, a killed node's slots move") {
  STACK_REQUIRE_ROOT();
  if (auto why = etcd_missing(); !why.empty()) return report_skip(why);
  auto etcd = EtcdCluster::single();
  REQUIRE(etcd->healthy());
  StackEnv a, b, c;
  StackEnv* envs[] = {&a, &b, &c};
  std::string na = unique_project("sa"), nb = unique_project("sb"), nc = unique_project("sc");
  a.start_daemon(join_args(etcd->endpoints(), na));
  b.start_daemon(join_args(etcd->endpoints(), nb));
  c.start_daemon(join_args(etcd->endpoints(), nc));
  REQUIRE(eventually([&] { return all_ready(a, {na, nb, nc}); }, 15s));
  REQUIRE(a.stack({"node", "update", "--label-add", "zone=b", nb}).code == 0);

  const std::string p = unique_project("sched");
  for (auto* e : envs) e->uses(p);
  a.write(stack_file(p, 6, true));
  auto t0 = Clock::now();
  auto up = a.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  bool spread = eventually([&] {
    return running(a, p, "web") == 2 && running(b, p, "web") == 2 && running(c, p, "web") == 2 &&
           running(b, p, "pinned") == 2;
  }, 60s);
  REQUIRE_MESSAGE(spread, "a=" << running(a, p, "web") << " b=" << running(b, p, "web")
                                << " c=" << running(c, p, "web"));
  MESSAGE("up to 8 containers running on 3 nodes: " << seconds_since(t0) << " s");
  CHECK(running(a, p, "pinned") == 0);
  CHECK(running(c, p, "pinned") == 0);

  // ps on any node says where each slot runs.
  auto ps = json::parse(a.stack({"ps", "-p", p, "--format", "json"}).out);
  std::map<std::string, int> per_node;
  for (const auto& row : ps) per_node[row["node"].get<std::string>()]++;
  CHECK(per_node == std::map<std::string, int>{{na, 2}, {nb, 4}, {nc, 2}});
  auto table = a.stack({"ps", "-p", p}).out;
  CHECK(table.find("NODE") != std::string::npos);

  // Node b dies: its web slots move to a and c within the lease TTL (10 s) and a few seconds;
  // pinned has nowhere else to go and waits.
  int pid = b.api_get("/v1/version")["pid"].get<int>();
  auto killed = Clock::now();
  REQUIRE(::kill(pid, SIGKILL) == 0);
  bool moved = eventually([&] { return running(a, p, "web") == 3 && running(c, p, "web") == 3; }, 40s);
  REQUIRE_MESSAGE(moved, "a=" << running(a, p, "web") << " c=" << running(c, p, "web"));
  double failover = seconds_since(killed);
  MESSAGE("failover of node b's 2 slots: " << failover << " s after kill -9");
  CHECK(failover < 20);
  CHECK(running(a, p, "pinned") == 0);
  CHECK(running(c, p, "pinned") == 0);

  // b comes back: it stops the web containers it no longer holds, and runs pinned again.
  b.start_daemon(join_args(etcd->endpoints(), nb));
  CHECK(eventually([&] { return running(b, p, "web") == 0 && running(b, p, "pinned") == 2; }, 30s));
  CHECK(running(a, p, "web") + running(c, p, "web") == 6);

  // down on any node takes every node's share down.
  auto down = c.stack({"down", "-p", p, "-t", "0"});
  REQUIRE_MESSAGE(down.code == 0, down.err);
  CHECK(eventually([&] {
    return running(a, p, "web") == 0 && running(b, p, "pinned") == 0 && running(b, p, "web") == 0;
  }, 30s));
}

TEST_CASE("cluster: killing the etcd leader loses no assignment") {
  STACK_REQUIRE_ROOT();
  if (auto why = etcd_missing(); !why.empty()) return report_skip(why);
  auto etcd = EtcdCluster::three();
  REQUIRE(etcd->healthy());
  StackEnv a, b;
  std::string na = unique_project("la"), nb = unique_project("lb");
  a.start_daemon(join_args(etcd->endpoints(), na));
  b.start_daemon(join_args(etcd->endpoints(), nb));
  REQUIRE(eventually([&] { return all_ready(a, {na, nb}); }, 15s));
  const std::string p = unique_project("lead");
  a.uses(p);
  b.uses(p);
  a.write(stack_file(p, 4, false));
  REQUIRE(a.stack({"up", "-d"}).code == 0);
  REQUIRE(eventually([&] { return running(a, p, "web") == 2 && running(b, p, "web") == 2; }, 60s));

  int leader = etcd->leader();
  REQUIRE(leader >= 0);
  etcd->kill(leader);
  // The store answers again (another member leads), every slot is still assigned, nothing
  // stopped, and a change goes through.
  a.write(stack_file(p, 6, false));
  bool changed = eventually([&] { return a.stack({"up", "-d"}).code == 0; }, 30s);
  REQUIRE(changed);
  CHECK(eventually([&] { return running(a, p, "web") == 3 && running(b, p, "web") == 3; }, 60s));
  auto ps = json::parse(b.stack({"ps", "-p", p, "--format", "json"}).out);
  CHECK(ps.size() == 6);
}

TEST_CASE("cluster: node ps lists a node's slots, and down with etcd away removes the record when it returns") {
  STACK_REQUIRE_ROOT();
  if (auto why = etcd_missing(); !why.empty()) return report_skip(why);
  auto etcd = EtcdCluster::single();
  REQUIRE(etcd->healthy());
  StackEnv a, b;
  std::string na = unique_project("pa"), nb = unique_project("pb");
  a.start_daemon(join_args(etcd->endpoints(), na));
  b.start_daemon(join_args(etcd->endpoints(), nb));
  REQUIRE(eventually([&] { return all_ready(a, {na, nb}); }, 15s));
  const std::string p = unique_project("nps");
  a.uses(p);
  b.uses(p);
  a.write(stack_file(p, 4, false));
  REQUIRE(a.stack({"up", "-d"}).code == 0);
  REQUIRE(eventually([&] { return running(a, p, "web") == 2 && running(b, p, "web") == 2; }, 60s));

  // node ps: this node's slots with their state; another node's, its state unknown here (B
  // reports it: its own node ps says running).
  auto mine_r = a.stack({"node", "ps", "--format", "json"});
  REQUIRE_MESSAGE(mine_r.code == 0, mine_r.err);
  auto mine = json::parse(mine_r.out);
  REQUIRE(mine.size() == 2);
  for (const auto& row : mine) {
    CHECK(row["project"] == p);
    CHECK(row["service"] == "web");
    CHECK(row["node"] == na);
    CHECK(row["state"] == "running");
  }
  auto theirs = json::parse(a.stack({"node", "ps", nb, "--format", "json"}).out);
  REQUIRE(theirs.size() == 2);
  for (const auto& row : theirs) {
    CHECK(row["node"] == nb);
    CHECK(row["state"] == "unknown");
    CHECK(row["reported_by"] == nb);
  }
  CHECK(a.stack({"node", "ps", nb}).out.find("unknown (reported by " + nb + " only)") !=
        std::string::npos);
  auto own = json::parse(b.stack({"node", "ps", nb, "--format", "json"}).out);
  REQUIRE(own.size() == 2);
  for (const auto& row : own) CHECK(row["state"] == "running");
  CHECK(a.stack({"ps", "-p", p}).out.find("unknown (reported by " + nb + " only)") !=
        std::string::npos);
  auto table = a.stack({"node", "ps"});
  CHECK(table.out.find("SLOT") != std::string::npos);
  CHECK(table.out.find(p + "-web-") != std::string::npos);
  CHECK(a.stack({"node", "ps", "--help"}).out.find("assigned") != std::string::npos);
  auto unknown = a.stack({"node", "ps", "nosuchnode"});
  CHECK(unknown.code != 0);
  CHECK(unknown.err.find("no such node") != std::string::npos);

  // etcd away: down on A does not fail; A's containers go, B keeps its own.
  etcd->kill(0);
  auto down = a.stack({"down", "-p", p, "-t", "0"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK_MESSAGE((down.out + down.err).find("could not be removed") != std::string::npos,
                down.out << down.err);
  CHECK(running(a, p, "web") == 0);
  CHECK(running(b, p, "web") == 2);

  // etcd back: the record goes (not run again on A), and B takes its share down.
  REQUIRE(etcd->restart(0));
  CHECK(eventually([&] { return running(b, p, "web") == 0; }, 60s));
  CHECK(running(a, p, "web") == 0);
  auto ls = run({"/usr/bin/etcdctl", "--endpoints", etcd->endpoints()[0], "get", "--prefix",
                 "--keys-only", "/stack/projects/" + p});
  CHECK(ls.out.find(p) == std::string::npos);
  CHECK(!std::filesystem::exists(a.root() / "cluster" / (p + ".down")));
}
