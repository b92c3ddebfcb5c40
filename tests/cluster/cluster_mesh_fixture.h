// Simulated hosts for the routing mesh's test (issue 18): network namespaces joined to the
// bridge of a three-member etcd (tests/support/etcd_fixture), each given a daemon of its own
// StackEnv joined to the cluster. The same setup as cluster_overlay_test.cpp's, named
// cluster_mesh_* so that the 3-host fixture of another branch does not clash with it.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "e2e/stack_env.h"
#include "support/etcd_fixture.h"

namespace stack::test {

// Namespaces stkmh<i>-<pid>, each with a veth (stkmx<pid>x<i>) on ETCD's bridge at .31, .32...
// of the members' /24. Removed on destruction, pass or fail.
struct MeshHosts {
  std::vector<std::string> ns, links, addr;
  MeshHosts(const EtcdCluster& etcd, int n) {
    auto url = etcd.members()[0].client_url;  // http://192.168.X.11:2379
    auto host = url.substr(7, url.rfind(':') - 7);
    auto prefix = host.substr(0, host.rfind('.') + 1);
    auto id = std::to_string(::getpid() % 100000);
    for (int i = 0; i < n; i++) {
      ns.push_back("stkmh" + std::to_string(i) + "-" + id);
      links.push_back("stkmx" + id + "x" + std::to_string(i));
      addr.push_back(prefix + std::to_string(31 + i));
      for (const auto& cmd : std::vector<std::string>{
               "ip netns add " + ns[i],
               "ip link add " + links[i] + " type veth peer name u0 netns " + ns[i],
               "ip link set " + links[i] + " master " + etcd.bridge() + " up",
               "ip -n " + ns[i] + " addr add " + addr[i] + "/24 dev u0",
               "ip -n " + ns[i] + " link set u0 up",
               "ip -n " + ns[i] + " link set lo up"}) {
        auto r = run({"/bin/sh", "-c", cmd});
        REQUIRE_MESSAGE(r.code == 0, cmd << ": " << r.err);
      }
    }
  }
  ~MeshHosts() {
    for (const auto& l : links) run({"/usr/sbin/ip", "link", "del", l});
    for (const auto& n : ns) run({"/usr/sbin/ip", "netns", "del", n});
  }
  MeshHosts(const MeshHosts&) = delete;
  MeshHosts& operator=(const MeshHosts&) = delete;
};

// Starts ENV's daemon in namespace NETNS, joined to ETCD as NODE advertising ADDRESS; returns
// once it is ready in the cluster.
inline void mesh_daemon(StackEnv& env, const std::string& netns, const EtcdCluster& etcd,
                        const std::string& node, const std::string& address) {
  using namespace std::chrono_literals;
  env.stack({"daemon", "stop"});
  std::filesystem::remove(env.run_root() / "stack.sock");
  std::string endpoints;
  for (const auto& e : etcd.endpoints()) endpoints += (endpoints.empty() ? "" : ",") + e;
  run({"/bin/sh", "-c",
       "setsid nsenter --net=/run/netns/" + netns + " " + std::string(STACK_BUILD_DIR) +
           "/stack --root " + env.root().string() + " --run-root " + env.run_root().string() +
           " daemon --cluster " + endpoints + " --node-name " + node + " --advertise " + address +
           " >>" + (env.run_root() / "daemon.log").string() + " 2>&1 &"});
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline &&
         env.api_get("/v1/version")["cluster"]["state"] != "ready")
    std::this_thread::sleep_for(100ms);
  REQUIRE_MESSAGE(env.api_get("/v1/version")["cluster"]["state"] == "ready",
                  env.api_get("/v1/version").dump());
}

}  // namespace stack::test
