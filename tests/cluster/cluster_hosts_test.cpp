// Issue 18's test: three simulated hosts (namespaces on a fabric bridge, each its own daemon,
// --root and --run-root) and a three-member etcd in namespaces of its own. A service of 6
// replicas on a cluster overlay spreads 2/2/2; a client pinned to host A reaches, by service
// name over the overlay, the replica of a service pinned by a label to host C; host B's daemon
// and its containers killed, its replicas run on A and C within the lease TTL and a few seconds
// and DNS answers none of B's addresses; the etcd leader killed, no assignment is lost.
// Printed: `up` to all running (6 and 30 replicas), failover time, cross-node DNS latency (the
// bench case bench_cluster runs this test for these figures).
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "cluster/cluster_hosts.h"
#include "e2e/stack_env.h"
#include "support/etcd_fixture.h"

using namespace stack::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// web: REPLICAS httpd replicas answering their own name; client: one, pinned to CLIENT_NODE;
// pinned: one httpd on the node labelled zone=c. All on the cluster overlay NETWORK.
std::string stack_file(const std::string& project, const std::string& network, int replicas,
                       const std::string& client_node) {
  const std::string serve =
      "    command: [sh, -c, 'mkdir -p /w && hostname > /w/i && exec httpd -f -p 8080 -h /w']\n"
      "    networks: [ov]\n    stop_grace_period: 1s\n";
  return "name: " + project + "\nservices:\n  web:\n    image: busybox\n" + serve +
         "    deploy:\n      replicas: " + std::to_string(replicas) +
         "\n  pinned:\n    image: busybox\n" + serve +
         "    deploy:\n      placement:\n        constraints: ['node.labels.zone==c']\n"
         "  client:\n    image: busybox\n    command: [sleep, '3600']\n    networks: [ov]\n"
         "    stop_grace_period: 1s\n    deploy:\n      placement:\n"
         "        constraints: ['node.hostname==" +
         client_node + "']\nnetworks:\n  ov:\n    driver: overlay\n    name: " + network + "\n";
}

// SERVICE's containers running on ENV's node, with their names.
std::vector<json> running(StackEnv& env, const std::string& project, const std::string& service) {
  auto r = env.stack({"ps", "-a", "-p", project, "--format", "json"});
  std::vector<json> out;
  if (r.code != 0) return out;
  auto list = json::parse(r.out, nullptr, false);
  if (!list.is_array()) return out;
  auto self = env.api_get("/v1/version")["cluster"]["node"];
  for (const auto& c : list)
    if (c["service"] == service && c["state"] == "running" && c["node"] == self) out.push_back(c);
  return out;
}

}  // namespace

