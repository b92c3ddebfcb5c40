// The routing mesh across simulated hosts (issue 18): three nodes in namespaces on a three-member
// etcd and a client namespace on the same fabric. A service publishing 8080 answers on every
// node's underlay address whichever node runs its replica, through the cluster's ingress
// network, on a cluster overlay of its own or on its default network only; two replicas both get
// requests; a stopped or unhealthy replica gets none; an ephemeral port gets one cluster-wide
// number (distinct for services asking at once); `down` leaves no rule, link or store key on any
// node, and its fixed port answers nowhere until another project claims it. Prints the
// first-byte latency through the mesh and the time the mesh takes to follow a replica that moves.
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
                      std::chrono::milliseconds timeout, int port = 8080) {
  auto deadline = Clock::now() + timeout;
  std::string body;
  while ((body = get(netns, address, port)).empty() && Clock::now() < deadline)
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
  // Each node holds an address of its own on the ingress network for the mesh's SNAT.
  auto addrs = etcd_prefix(*etcd, "/stack/ipam/ingress/addr/");
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
  CHECK(wait_until([&] { return etcd_prefix(*etcd, "/stack/ipam/ingress/addr/").empty(); }, 10s));
}

namespace {

// A service on the project's default network only: 8080+N -> 80, an ephemeral port -> 81 and
// 8090+N -> 80 in mode host; the replica answers with a token of its own start on each.
std::string ingress_file(const std::string& project, const std::string& constraint, int n = 0) {
  return "name: " + project + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "mkdir -p /w && cat /proc/sys/kernel/random/uuid > /w/i && httpd -p 81 -h /w && exec httpd -f -p 80 -h /w"]
    ports: [")" + std::to_string(8080 + n) + R"(:80", "81", {target: 80, published: ")" +
         std::to_string(8090 + n) + R"(", mode: host}]
    restart: "no"
    deploy:
      replicas: 1
      placement:
        constraints: [")" + constraint + R"("]
)";
}

// NETNS's links, one a line ("" when the namespace lists none).
std::string links_of(const std::string& netns) {
  return run({"/usr/sbin/ip", "-n", netns, "-o", "-d", "link", "show"}).out;
}

}  // namespace

