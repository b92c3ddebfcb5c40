// macvlan and ipvlan networks end to end: two services on a parent link the test makes
// (a dummy "stkt-..." link, removed pass or fail) reach each other by service name through the
// embedded DNS on the network's shim; a parent "IFACE.VLAN" is made by up and removed by down;
// a network without a parent gets stack's own dummy; host and plugin drivers are refused at
// their key before anything is made. Traffic stays between the test's own containers.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>

#include "e2e/network_support.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A dummy link "stkt-<6 hex>" for the test's networks to hang on, up; deleted (with any vlan
// link on it) however the test ends.
struct TestParent {
  std::string name;
  TestParent() {
    char buf[16];
    std::snprintf(buf, sizeof buf, "stkt-%06x", static_cast<unsigned>(::getpid()) & 0xffffffu);
    name = buf;
    run({"/usr/sbin/ip", "link", "del", name});  // a leftover of a killed run with this pid
    // A kernel without dummy links (CONFIG_DUMMY) has ifb ones, as good a parent here.
    if (run({"/usr/sbin/ip", "link", "add", name, "type", "dummy"}).code != 0)
      REQUIRE(run({"/usr/sbin/ip", "link", "add", name, "type", "ifb"}).code == 0);
    REQUIRE(run({"/usr/sbin/ip", "link", "set", name, "up"}).code == 0);
  }
  ~TestParent() { run({"/usr/sbin/ip", "link", "del", name}); }
};

// Whether this kernel makes links of KIND ("ipvlan", "vlan") on PARENT: a probe made and deleted.
bool kernel_has(const std::string& parent, const std::vector<std::string>& type) {
  std::string probe = parent.substr(0, 11) + "pr";
  std::vector<std::string> argv = {"/usr/sbin/ip", "link", "add", "link", parent, "name", probe,
                                   "type"};
  argv.insert(argv.end(), type.begin(), type.end());
  bool ok = run(argv).code == 0;
  if (ok) run({"/usr/sbin/ip", "link", "del", probe});
  return ok;
}

// Links whose parent is PARENT ("name@PARENT" in `ip -o link show`): what a network on it made.
std::vector<std::string> children_of(const std::string& parent) {
  std::vector<std::string> out;
  std::istringstream in(run({"/usr/sbin/ip", "-o", "link", "show"}).out);
  for (std::string line; std::getline(in, line);)
    if (line.find("@" + parent + ":") != std::string::npos) out.push_back(line);
  return out;
}

bool link_exists(const std::string& name) {
  return run({"/usr/sbin/ip", "link", "show", "dev", name}).code == 0;
}

const char* kPair = R"(
services:
  a:
    image: busybox
    command: [sleep, "3600"]
    networks: [lan]
  b:
    image: busybox
    command: [sleep, "3600"]
    networks: [lan]
    ports: ["18080:80"]
networks:
  lan:
)";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The host's link of index IFINDEX, from `ip -o link show` ("7: name@x: <...").
std::string host_link(const std::string& ifindex) {
  auto r = run({"/usr/sbin/ip", "-o", "link", "show"});
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(ifindex + ": ", 0) == 0) {
      auto a = ifindex.size() + 2;
      return line.substr(a, line.find_first_of(":@", a) - a);
    }
  return "";
}

// SERVICE's IFACE is a child of the host's link PARENT (its iflink is the parent's index: a
// veth's would be its host end), and shares the parent's MAC when it is an ipvlan child.
void check_child(StackEnv& env, const std::string& service, const std::string& iface,
                 const std::string& parent, bool ipvlan) {
  auto iflink = env.stack({"exec", service, "cat", "/sys/class/net/" + iface + "/iflink"});
  REQUIRE_MESSAGE(iflink.code == 0, iflink.err);
  CHECK(host_link(trim(iflink.out)) == parent);
  auto mac = env.stack({"exec", service, "cat", "/sys/class/net/" + iface + "/address"});
  auto parent_mac = run({"/bin/cat", "/sys/class/net/" + parent + "/address"});
  CHECK_MESSAGE((trim(mac.out) == trim(parent_mac.out)) == ipvlan, mac.out << parent_mac.out);
}

