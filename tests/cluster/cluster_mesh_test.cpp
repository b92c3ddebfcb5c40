// The routing mesh across simulated hosts (issue 18): three nodes in namespaces on a three-member
// etcd and a client namespace on the same fabric. A service publishing 8080 on a cluster
// overlay answers on every node's underlay address whichever node runs its replica; two
// replicas both get requests; a stopped or unhealthy replica gets none; `down` leaves no rule
// on any node. Prints the first-byte latency through the mesh against a direct request.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "cluster/cluster_hosts.h"

using namespace stack::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// The replica answers with its hostname (its container name) while /w/ok exists.
std::string mesh_file(const std::string& project, const std::string& network, int replicas,
                      const std::string& constraint) {
  return "name: " + project + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "mkdir -p /w && hostname > /w/i && touch /w/ok && exec httpd -f -p 80 -h /w"]
    ports: ["8080:80"]
    networks: [mesh]
    restart: "no"
    healthcheck:
      test: ["CMD-SHELL", "test -f /w/ok"]
      interval: 300ms
      retries: 1
    deploy:
      replicas: )" + std::to_string(replicas) + R"(
      placement:
        constraints: [")" + constraint + R"("]
networks:
  mesh:
    driver: overlay
    name: )" + network + "\n";
}

// GET http://ADDRESS:PORT/i from namespace NETNS: the body, "" when nothing answers in 2 s.
std::string get(const std::string& netns, const std::string& address, int port = 8080) {
  auto r = run({"/usr/sbin/ip", "netns", "exec", netns, "/usr/bin/curl", "-s", "-f", "-m", "2",
                "http://" + address + ":" + std::to_string(port) + "/i"});
  return r.code == 0 ? r.out : "";
}

// The first answer's body, polling until one comes or TIMEOUT passes.
std::string get_until(const std::string& netns, const std::string& address,
                      std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string body;
  while ((body = get(netns, address)).empty() && Clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  return body;
}

// The replicas N requests reach, by hostname ("" for a request nothing answered).
std::multiset<std::string> spread(const std::string& netns, const std::string& address, int n) {
  std::multiset<std::string> out;
  for (int i = 0; i < n; i++) {
    auto body = get(netns, address);
    if (!body.empty() && body.back() == '\n') body.pop_back();
    out.insert(body);
  }
  return out;
}

// Median time to first byte (ms) of N requests to URL from NETNS, curl's own measure.
double ttfb_ms(const std::string& netns, const std::string& url, int n = 15) {
  std::vector<double> t;
  for (int i = 0; i < n; i++) {
    auto r = run({"/usr/sbin/ip", "netns", "exec", netns, "/usr/bin/curl", "-s", "-o", "/dev/null",
                  "-m", "2", "-w", "%{time_starttransfer}", url});
    if (r.code == 0) t.push_back(std::stod(r.out) * 1000);
  }
  if (t.empty()) return -1;
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The service's endpoints in the store: container -> health ("" when it has no check).
std::map<std::string, std::string> web_endpoints(const EtcdCluster& etcd, const std::string& net) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : etcd_prefix(etcd, "/stack/overlay/" + net + "/endpoints/")) {
    auto j = json::parse(v);
    if (j.value("service", "") == "web") out[k.substr(k.rfind('/') + 1)] = j.value("health", "");
  }
  return out;
}

}  // namespace