TEST_CASE("cluster mesh: a service on its default network only answers on every node, ephemeral ports too") {
  STACK_REQUIRE_ROOT();
  if (auto why = etcd_missing(); !why.empty()) return report_skip(why);
  auto etcd = EtcdCluster::three();
  REQUIRE(etcd->healthy());
  Hosts hosts(*etcd, 4);  // A, B, C and a client; destroyed after the environments
  const std::string client = hosts.ns[3];
  StackEnv a, b, c;
  auto id = std::to_string(::getpid() % 100000);
  const std::string project = unique_project("ingr"), other1 = unique_project("ingq"),
                    other2 = unique_project("ingp");
  for (auto* env : {&a, &b, &c})
    for (const auto& p : {project, other1, other2}) env->uses(p);
  const std::string node_a = "ia" + id, node_b = "ib" + id, node_c = "ic" + id;
  // A's daemon.json names the ingress subnet; A's up records it for the cluster.
  const auto config = a.run_root() / "daemon.json";
  write_text(config, R"({"ingress-subnet": "10.126.0.0/16"})");
  ::setenv("STACK_DAEMON_CONFIG", config.c_str(), 1);
  cluster_daemon(a, hosts.ns[0], *etcd, node_a, hosts.addr[0]);
  ::unsetenv("STACK_DAEMON_CONFIG");
  cluster_daemon(b, hosts.ns[1], *etcd, node_b, hosts.addr[1]);
  cluster_daemon(c, hosts.ns[2], *etcd, node_c, hosts.addr[2]);

  // One replica on C, no network in the file: on main it answered on C only (the warning).
  a.write(ingress_file(project, "node.hostname == " + node_c));
  auto up = a.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto on_c = get_until(client, hosts.addr[2], 30s);
  REQUIRE(!on_c.empty());
  auto via_a = get_until(client, hosts.addr[0], 10s);
  CHECK(via_a == on_c);
  CHECK(get_until(client, hosts.addr[1], 10s) == on_c);
  REQUIRE_MESSAGE(via_a == on_c, "A does not mesh 8080; its log:\n"
                                     << run({"/usr/bin/tail", "-n", "20",
                                             (a.run_root() / "daemon.log").string()})
                                            .out);

  // The ephemeral port: a number of 30000-32767, the same on every node, from `stack port` on A
  // (no replica there) and in `stack ps`.
  auto port = a.stack({"port", "web", "81"});
  REQUIRE_MESSAGE(port.code == 0, port.err);
  auto colon = port.out.rfind(':');
  REQUIRE(colon != std::string::npos);
  int eph = std::stoi(port.out.substr(colon + 1));
  MESSAGE("ephemeral port " << eph);
  CHECK(eph >= 30000);
  CHECK(eph <= 32767);
  auto ps = a.stack({"ps"});
  CHECK_MESSAGE(ps.out.find("0.0.0.0:" + std::to_string(eph) + "->81/tcp") != std::string::npos,
                ps.out);
  CHECK(ps.out.find("0.0.0.0:8080->80/tcp") != std::string::npos);
  for (int i = 0; i < 3; i++) {
    auto deadline = Clock::now() + 10s;
    std::string body;
    while ((body = get(client, hosts.addr[i], eph)).empty() && Clock::now() < deadline)
      std::this_thread::sleep_for(100ms);
    CHECK_MESSAGE(body == on_c, "node " << i << " on " << eph);
  }
  // mode: host is the node's own port: on C (its replica) only.
  auto hosted = get_until(client, hosts.addr[2], 10s, 8090);
  CHECK(hosted == on_c);
  CHECK(get(client, hosts.addr[0], 8090).empty());
  CHECK(get(client, hosts.addr[1], 8090).empty());
  CHECK(ps.out.find("8090") == std::string::npos);  // not the mesh's
  // The ingress network is no user network: the replica's DNS server and default route stay its
  // default network's; its subnet is A's ingress-subnet; `network ls` shows it as the cluster's.
  c.write(ingress_file(project, "node.hostname == " + node_c));
  auto resolv = c.stack({"exec", "web", "cat", "/etc/resolv.conf"});
  CHECK_MESSAGE(resolv.code == 0, resolv.err);
  CHECK_MESSAGE(resolv.out.find("nameserver 10.126.") == std::string::npos, resolv.out);
  auto route = c.stack({"exec", "web", "ip", "route"});
  CHECK_MESSAGE(route.code == 0, route.err);
  CHECK_MESSAGE(route.out.find("default via 10.126.") == std::string::npos, route.out);
  CHECK_MESSAGE(route.out.find("10.126.0.0/16") != std::string::npos, route.out);
  auto subnet = etcd_prefix(*etcd, "/stack/ipam/ingress/subnet");
  REQUIRE(subnet.size() == 1);
  CHECK(json::parse(subnet.begin()->second).value("subnet", "") == "10.126.0.0/16");
  auto nets = a.stack({"network", "ls"});
  CHECK_MESSAGE(nets.out.find("(cluster ingress)") != std::string::npos, nets.out);

  // Two more projects asking for an ephemeral port at once, from two nodes: three numbers.
  b.write(ingress_file(other1, "node.hostname == " + node_a, 1));
  c.write(ingress_file(other2, "node.hostname == " + node_b, 2));
  // StackEnv::stack changes the process's directory: these name their file instead.
  auto up_file = [](StackEnv& env) {
    return run({std::string(STACK_BUILD_DIR) + "/stack", "--root", env.root().string(),
                "--run-root", env.run_root().string(), "-f",
                (env.project_dir() / "stack.yaml").string(), "up", "-d"});
  };
  RunResult up1, up2;
  std::thread t1([&] { up1 = up_file(b); });
  std::thread t2([&] { up2 = up_file(c); });
  t1.join();
  t2.join();
  REQUIRE_MESSAGE(up1.code == 0, up1.err);
  REQUIRE_MESSAGE(up2.code == 0, up2.err);
  auto claimed = etcd_prefix(*etcd, "/stack/ingress/ports/");
  std::set<std::string> owners;
  for (const auto& [k, v] : claimed) owners.insert(v.substr(0, v.find('/')));
  CHECK(claimed.size() == 6);  // each project's fixed port and its ephemeral one
  CHECK(owners == std::set<std::string>{project, other1, other2});
  CHECK(claimed.count("/stack/ingress/ports/tcp/" + std::to_string(eph)) == 1);
  std::map<std::string, int> ephemeral;  // project -> its port of 30000-32767
  for (const auto& [k, v] : claimed)
    if (int p = std::stoi(k.substr(k.rfind('/') + 1)); p >= 30000)
      ephemeral[v.substr(0, v.find('/'))] = p;
  CHECK(ephemeral.size() == 3);
  CHECK(std::set<int>{ephemeral[project], ephemeral[other1], ephemeral[other2]}.size() == 3);
  // 8080 is the first project's: another asking for it is refused, naming it, and is not placed.
  const std::string clash = unique_project("ingx");
  a.write(ingress_file(clash, "node.hostname == " + node_a));
  auto refused = a.stack({"up", "-d"});
  CHECK(refused.code != 0);
  CHECK_MESSAGE(refused.err.find("port 8080/tcp is published by service web of project " +
                                 project + " already") != std::string::npos,
                refused.err);
  CHECK(etcd_prefix(*etcd, "/stack/projects/" + clash).empty());
  CHECK(etcd_prefix(*etcd, "/stack/ingress/ports/").size() == 6);

  // The replica moves from C to B: how long until A's mesh reaches the new one.
  a.write(ingress_file(project, "node.hostname == " + node_b));
  auto t_move = Clock::now();
  up = a.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  // B's replica is there (its ingress endpoint) and answers: a new answer alone could be C's
  // replica recreated for the changed file, before the scheduler moved the slot.
  const std::string b_endpoint =
      "/stack/overlay/ingress/endpoints/" + node_b + "/" + project + "-web-1";
  std::string moved;
  bool followed = wait_until(
      [&] {
        if (etcd_prefix(*etcd, b_endpoint).empty()) return false;
        moved = get(client, hosts.addr[0]);
        return !moved.empty() && moved != on_c;
      },
      30s);
  CHECK(followed);
  MESSAGE("the mesh on A followed the replica from C to B "
          << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t_move).count()
          << " ms after up");
  CHECK(get(client, hosts.addr[2]) == moved);
  CHECK(etcd_prefix(*etcd, b_endpoint).size() == 1);

  // down, every project: no ingress link, rule or store key is left on any node. The first
  // down leaves ingress to the others: another project's port still answers on C, which runs
  // none of its replicas.
  int other_port = ephemeral[other1];
  REQUIRE(other_port != 0);
  auto down = a.stack({"down", "-t", "0"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(wait_until([&] { return !get(client, hosts.addr[2], other_port).empty(); }, 10s));
  // The hand-over at down: 8080 answers on no node, its claim is gone from the store, and
  // another project takes the same fixed port and answers on it everywhere.
  CHECK(etcd_prefix(*etcd, "/stack/ingress/ports/tcp/8080").empty());
  for (int i = 0; i < 3; i++)
    CHECK_MESSAGE(wait_until([&] { return get(client, hosts.addr[i]).empty(); }, 10s),
                  "8080 still answers on node " << i << " after down");
  a.write(ingress_file(clash, "node.hostname == " + node_c));
  auto taken = a.stack({"up", "-d"});
  REQUIRE_MESSAGE(taken.code == 0, taken.err);
  auto claim = etcd_prefix(*etcd, "/stack/ingress/ports/tcp/8080");
  REQUIRE(claim.size() == 1);
  CHECK(claim.begin()->second.rfind(clash + "/", 0) == 0);
  for (int i = 0; i < 3; i++)
    CHECK_MESSAGE(!get_until(client, hosts.addr[i], 30s).empty(), "8080 on node " << i);
  for (auto* env : {&a, &b, &c}) {
    down = env->stack({"down", "-t", "0"});
    CHECK_MESSAGE(down.code == 0, down.err);
  }
  for (const auto& ns : {hosts.ns[0], hosts.ns[1], hosts.ns[2]}) {
    std::string rules, links;
    bool gone = wait_until(
        [&] {
          rules = run({"/usr/sbin/ip", "netns", "exec", ns, "/usr/sbin/nft", "list", "ruleset"}).out;
          links = links_of(ns);
          return rules.find("dport 8080") == std::string::npos &&
                 rules.find("dport " + std::to_string(eph)) == std::string::npos &&
                 rules.find("0x53544d00") == std::string::npos &&
                 links.find("vxlan") == std::string::npos && links.find("stk-") == std::string::npos;
        },
        15s);
    CHECK_MESSAGE(gone, ns << ":\n" << rules << links);
  }
  for (const char* prefix : {"/stack/ipam/ingress/addr/", "/stack/overlay/ingress/endpoints/",
                             "/stack/ingress/ports/"})
    CHECK_MESSAGE(wait_until([&] { return etcd_prefix(*etcd, prefix).empty(); }, 10s), prefix);
}