// A pings B by name, and B's name resolves to its address on LAN (a child of PARENT); the DNS
// that resolv.conf names is the network's shim, not its gateway.
void check_pair(StackEnv& env, const std::string& parent, bool ipvlan) {
  check_child(env, "a", "eth0", parent, ipvlan);
  check_child(env, "b", "eth0", parent, ipvlan);
  std::string b_addr = address_of(env, "b");
  REQUIRE_MESSAGE(!b_addr.empty(), "b has no address");
  auto r = exec_until_ok(env, {"a", "nslookup", "b"}, 10s);
  CHECK_MESSAGE(r.code == 0, r.out << r.err);
  CHECK_MESSAGE(has(r.out, "Address: " + b_addr), r.out);
  auto ping = exec_until_ok(env, {"a", "ping", "-c", "1", "-W", "2", "b"}, 10s);
  CHECK_MESSAGE(ping.code == 0, ping.out << ping.err);
  auto dns = gateway_of(env, "a");
  REQUIRE(!dns.empty());
  auto route = env.stack({"exec", "a", "ip", "route", "show", "default"});
  CHECK_MESSAGE(!has(route.out, "via " + dns + " "), route.out);
}

}  // namespace

TEST_CASE("macvlan: two services on a parent reach each other by name, ports warned") {
  STACK_REQUIRE_ROOT();
  TestParent parent;
  StackEnv env;
  auto p = unique_project("netmacvlan");
  env.uses(p);
  auto before = stack_links();
  env.write("name: " + p + kPair + "    driver: macvlan\n    driver_opts: {parent: " +
            parent.name + "}\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK_MESSAGE(has(up.err, "services.b.ports are ignored"), up.err);
  check_pair(env, parent.name, false);
  auto ls = env.stack({"network", "ls"});
  CHECK_MESSAGE(has(ls.out, "macvlan"), ls.out);
  check_clean(env, p, before);
  CHECK(link_exists(parent.name));  // the user's parent stays
}

TEST_CASE("ipvlan l2: two services on a parent reach each other by name") {
  STACK_REQUIRE_ROOT();
  TestParent parent;
  if (!kernel_has(parent.name, {"ipvlan", "mode", "l2"})) {
    report_skip("this kernel makes no ipvlan links (CONFIG_IPVLAN)");
    return;
  }
  StackEnv env;
  auto p = unique_project("netipvlan");
  env.uses(p);
  auto before = stack_links();
  env.write("name: " + p + kPair + "    driver: ipvlan\n    driver_opts: {parent: " +
            parent.name + ", ipvlan_mode: l2}\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  check_pair(env, parent.name, true);
  check_clean(env, p, before);
}

TEST_CASE("macvlan: no parent is a dummy link stack makes, internal has no route, down removes it") {
  STACK_REQUIRE_ROOT();
  TestParent parent;
  StackEnv env;
  auto p = unique_project("netsolo");
  env.uses(p);
  auto before = stack_links();
  std::string file = kPair;
  file.replace(file.find("networks: [lan]"), 15, "networks: [lan, solo]");
  env.write("name: " + p + file + "    driver: macvlan\n    driver_opts: {parent: " +
            parent.name + "}\n  solo:\n    driver: macvlan\n    internal: true\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  check_pair(env, parent.name, false);
  auto iflink = env.stack({"exec", "a", "cat", "/sys/class/net/eth1/iflink"});
  auto dummy = host_link(trim(iflink.out));
  CHECK_MESSAGE((dummy.rfind("stk-", 0) == 0 && dummy.size() == 14 && dummy.substr(12) == "-p"),
                dummy);
  auto routes = env.stack({"exec", "a", "ip", "route", "show"});
  std::istringstream lines(routes.out);
  for (std::string line; std::getline(lines, line);)
    CHECK_MESSAGE(!(line.rfind("default", 0) == 0 && has(line, "eth1")), routes.out);
  check_clean(env, p, before);
}

TEST_CASE("macvlan: a parent IFACE.VLAN is made by up and removed by down, the user's kept") {
  STACK_REQUIRE_ROOT();
  TestParent parent;
  if (!kernel_has(parent.name, {"vlan", "id", "49"})) {
    report_skip("this kernel makes no 802.1Q links (CONFIG_VLAN_8021Q)");
    return;
  }
  StackEnv env;
  auto p = unique_project("netvlan");
  env.uses(p);
  auto before = stack_links();
  std::string vlan = parent.name + ".50";
  env.write("name: " + p + kPair + "    driver: macvlan\n    driver_opts: {parent: " + vlan +
            "}\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto shown = run({"/usr/sbin/ip", "-d", "link", "show", "dev", vlan});
  CHECK_MESSAGE(has(shown.out, "vlan protocol 802.1Q id 50"), shown.out);
  check_pair(env, vlan, false);
  check_clean(env, p, before);
  CHECK_FALSE(link_exists(vlan));

  // A VLAN link the user made is used and left alone.
  REQUIRE(run({"/usr/sbin/ip", "link", "add", "link", parent.name, "name", vlan, "type", "vlan",
               "id", "50"}).code == 0);
  REQUIRE(run({"/usr/sbin/ip", "link", "set", vlan, "up"}).code == 0);
  before = stack_links();
  up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  check_pair(env, vlan, false);
  check_clean(env, p, before);
  CHECK(link_exists(vlan));
}

TEST_CASE("macvlan: a second network on a parent already used is refused naming both") {
  STACK_REQUIRE_ROOT();
  TestParent parent;
  StackEnv env;
  auto p = unique_project("netparent");
  auto q = unique_project("netparent2");
  env.uses(p);
  env.uses(q);
  auto before = stack_links();
  // Two in one file: refused before either is made.
  std::string file = kPair;
  file.replace(file.find("networks: [lan]"), 15, "networks: [lan, lan2]");
  env.write("name: " + p + file + "    driver: macvlan\n    driver_opts: {parent: " + parent.name +
            "}\n  lan2:\n    driver: ipvlan\n    driver_opts: {parent: " + parent.name + "}\n");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(has(up.err, "network " + p + "_lan2 cannot use parent interface " + parent.name +
                                ": network " + p + "_lan is already using parent interface " +
                                parent.name),
                up.err);
  CHECK(children_of(parent.name).empty());  // neither network's shim was made
  CHECK(env.ps(p).empty());
  // One per project: the second project's is refused while the first's exists.
  env.write("name: " + p + kPair + "    driver: macvlan\n    driver_opts: {parent: " +
            parent.name + "}\n");
  up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  env.write("name: " + q + kPair + "    driver: macvlan\n    driver_opts: {parent: " +
                parent.name + "}\n",
            "other.yaml");
  auto second = env.stack({"-f", "other.yaml", "up", "-d"});
  CHECK(second.code != 0);
  CHECK_MESSAGE(has(second.err, "network " + q + "_lan cannot use parent interface " +
                                    parent.name + ": network " + p + "_lan is already using"),
                second.err);
  CHECK(env.ps(q).empty());
  CHECK_MESSAGE(!has(env.stack({"network", "ls"}).out, q + "_lan"), "the refused network was made");
  check_clean(env, p, before);
}

TEST_CASE("network drivers: host and weave are refused at their position, nothing made") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netdrvbad");
  env.uses(p);
  auto before = stack_links();
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sleep, "3600"]
    networks: [h, w]
networks:
  h:
    driver: host
  w:
    driver: weave
)");
  auto up = env.stack({"up", "-d", "--dry-run"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(has(up.err, "stack.yaml:9:5: networks.h.driver: host is not a network"), up.err);
  CHECK_MESSAGE(has(up.err, "stack.yaml:11:5: networks.w.driver: weave: refused"), up.err);
  up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK(stack_links() == before);
  CHECK(env.leftovers(p).empty());
}
