// A network's bridge deleted from outside, while the daemon is stopped or while it runs: the
// bridge is made again and the running containers are put back on it where they run (their
// veths outlive the bridge), with no restart: the same PIDs, `restarts` 0, the gateway and
// the other container (by name) reachable again within seconds.
#include <doctest/doctest.h>

#include "e2e/network_support.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

// The host interface holding ADDRESS (a bridge's gateway address), "" if none.
std::string interface_with(const std::string& address) {
  auto r = run({"/usr/sbin/ip", "-o", "-4", "addr", "show"});
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string index, name, family, cidr;
    f >> index >> name >> family >> cidr;
    if (cidr.rfind(address + "/", 0) == 0) return name;
  }
  return "";
}

// The name of the host link with index INDEX, "" if none.
std::string link_with_index(int index) {
  auto r = run({"/usr/sbin/ip", "-o", "link", "show"});
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (std::atoi(line.c_str()) != index) continue;
    auto a = line.find(": ") + 2;
    return line.substr(a, line.find_first_of(":@", a) - a);
  }
  return "";
}

struct Running {
  int web_pid = 0, client_pid = 0;
};

// Brings up web and client; returns their PIDs once client reaches web by name.
Running up_pair(StackEnv& env, const std::string& p) {
  write_page(env, "repaired\n");
  env.write("name: " + p + "\nservices:" + kWeb + R"(
  client:
    image: busybox
    command: [sleep, "3600"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  REQUIRE(exec_until_ok(env, {"client", "wget", "-qO-", "http://web/"}).out == "repaired\n");
  return {env.container(p, p + "-web-1")["pid"].get<int>(),
          env.container(p, p + "-client-1")["pid"].get<int>()};
}

// The pair works again as it did, without either container having been restarted.
void check_reattached(StackEnv& env, const std::string& p, const Running& was,
                      const std::string& gateway, std::chrono::milliseconds within) {
  auto ping = exec_until_ok(env, {"client", "ping", "-c", "1", "-W", "1", gateway}, within);
  CHECK_MESSAGE(ping.code == 0, ping.out << ping.err);
  auto page = exec_until_ok(env, {"client", "timeout", "2", "wget", "-qO-", "http://web/"}, 5s);
  CHECK_MESSAGE(page.code == 0, page.err);
  CHECK(page.out == "repaired\n");
  auto web = env.container(p, p + "-web-1"), client = env.container(p, p + "-client-1");
  CHECK(web["restarts"] == 0);
  CHECK(client["restarts"] == 0);
  CHECK(web["pid"] == was.web_pid);
  CHECK(client["pid"] == was.client_pid);
}

}  // namespace

TEST_CASE("a bridge deleted while the daemon is stopped: the next daemon re-attaches containers") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netrepa");
  env.uses(p);
  auto before = stack_links();
  auto was = up_pair(env, p);
  auto gateway = gateway_of(env, "client");
  auto bridge = interface_with(gateway);
  REQUIRE(bridge.rfind("stk-", 0) == 0);
  REQUIRE(env.stack({"daemon", "stop"}).code == 0);
  REQUIRE(run({"/usr/sbin/ip", "link", "del", bridge}).code == 0);
  // Any command starts a daemon: it makes the bridge again and puts the ports back on it.
  CHECK(env.ps(p).size() == 2);
  check_reattached(env, p, was, gateway, 5s);
  CHECK(interface_with(gateway) == bridge);
  check_clean(env, p, before);
}

TEST_CASE("a bridge deleted while the daemon runs: its containers are re-attached, not restarted") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netrepb");
  env.uses(p);
  auto before = stack_links();
  auto was = up_pair(env, p);
  auto gateway = gateway_of(env, "client");
  auto bridge = interface_with(gateway);
  REQUIRE(bridge.rfind("stk-", 0) == 0);
  REQUIRE(run({"/usr/sbin/ip", "link", "del", bridge}).code == 0);
  // The daemon's resync (every 5 s) notices and repairs it.
  check_reattached(env, p, was, gateway, 15s);
  CHECK(interface_with(gateway) == bridge);

  // The client's veth itself deleted (its eth0 goes with it): made again in its namespace,
  // with the same address and default route.
  auto iflink = env.stack({"exec", "client", "cat", "/sys/class/net/eth0/iflink"});
  auto veth = link_with_index(std::atoi(iflink.out.c_str()));
  REQUIRE(veth.rfind("stk", 0) == 0);
  REQUIRE(run({"/usr/sbin/ip", "link", "del", veth}).code == 0);
  check_reattached(env, p, was, gateway, 15s);
  CHECK(link_with_index(std::atoi(
            env.stack({"exec", "client", "cat", "/sys/class/net/eth0/iflink"}).out.c_str())) ==
        veth);
  check_clean(env, p, before);
}
