// Cluster overlay networks across simulated hosts (issue 18): two network namespaces on the
// fabric joined to a three-member etcd (cluster_hosts.h), one daemon each joined to it,
// each node running its own project on one shared overlay (`name:`). Checks the addresses
// (the cluster's subnet, distinct), reach by name across nodes, the FDB/neighbour entries and
// DNS name of a stopped container going, a node's links going when the only replica it held
// moves away (and coming back with it), and a killed daemon's endpoints going with its lease.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include "cluster/cluster_hosts.h"
#include "e2e/stack_env.h"
#include "net/naming.h"
#include "support/etcd_fixture.h"

using namespace stack::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// The service is pinned to NODE: in cluster mode the scheduler places every project, and this
// test wants one container on each node (and b's not moved to A when B's daemon is killed).
std::string project_file(const std::string& project, const std::string& service,
                         const std::string& network, const std::string& node) {
  return "name: " + project + "\nservices:\n  " + service + R"(:
    image: busybox
    command: [sleep, "3600"]
    networks: [shared]
    deploy:
      placement:
        constraints: ["node.hostname == )" + node + R"("]
networks:
  shared:
    driver: overlay
    name: )" + network + "\n";
}

}  // namespace

TEST_CASE("cluster overlay: containers on two nodes reach each other by name over the cluster's overlay") {
  STACK_REQUIRE_ROOT();
  if (auto why = etcd_missing(); !why.empty()) return report_skip(why);
  auto etcd = EtcdCluster::three();
  REQUIRE(etcd->healthy());
  Hosts hosts(*etcd, 2);  // destroyed before etcd, after both environments went down
  StackEnv a, b;
  auto id = std::to_string(::getpid() % 100000);
  const std::string net = "stkov" + id, pa = unique_project("cova"), pb = unique_project("covb");
  a.uses(pa);
  b.uses(pb);
  const std::string node_a = "na" + id, node_b = "nb" + id;
  cluster_daemon(a, hosts.ns[0], *etcd, node_a, hosts.addr[0]);
  cluster_daemon(b, hosts.ns[1], *etcd, node_b, hosts.addr[1]);
  a.write(project_file(pa, "a", net, node_a));
  b.write(project_file(pb, "b", net, node_b));
  auto up_a = a.stack({"up", "-d"});
  REQUIRE_MESSAGE(up_a.code == 0, up_a.err);
  auto t_b = Clock::now();
  auto up_b = b.stack({"up", "-d"});
  REQUIRE_MESSAGE(up_b.code == 0, up_b.err);
  // First packet: from b's `up` until a reaches it by name.
  auto ping = exec_until(a, {"a", "ping", "-c", "1", "-W", "1", "b"}, true, 15s);
  auto first_packet_ms = ms_since(t_b);
  REQUIRE_MESSAGE(ping.code == 0, ping.out << ping.err);
  MESSAGE("first packet by name " << first_packet_ms << " ms after b's up");
  // Both ways, and by container name too.
  auto back = exec_until(b, {"b", "ping", "-c", "1", "-W", "1", "a"}, true, 5s);
  CHECK_MESSAGE(back.code == 0, back.out << back.err);
  auto by_name = exec_until(a, {"a", "ping", "-c", "1", "-W", "1", pb + "-b-1"}, true, 5s);
  CHECK_MESSAGE(by_name.code == 0, by_name.out << by_name.err);
  // HTTP across: b serves a file, a fetches it by service name.
  REQUIRE(b.stack({"exec", "-d", "b", "sh", "-c",
                   "mkdir -p /w && echo hello-from-b > /w/i && httpd -p 8080 -h /w"})
              .code == 0);
  auto wget = exec_until(a, {"a", "timeout", "5", "wget", "-qO-", "http://b:8080/i"}, true, 10s);
  CHECK(wget.out == "hello-from-b\n");

  // One subnet, recorded once; two distinct addresses in it, each held by its node.
  auto subnet = json::parse(etcd_prefix(*etcd, "/stack/ipam/" + net + "/subnet").begin()->second);
  auto eps = etcd_prefix(*etcd, "/stack/overlay/" + net + "/endpoints/");
  REQUIRE(eps.size() == 2);
  std::set<std::string> ips;
  for (const auto& [k, v] : eps) ips.insert(json::parse(v)["ip"].get<std::string>());
  CHECK(ips.size() == 2);
  std::string base = subnet["subnet"].get<std::string>();
  base = base.substr(0, base.rfind('.') + 1);
  for (const auto& ip : ips) CHECK_MESSAGE(ip.rfind(base, 0) == 0, ip << " not in " << subnet);
  auto addrs = etcd_prefix(*etcd, "/stack/ipam/" + net + "/addr/");
  CHECK(addrs.size() == 2);
  CHECK(addrs.count("/stack/ipam/" + net + "/addr/" + *ips.begin()) == 1);
  auto b_ep = json::parse(eps.at("/stack/overlay/" + net + "/endpoints/" + node_b + "/" + pb + "-b-1"));
  CHECK(b_ep["service"] == "b");
  CHECK(b_ep["project"] == pb);
  CHECK(b_ep["underlay"] == hosts.addr[1]);
  std::string b_ip = b_ep["ip"], b_mac = b_ep["mac"];  // b's endpoint (a new one after a move)

  // Cross-node DNS: nslookup in a (one exec each) against a plain exec: the difference is
  // the answer's own time, roughly.
  std::vector<long> lookups, plain;
  for (int i = 0; i < 9; i++) {
    auto t0 = Clock::now();
    auto r = a.stack({"exec", "a", "nslookup", "b"});
    lookups.push_back(ms_since(t0));
    CHECK_MESSAGE(r.out.find(b_ip) != std::string::npos, r.out << r.err);
    t0 = Clock::now();
    a.stack({"exec", "a", "true"});
    plain.push_back(ms_since(t0));
  }
  std::sort(lookups.begin(), lookups.end());
  std::sort(plain.begin(), plain.end());
  MESSAGE("exec nslookup b p50 " << lookups[4] << " ms, exec true p50 " << plain[4] << " ms");

  // A's vxlan device has b's FDB and neighbour entries.
  const std::string vx = stack::net::vxlan_name(stack::net::derive_vni("", net));
  auto fdb = [&] { return sh_in(hosts.ns[0], "bridge fdb show dev " + vx); };
  auto neigh = [&] { return sh_in(hosts.ns[0], "ip neigh show dev " + vx); };
  CHECK_MESSAGE(fdb().find(b_mac + " dst " + hosts.addr[1]) != std::string::npos, fdb());
  CHECK_MESSAGE(neigh().find(b_ip + " lladdr " + b_mac) != std::string::npos, neigh());
  // No flooding: no all-zeros entry.
  CHECK(fdb().find("00:00:00:00:00:00") == std::string::npos);

  // b stopped: its entries and name go from A.
  REQUIRE(b.stack({"stop", "-t", "0", "b"}).code == 0);
  auto t_stop = Clock::now();
  while (Clock::now() - t_stop < 10s && neigh().find(b_ip) != std::string::npos)
    std::this_thread::sleep_for(50ms);
  CHECK_MESSAGE(neigh().find(b_ip) == std::string::npos, neigh());
  // The vxlan device's own entry (the bridge's learned one, "master stk-...", ages out).
  CHECK_MESSAGE(fdb().find(b_mac + " dst") == std::string::npos, fdb());
  auto gone = exec_until(a, {"a", "nslookup", "b"}, false, 5s);
  CHECK_MESSAGE(gone.out.find(b_ip) == std::string::npos, gone.out);
  CHECK(etcd_prefix(*etcd, "/stack/overlay/" + net + "/endpoints/" + node_b + "/").empty());
  CHECK(etcd_prefix(*etcd, "/stack/ipam/" + net + "/addr/").size() == 1);

  // b again; then its daemon killed: after the lease (10 s) its endpoint goes from A.
  REQUIRE(b.stack({"start", "b"}).code == 0);
  auto again = exec_until(a, {"a", "ping", "-c", "1", "-W", "1", "b"}, true, 15s);
  REQUIRE_MESSAGE(again.code == 0, again.out << again.err);

  // b's only replica moves to A: B holds no slot of its project any more, so the overlay's
  // bridge and VXLAN device go from B (and its endpoint watch with them). Pinned back, they
  // return, and a reaches b across the nodes again (B's device programmed afresh).
  auto links_b = [&] { return sh_in(hosts.ns[1], "ip -o link show"); };
  REQUIRE(links_b().find("stx-") != std::string::npos);
  b.write(project_file(pb, "b", net, node_a));
  auto moved = b.stack({"up", "-d"});
  REQUIRE_MESSAGE(moved.code == 0, moved.err);
  auto t_move = Clock::now();
  CHECK_MESSAGE(wait_until([&] {
                  auto l = links_b();
                  return l.find("stx-") == std::string::npos && l.find("stk-") == std::string::npos;
                }, 30s),
                "B still has links of " << pb << " with no slot of it: " << links_b());
  MESSAGE("B's overlay links gone " << ms_since(t_move) << " ms after the move");
  auto local = exec_until(a, {"a", "ping", "-c", "1", "-W", "1", "b"}, true, 30s);
  CHECK_MESSAGE(local.code == 0, local.out << local.err);  // b runs on A now
  CHECK(etcd_prefix(*etcd, "/stack/overlay/" + net + "/endpoints/" + node_b + "/").empty());
  b.write(project_file(pb, "b", net, node_b));
  auto back_up = b.stack({"up", "-d"});
  REQUIRE_MESSAGE(back_up.code == 0, back_up.err);
  CHECK(wait_until([&] { return links_b().find("stx-") != std::string::npos; }, 30s));
  const std::string b_endpoints = "/stack/overlay/" + net + "/endpoints/" + node_b + "/";
  REQUIRE(wait_until([&] { return !etcd_prefix(*etcd, b_endpoints).empty(); }, 30s));
  auto returned = exec_until(a, {"a", "ping", "-c", "1", "-W", "1", "b"}, true, 15s);
  REQUIRE_MESSAGE(returned.code == 0, returned.out << returned.err);
  auto reverse = exec_until(b, {"b", "ping", "-c", "1", "-W", "1", "a"}, true, 15s);
  CHECK_MESSAGE(reverse.code == 0, reverse.out << reverse.err);
  for (const auto& [k, v] : etcd_prefix(*etcd, b_endpoints)) {
    b_ip = json::parse(v)["ip"].get<std::string>();
    b_mac = json::parse(v)["mac"].get<std::string>();
  }
  int pid = b.api_get("/v1/version")["pid"].get<int>();
  REQUIRE(::kill(pid, SIGKILL) == 0);
  auto killed = Clock::now();
  while (Clock::now() - killed < 25s &&
         !etcd_prefix(*etcd, "/stack/overlay/" + net + "/endpoints/" + node_b + "/").empty())
    std::this_thread::sleep_for(100ms);
  while (Clock::now() - killed < 27s && neigh().find(b_ip) != std::string::npos)
    std::this_thread::sleep_for(50ms);
  MESSAGE("b's endpoint gone from A " << ms_since(killed) << " ms after its daemon was killed");
  CHECK_MESSAGE(neigh().find(b_ip) == std::string::npos, neigh());
  CHECK(fdb().find(b_mac + " dst") == std::string::npos);
  CHECK(etcd_prefix(*etcd, "/stack/ipam/" + net + "/addr/").size() == 1);  // a's alone
  CHECK(exec_until(a, {"a", "nslookup", "b"}, false, 5s).out.find(b_ip) == std::string::npos);

  // B's daemon back: it adopts b and registers it again; then both go down.
  cluster_daemon(b, hosts.ns[1], *etcd, node_b, hosts.addr[1]);
  auto readopted = exec_until(a, {"a", "ping", "-c", "1", "-W", "1", "b"}, true, 15s);
  CHECK_MESSAGE(readopted.code == 0, readopted.out << readopted.err);
  REQUIRE(b.stack({"down", "-t", "0"}).code == 0);
  // B runs nothing now (a's project has no replica there): nothing of the overlay is left on
  // B when its `down` returns, whatever A does next.
  auto b_links = sh_in(hosts.ns[1], "ip -o link show");
  CHECK_MESSAGE(b_links.find("stk-") == std::string::npos, "after b's down: " << b_links
                << b.stack({"network", "ls"}).out);
  CHECK(b_links.find("stx-") == std::string::npos);
  REQUIRE(a.stack({"down", "-t", "0"}).code == 0);
  for (const auto& ns : hosts.ns) {
    auto links = sh_in(ns, "ip -o link show");
    CHECK(links.find("stx-") == std::string::npos);
    CHECK_MESSAGE(links.find("stk-") == std::string::npos, ns << ": " << links);
  }
  CHECK(etcd_prefix(*etcd, "/stack/overlay/" + net + "/").empty());
  CHECK(etcd_prefix(*etcd, "/stack/ipam/" + net + "/addr/").empty());
}
