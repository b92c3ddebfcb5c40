// The simulated hosts of the cluster tests: namespaces and links made with ip(8), daemons
// started by nsenter in a host's namespace (setsid: they outlive the CLI that started them).
#include "cluster/cluster_hosts.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <thread>

namespace stack::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Hosts::Hosts(const EtcdCluster& etcd, int n) {
  auto url = etcd.members()[0].client_url;  // http://192.168.X.11:2379
  auto host = url.substr(7, url.rfind(':') - 7);
  auto prefix = host.substr(0, host.rfind('.') + 1);
  auto id = std::to_string(::getpid() % 100000);
  fabric = "stkcf-" + id;
  uplink = "stkcl" + id + "f";
  std::vector<std::string> cmds = {
      "ip netns add " + fabric,
      "ip -n " + fabric + " link add fab0 type bridge",
      "ip -n " + fabric + " link set fab0 up",
      "ip link add " + uplink + " type veth peer name up0 netns " + fabric,
      "ip link set " + uplink + " master " + etcd.bridge() + " up",
      "ip -n " + fabric + " link set up0 master fab0 up"};
  for (int i = 0; i < n; i++) {
    ns.push_back("stkch" + std::to_string(i) + "-" + id);
    addr.push_back(prefix + std::to_string(21 + i));
    const std::string h = "h" + std::to_string(i);
    for (const auto& cmd : std::vector<std::string>{
             "ip netns add " + ns[i],
             "ip -n " + fabric + " link add " + h + " type veth peer name u0 netns " + ns[i],
             "ip -n " + fabric + " link set " + h + " master fab0 up",
             "ip -n " + ns[i] + " addr add " + addr[i] + "/24 dev u0",
             "ip -n " + ns[i] + " link set u0 up", "ip -n " + ns[i] + " link set lo up"})
      cmds.push_back(cmd);
  }
  for (const auto& cmd : cmds) {
    auto r = run({"/bin/sh", "-c", cmd});
    REQUIRE_MESSAGE(r.code == 0, cmd << ": " << r.err);
  }
}

Hosts::~Hosts() {
  run({"/usr/sbin/ip", "link", "del", uplink});
  for (const auto& n : ns) run({"/usr/sbin/ip", "netns", "del", n});
  run({"/usr/sbin/ip", "netns", "del", fabric});  // its veths (and their peers) with it
}

void cluster_daemon(StackEnv& env, const std::string& netns, const EtcdCluster& etcd,
                    const std::string& node, const std::string& address) {
  env.stack({"daemon", "stop"});
  std::filesystem::remove(env.run_root() / "stack.sock");
  std::string endpoints;
  for (const auto& e : etcd.endpoints()) endpoints += (endpoints.empty() ? "" : ",") + e;
  run({"/bin/sh", "-c",
       "setsid nsenter --net=/run/netns/" + netns + " " + std::string(STACK_BUILD_DIR) +
           "/stack --root " + env.root().string() + " --run-root " + env.run_root().string() +
           " daemon --cluster " + endpoints + " --node-name " + node + " --advertise " + address +
           " >>" + (env.run_root() / "daemon.log").string() + " 2>&1 &"});
  auto deadline = Clock::now() + 15s;
  while (Clock::now() < deadline && env.api_get("/v1/version")["cluster"]["state"] != "ready")
    std::this_thread::sleep_for(100ms);
  REQUIRE_MESSAGE(env.api_get("/v1/version")["cluster"]["state"] == "ready",
                  env.api_get("/v1/version").dump());
}

std::map<std::string, std::string> etcd_prefix(const EtcdCluster& etcd, const std::string& prefix) {
  std::string endpoints;
  for (const auto& e : etcd.endpoints()) endpoints += (endpoints.empty() ? "" : ",") + e;
  auto r = run({"/usr/bin/etcdctl", "--endpoints", endpoints, "get", "--prefix", prefix});
  std::map<std::string, std::string> out;
  std::istringstream in(r.out);
  for (std::string key, value; std::getline(in, key) && std::getline(in, value);) out[key] = value;
  return out;
}

std::string sh_in(const std::string& netns, const std::string& cmd) {
  return run({"/bin/sh", "-c", "ip netns exec " + netns + " " + cmd}).out;
}

RunResult exec_until(StackEnv& env, const std::vector<std::string>& argv, bool ok,
                     std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::vector<std::string> args = {"exec"};
  args.insert(args.end(), argv.begin(), argv.end());
  RunResult r;
  do {
    r = env.stack(args);
    if ((r.code == 0) == ok) return r;
    std::this_thread::sleep_for(50ms);
  } while (Clock::now() < deadline);
  return r;
}

long ms_since(Clock::time_point t0) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

}  // namespace stack::test
