// Anti-spoofing on a container's bridge port: frames whose source MAC, IPv4 source or ARP
// sender is not the container's own are dropped, and so is IPv6 (stack assigns none). Crafted
// with the probe from inside real containers, to listeners in containers this test made.
// Before the bridge-family rules, every spoofed datagram (and the IPv6 one) was delivered, and
// the gratuitous ARP rewrote the victim's neighbour entry to the attacker's MAC.
#include <doctest/doctest.h>

#include "security/net_probe_support.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

// attacker (the probe), victim and other (each a UDP listener on 7777, v4 and v6).
std::string three(const std::string& project) {
  std::string listener = "    command: [/probe/net_probe, listen, \"7777\"]\n" + probe_volume();
  return "name: " + project + "\nservices:\n  attacker:\n    image: busybox\n    command: [sleep, "
         "\"3600\"]\n" + probe_volume() + "  victim:\n    image: busybox\n" + listener +
         "  other:\n    image: busybox\n" + listener;
}

// An address of the subnet of IP that no container holds (.250).
std::string unused_in_subnet(const std::string& ip) { return ip.substr(0, ip.rfind('.')) + ".250"; }

}  // namespace

TEST_CASE("a container cannot send with another source address, MAC or IPv6") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("secspoof");
  env.uses(p);
  auto before = stack_links();
  env.write(three(p));
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  REQUIRE(wait_output(env, "victim", "listening").find("listening") != std::string::npos);
  auto victim = address_of(env, "victim"), other = address_of(env, "other");
  auto other_mac = mac_of(env, "other");
  REQUIRE(!victim.empty());
  REQUIRE(!other.empty());
  REQUIRE(other_mac.size() == 17);

  auto send = [&](std::vector<std::string> args) {
    auto r = probe(env, "attacker", std::move(args));
    REQUIRE_MESSAGE(r.code == 0, r.err);
  };
  // Another container's address; an unused one; another container's address and MAC; IPv6 to
  // every node of the link. Then the genuine datagram, along the same path.
  send({"udp", "eth0", victim, other, victim, "7777", "spoof-other-ip"});
  send({"udp", "eth0", victim, unused_in_subnet(victim), victim, "7777", "spoof-unused-ip"});
  send({"udp", "eth0", victim, other, victim, "7777", "spoof-other-ip-and-mac", other_mac});
  send({"udp", "eth0", victim, "self", victim, "7777", "own-ip-other-mac", other_mac});
  send({"send6", "eth0", "7777", "ipv6-to-all-nodes"});
  send({"udp", "eth0", victim, "self", victim, "7777", "genuine"});
  auto out = wait_output(env, "victim", "genuine");
  CHECK(out.find("genuine") != std::string::npos);
  CHECK_MESSAGE(out.find("spoof-") == std::string::npos, out);
  CHECK_MESSAGE(out.find("own-ip-other-mac") == std::string::npos, out);
  CHECK_MESSAGE(out.find("ipv6-") == std::string::npos, out);
  // The genuine sender is seen with its own address.
  CHECK(out.find("from " + address_of(env, "attacker") + " genuine") != std::string::npos);

  // A daemon killed and started again knows the running containers' ports again: still
  // filtered.
  kill_daemon(env);
  send({"udp", "eth0", victim, other, victim, "7777", "spoof-after-restart"});
  send({"udp", "eth0", victim, "self", victim, "7777", "genuine-after-restart"});
  out = wait_output(env, "victim", "genuine-after-restart");
  CHECK(out.find("genuine-after-restart") != std::string::npos);
  CHECK_MESSAGE(out.find("spoof-after-restart") == std::string::npos, out);
  check_clean(env, p, before);
}

TEST_CASE("a gratuitous ARP claiming another container's address changes no neighbour entry") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("secarp");
  env.uses(p);
  auto before = stack_links();
  env.write(three(p));
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  REQUIRE(wait_output(env, "victim", "listening").find("listening") != std::string::npos);
  REQUIRE(wait_output(env, "other", "listening").find("listening") != std::string::npos);
  auto victim = address_of(env, "victim"), other = address_of(env, "other");
  // The victim knows other's MAC (a ping fills its neighbour table).
  REQUIRE(env.stack({"exec", "victim", "ping", "-c", "1", "-W", "2", other}).code == 0);
  auto other_mac = mac_of(env, "other");
  REQUIRE(neighbour_of(env, "victim", other) == other_mac);

  // The attacker claims other's address for its own MAC, then sends the victim a datagram:
  // once that is in, the claim has been seen.
  auto r = probe(env, "attacker", {"garp", "eth0", other});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  r = probe(env, "attacker", {"send", victim, "7777", "after-garp"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  REQUIRE(wait_output(env, "victim", "after-garp").find("after-garp") != std::string::npos);
  CHECK(neighbour_of(env, "victim", other) == other_mac);
  // Traffic for other still reaches other.
  r = env.stack({"exec", "victim", "/probe/net_probe", "send", other, "7777", "for-other"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(wait_output(env, "other", "for-other").find("for-other") != std::string::npos);
  check_clean(env, p, before);
}