TEST_CASE("cluster mesh: a published port answers on every node and reaches healthy replicas only") {
  STACK_REQUIRE_ROOT();
  if (auto why = etcd_missing(); !why.empty()) return report_skip(why);
  auto etcd = EtcdCluster::three();
  REQUIRE(etcd->healthy());
  Hosts hosts(*etcd, 4);  // A, B, C and a client; destroyed after the environments
  const std::string client = hosts.ns[3];
  StackEnv a, b, c;
  auto id = std::to_string(::getpid() % 100000);
  const std::string net = "stkmesh" + id, project = unique_project("mesh");
  for (auto* env : {&a, &b, &c}) env->uses(project);
  const std::string node_a = "ma" + id, node_b = "mb" + id, node_c = "mc" + id;
  cluster_daemon(a, hosts.ns[0], *etcd, node_a, hosts.addr[0]);
  cluster_daemon(b, hosts.ns[1], *etcd, node_b, hosts.addr[1]);
  cluster_daemon(c, hosts.ns[2], *etcd, node_c, hosts.addr[2]);

  // One replica, pinned to C; asked for on A.
  a.write(mesh_file(project, net, 1, "node.hostname == " + node_c));
  auto t_up = Clock::now();
  auto up = a.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  const std::string web1 = project + "-web-1";
  auto body = get_until(client, hosts.addr[0], 30s);
  MESSAGE("first answer through A " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                           Clock::now() - t_up)
                                           .count()
                                    << " ms after up");
  CHECK(body == web1 + "\n");
  // Every node answers, from C's replica: B has none either.
  CHECK(get_until(client, hosts.addr[1], 10s) == web1 + "\n");
  CHECK(get_until(client, hosts.addr[2], 10s) == web1 + "\n");
  auto eps = web_endpoints(*etcd, net);
  REQUIRE(eps.size() == 1);
  CHECK(eps.at(web1) == "healthy");
  // Each node holds an address of its own on the overlay for the mesh's SNAT.
  auto addrs = etcd_prefix(*etcd, "/stack/ipam/" + net + "/addr/");
  std::set<std::string> owners;
  for (const auto& [k, v] : addrs) owners.insert(v);
  for (const auto& n : {node_a, node_b, node_c}) CHECK(owners.count(n + "/_mesh") == 1);

  // First byte through A (to C's replica across the overlay), through C (its own replica),
  // and straight to the replica's overlay address from C's namespace.
  std::string replica_ip;
  for (const auto& [k, v] : etcd_prefix(*etcd, "/stack/overlay/" + net + "/endpoints/" + node_c))
    if (k.substr(k.rfind('/') + 1) == web1) replica_ip = json::parse(v)["ip"];
  REQUIRE(!replica_ip.empty());
  auto via_a = ttfb_ms(client, "http://" + hosts.addr[0] + ":8080/i");
  auto via_c = ttfb_ms(client, "http://" + hosts.addr[2] + ":8080/i");
  auto direct = ttfb_ms(hosts.ns[2], "http://" + replica_ip + ":80/i");
  MESSAGE("time to first byte p50: through A's mesh " << via_a << " ms, through C's mesh "
                                                      << via_c << " ms, direct on C " << direct
                                                      << " ms");
  CHECK(via_a > 0);

  // Two replicas, neither on A: requests to A reach both.
  a.write(mesh_file(project, net, 2, "node.hostname != " + node_a));
  up = a.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  REQUIRE(wait_until(
      [&] {
        auto e = web_endpoints(*etcd, net);
        return e.size() == 2 &&
               std::all_of(e.begin(), e.end(), [](auto& kv) { return kv.second == "healthy"; });
      },
      30s));
  std::multiset<std::string> seen;
  REQUIRE(wait_until(
      [&] {
        seen = spread(client, hosts.addr[0], 6);
        return std::set<std::string>(seen.begin(), seen.end()).size() == 2 && !seen.count("");
      },
      10s));
  std::set<std::string> replicas(seen.begin(), seen.end());
  MESSAGE("6 requests to A reached " << replicas.size() << " replicas");
  // Which runs on B: it is stopped there.
  std::string on_b;
  for (const auto& [k, v] : etcd_prefix(*etcd, "/stack/overlay/" + net + "/endpoints/" + node_b + "/"))
    if (json::parse(v).value("service", "") == "web") on_b = k.substr(k.rfind('/') + 1);
  REQUIRE(!on_b.empty());
  REQUIRE(replicas.count(on_b) == 1);
  b.write(mesh_file(project, net, 2, "node.hostname != " + node_a));
  auto stop = b.stack({"stop", "-t", "0", "web"});  // B's replica only: it runs nothing else
  REQUIRE_MESSAGE(stop.code == 0, stop.err);
  REQUIRE(wait_until([&] { return web_endpoints(*etcd, net).size() == 1; }, 10s));
  // The mesh of every node follows the store's watch: allow it a moment, then none of 10
  // requests reaches the stopped one.
  REQUIRE(wait_until([&] { return spread(client, hosts.addr[0], 3).count(on_b) == 0; }, 5s));
  auto after_stop = spread(client, hosts.addr[0], 10);
  CHECK(after_stop.count(on_b) == 0);
  CHECK(after_stop.count("") == 0);
  CHECK(spread(client, hosts.addr[1], 4).count(on_b) == 0);

  // C's replica made unhealthy: nothing is left to answer, on any node.
  std::string on_c = *std::find_if(replicas.begin(), replicas.end(),
                                   [&](const std::string& r) { return r != on_b; });
  c.write(mesh_file(project, net, 2, "node.hostname != " + node_a));
  auto rm = c.stack({"exec", "web", "rm", "/w/ok"});
  REQUIRE_MESSAGE(rm.code == 0, rm.err);
  REQUIRE(wait_until([&] { return web_endpoints(*etcd, net)[on_c] == "unhealthy"; }, 10s));
  CHECK(wait_until([&] { return get(client, hosts.addr[0]).empty(); }, 5s));
  CHECK(get(client, hosts.addr[2]).empty());  // not its own node's either

  // down: the rules and the nodes' addresses go everywhere.
  auto down = a.stack({"down", "-t", "0"});
  REQUIRE_MESSAGE(down.code == 0, down.err);
  for (const auto& ns : {hosts.ns[0], hosts.ns[1], hosts.ns[2]}) {
    std::string rules;
    bool gone = wait_until(
        [&] {
          rules = run({"/usr/sbin/ip", "netns", "exec", ns, "/usr/sbin/nft", "list", "ruleset"}).out;
          return rules.find("dport 8080") == std::string::npos &&
                 rules.find("0x53544d00") == std::string::npos;
        },
        15s);
    CHECK_MESSAGE(gone, ns << ":\n" << rules);
  }
  CHECK(wait_until([&] { return etcd_prefix(*etcd, "/stack/ipam/" + net + "/addr/").empty(); }, 10s));
}
