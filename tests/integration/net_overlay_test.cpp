// A VXLAN overlay between two simulated hosts: two namespaces joined by a veth underlay
// (192.168.240.1 <-> .2), each with its own NetworkManager, bridge and vxlan device, and a
// container on each side; they reach each other across the overlay. Root only.
#include <doctest/doctest.h>

#include "net/naming.h"
#include "support/net_host.h"

using namespace stack;
using test::NetHost;
using test::TestNetns;

namespace {

net::NetworkSpec overlay(const char* range, const char* underlay) {
  auto s = test::a_network("over");
  s.driver = net::Driver::kOverlay;
  s.subnet = test::cidr("10.70.0.0/24");
  s.ip_range = test::cidr(range);
  s.underlay = test::ip(underlay);
  return s;
}

}  // namespace

TEST_CASE("containers on two hosts reach each other over a VXLAN overlay") {
  NetHost h1("ov1", false);
  NetHost h2("ov2", false);
  auto r = test::run({"/usr/sbin/ip", "link", "add", "stkt-u1", "netns", h1.host.name(), "type",
                      "veth", "peer", "name", "stkt-u2", "netns", h2.host.name()});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  REQUIRE(h1.host.sh("ip addr add 192.168.240.1/24 dev stkt-u1 && ip link set stkt-u1 up").code ==
          0);
  REQUIRE(h2.host.sh("ip addr add 192.168.240.2/24 dev stkt-u2 && ip link set stkt-u2 up").code ==
          0);

  h1.peers.set("itest_over", {test::ip("192.168.240.2")});
  h2.peers.set("itest_over", {test::ip("192.168.240.1")});
  auto i1 = h1.ensure(overlay("10.70.0.0/25", "192.168.240.1"));
  auto i2 = h2.ensure(overlay("10.70.0.128/25", "192.168.240.2"));
  CHECK(i1.vni == i2.vni);
  CHECK(i1.vxlan == net::vxlan_name(i1.vni));

  auto vx = h1.host.sh("ip -d link show " + i1.vxlan).out;
  CHECK(vx.find("vxlan id " + std::to_string(i1.vni)) != std::string::npos);
  CHECK(vx.find("local 192.168.240.1") != std::string::npos);
  CHECK(vx.find("dstport 4789") != std::string::npos);
  CHECK(vx.find("nolearning") != std::string::npos);
  CHECK(vx.find("master " + i1.bridge) != std::string::npos);
  CHECK(h1.host.sh("bridge fdb show dev " + i1.vxlan)
            .out.find("00:00:00:00:00:00 dst 192.168.240.2") != std::string::npos);

  TestNetns c1("ov1c"), c2("ov2c");
  auto e1 = h1.attach(c1, {{"itest_over"}});
  auto e2 = h2.attach(c2, {{"itest_over"}});
  CHECK(e1[0].address.address.str() == "10.70.0.2");    // host 1's range
  CHECK(e2[0].address.address.str() == "10.70.0.128");  // host 2's range
  CHECK(c1.sh("ip -o link show eth0").out.find("mtu 1450") != std::string::npos);
  CHECK(test::ping(c1, "10.70.0.128"));
  CHECK(test::ping(c2, "10.70.0.2"));
  // A full-size packet fits: 1450 - 28 bytes of IP and ICMP headers, not fragmented.
  CHECK(c1.exec({"/usr/bin/busybox", "ping", "-c", "1", "-W", "2", "-s", "1422", "10.70.0.128"})
            .code == 0);

  // Each container resolves the gateway to its own host's bridge, never the other host's.
  for (auto [c, h] : {std::pair{&c1, &h1}, std::pair{&c2, &h2}}) {
    REQUIRE(test::ping(*c, "10.70.0.1"));
    auto neigh = c->sh("ip neigh show 10.70.0.1").out;
    auto mac =
        h->host.sh("ip -o link show " + i1.bridge + " | grep -o 'link/ether [0-9a-f:]*'").out;
    CHECK_MESSAGE(neigh.find(mac.substr(11, 17)) != std::string::npos, (neigh + " vs " + mac));
  }
  CHECK(h1.host.sh("nft list tables").out.find("table bridge stack") != std::string::npos);

  // The table of each host is in that host: the managers act on their own namespace.
  CHECK(h1.host.sh("nft list tables").out.find("table ip stack") != std::string::npos);
  CHECK(h2.host.sh("nft list tables").out.find("table ip stack") != std::string::npos);

  REQUIRE(h1.manager->detach(c1.name()));
  REQUIRE(h2.manager->detach(c2.name()));
  REQUIRE(h1.manager->remove_network("itest_over"));
  REQUIRE(h2.manager->remove_network("itest_over"));
  CHECK(h1.host.sh("ip -o link show type vxlan").out.empty());
}