TEST_CASE("cluster hosts: 6 replicas spread over three hosts, reach by name, a pinned service, a dead host, a dead etcd leader") {
  STACK_REQUIRE_ROOT();
  if (auto why = etcd_missing(); !why.empty()) return report_skip(why);
  auto etcd = EtcdCluster::three();
  REQUIRE(etcd->healthy());
  Hosts hosts(*etcd, 3);  // destroyed before etcd, after the environments went down
  StackEnv a, b, c;
  StackEnv* envs[] = {&a, &b, &c};
  auto id = std::to_string(::getpid() % 100000);
  const std::string na = "ha" + id, nb = "hb" + id, nc = "hc" + id, net = "stkhv" + id;
  const std::string p = unique_project("hosts");
  for (auto* e : envs) e->uses(p);
  cluster_daemon(a, hosts.ns[0], *etcd, na, hosts.addr[0]);
  cluster_daemon(b, hosts.ns[1], *etcd, nb, hosts.addr[1]);
  cluster_daemon(c, hosts.ns[2], *etcd, nc, hosts.addr[2]);
  REQUIRE(a.stack({"node", "update", "--label-add", "zone=c", nc}).code == 0);

  auto count = [&](StackEnv& e, const char* service) {
    return static_cast<int>(running(e, p, service).size());
  };
  auto spread = [&](int each) {
    return count(a, "web") == each && count(b, "web") == each && count(c, "web") == each &&
           count(c, "pinned") == 1 && count(a, "client") == 1;
  };

  // 6 replicas: `up` on A until all 8 containers run on the three hosts.
  a.write(stack_file(p, net, 6, na));
  auto t0 = Clock::now();
  auto up = a.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  REQUIRE_MESSAGE(wait_until([&] { return spread(2); }, 90s),
                  "a=" << count(a, "web") << " b=" << count(b, "web") << " c=" << count(c, "web"));
  MESSAGE("up (6 web + pinned + client) to all running on three hosts: " << ms_since(t0) << " ms");
  CHECK(count(a, "pinned") + count(b, "pinned") == 0);

  // The client on A reaches pinned's replica on C by service name over the overlay.
  auto pinned_name = running(c, p, "pinned").at(0)["name"].get<std::string>();
  auto got = exec_until(a, {"client", "timeout", "5", "wget", "-qO-", "http://pinned:8080/i"},
                        true, 20s);
  CHECK_MESSAGE(got.out == pinned_name + "\n", got.out << got.err);
  // And web, by name, from every host (the answers' names are replicas).
  auto web = exec_until(a, {"client", "timeout", "5", "wget", "-qO-", "http://web:8080/i"}, true,
                        20s);
  CHECK_MESSAGE(web.out.find(p + "-web-") == 0, web.out << web.err);

  // DNS for a name whose only replica is on another host: nslookup in the client against a
  // plain exec (the difference is roughly the answer's own time).
  std::vector<long> lookups, plain;
  for (int i = 0; i < 9; i++) {
    auto t = Clock::now();
    auto r = a.stack({"exec", "client", "nslookup", "pinned"});
    lookups.push_back(ms_since(t));
    CHECK_MESSAGE(r.code == 0, r.out << r.err);
    t = Clock::now();
    a.stack({"exec", "client", "true"});
    plain.push_back(ms_since(t));
  }
  std::sort(lookups.begin(), lookups.end());
  std::sort(plain.begin(), plain.end());
  MESSAGE("cross-host DNS: exec nslookup pinned p50 " << lookups[4] << " ms, exec true p50 "
                                                      << plain[4] << " ms");
  // The answer's own time: 200 queries for pinned (its replica on C) from the client's network
  // namespace on A to its DNS server, one at a time (the bench's DNS client).
  auto client_pid = running(a, p, "client").at(0)["pid"].get<int>();
  auto resolv = a.stack({"exec", "client", "cat", "/etc/resolv.conf"}).out;
  auto ns_at = resolv.find("nameserver ");
  REQUIRE_MESSAGE(ns_at != std::string::npos, resolv);
  auto server = resolv.substr(ns_at + 11, resolv.find('\n', ns_at) - ns_at - 11);
  auto dns = run({"/usr/bin/nsenter", "-n", "-t", std::to_string(client_pid), "/usr/bin/python3",
                  "-B", std::string(STACK_SOURCE_DIR) + "/bench/harness/dnsclient.py", server,
                  "pinned", "200"});
  REQUIRE_MESSAGE(dns.code == 0, dns.err);
  auto us = json::parse(dns.out).get<std::vector<double>>();
  REQUIRE(us.size() == 200);
  std::sort(us.begin(), us.end());
  MESSAGE("cross-host DNS answer for pinned (replica on C) from A: p50 " << us[100] << " us, p99 "
                                                                          << us[198] << " us");

  // 30 replicas, then back to 6.
  a.write(stack_file(p, net, 30, na));
  t0 = Clock::now();
  REQUIRE(a.stack({"up", "-d"}).code == 0);
  REQUIRE_MESSAGE(wait_until([&] { return spread(10); }, 240s),
                  "a=" << count(a, "web") << " b=" << count(b, "web") << " c=" << count(c, "web"));
  MESSAGE("up 6 -> 30 web replicas to all running on three hosts: " << ms_since(t0) << " ms");
  a.write(stack_file(p, net, 6, na));
  REQUIRE(a.stack({"up", "-d"}).code == 0);
  REQUIRE(wait_until([&] { return spread(2); }, 120s));

  // Host B dies: its daemon and its containers killed. Its replicas run on A and C within the
  // lease TTL (10 s) and a few seconds; DNS answers none of B's addresses.
  std::set<std::string> b_ips;
  for (const auto& [k, v] : etcd_prefix(*etcd, "/stack/overlay/" + net + "/endpoints/" + nb + "/"))
    b_ips.insert(json::parse(v)["ip"].get<std::string>());
  REQUIRE(b_ips.size() == 2);
  std::vector<int> pids;
  for (const auto& w : running(b, p, "web")) pids.push_back(w["pid"].get<int>());
  int daemon = b.api_get("/v1/version")["pid"].get<int>();
  auto killed = Clock::now();
  REQUIRE(::kill(daemon, SIGKILL) == 0);
  for (int pid : pids) ::kill(pid, SIGKILL);
  bool moved = wait_until([&] { return count(a, "web") == 3 && count(c, "web") == 3; }, 60s);
  long failover = ms_since(killed);
  REQUIRE_MESSAGE(moved, "a=" << count(a, "web") << " c=" << count(c, "web"));
  MESSAGE("failover of host B's 2 replicas: " << failover << " ms after kill -9");
  CHECK(failover < 20000);
  CHECK(etcd_prefix(*etcd, "/stack/overlay/" + net + "/endpoints/" + nb + "/").empty());
  bool clean = wait_until([&] {
    auto r = a.stack({"exec", "client", "nslookup", "web"});
    if (r.code != 0) return false;
    for (const auto& ip : b_ips)
      if (r.out.find(ip + "\n") != std::string::npos) return false;
    return true;
  }, 10s);
  CHECK_MESSAGE(clean, a.stack({"exec", "client", "nslookup", "web"}).out);
  for (int i = 0; i < 6; i++) {
    auto r = a.stack({"exec", "client", "timeout", "3", "wget", "-qO-", "http://web:8080/i"});
    CHECK_MESSAGE(r.code == 0, r.out << r.err);  // every answer from a live replica on A or C
  }

  // The etcd leader dies: every assignment is still there, and a change goes through.
  auto before = etcd_prefix(*etcd, "/stack/assign/" + p + "/");
  REQUIRE(before.size() == 8);
  int leader = etcd->leader();
  REQUIRE(leader >= 0);
  etcd->kill(leader);
  CHECK(wait_until([&] { return etcd_prefix(*etcd, "/stack/assign/" + p + "/") == before; }, 20s));
  a.write(stack_file(p, net, 8, na));
  CHECK(wait_until([&] { return a.stack({"up", "-d"}).code == 0; }, 30s));
  CHECK(wait_until([&] { return count(a, "web") == 4 && count(c, "web") == 4; }, 60s));

  // B back (its daemon adopts nothing it no longer holds), then down from C takes all down.
  cluster_daemon(b, hosts.ns[1], *etcd, nb, hosts.addr[1]);
  CHECK(wait_until([&] { return count(b, "web") == 0; }, 30s));
  auto down = c.stack({"down", "-p", p, "-t", "0"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(wait_until([&] { return count(a, "web") + count(a, "client") == 0 && count(c, "web") == 0; },
                   60s));
}
