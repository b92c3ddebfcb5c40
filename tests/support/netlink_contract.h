// The Netlink contract: one scenario run against FakeNetlink (unit) and LibnlNetlink (as root,
// inside a throwaway network namespace), so the fake cannot drift from the kernel.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>

#include "net/netlink.h"

namespace stack::test {

inline net::Cidr cidr(const char* s) { return net::Cidr::parse(s, true).value(); }
inline net::Ipv4 ip(const char* s) { return net::Ipv4::parse(s).value(); }

#define NET_REQUIRE_OK(expr)                                                  \
  do {                                                                        \
    auto net_ok_r_ = (expr);                                                  \
    REQUIRE_MESSAGE(net_ok_r_, (net_ok_r_ ? "" : net_ok_r_.error().message)); \
  } while (0)

// NETNS_FD is an empty network namespace playing a container.
inline void run_netlink_contract(net::Netlink& nl, int netns_fd) {
  const std::string bridge = "stk-ctest0";
  const std::string veth = "stkc0c0c0c0c";
  const std::string vxlan = "stx-4242";

  // A bridge is made once, then converged; its address is what list_routed_subnets reports.
  NET_REQUIRE_OK(
      nl.ensure_bridge({bridge, cidr("10.250.0.1/24"), 1500, net::Mac{{2, 0x5c, 1, 2, 3, 4}}}));
  NET_REQUIRE_OK(nl.ensure_bridge({bridge, cidr("10.250.0.1/24"), 1500, std::nullopt}));
  auto b = nl.get_link(bridge).value();
  REQUIRE(b);
  CHECK(b->kind == "bridge");
  CHECK(b->up);
  CHECK(b->mtu == 1500);
  auto routed = nl.list_routed_subnets().value();
  CHECK(std::find(routed.begin(), routed.end(), cidr("10.250.0.0/24")) != routed.end());

  // A veth born in the namespace: host end enslaved and up; the name is taken afterwards.
  const net::Mac peer_mac{{2, 0x5d, 10, 250, 0, 2}};
  NET_REQUIRE_OK(nl.create_veth({veth, bridge, netns_fd, "eth0", 1500, peer_mac}));
  auto v = nl.get_link(veth).value();
  REQUIRE(v);
  CHECK(v->kind == "veth");
  CHECK(v->master == bridge);
  CHECK(v->up);
  auto again = nl.create_veth({veth, bridge, netns_fd, "eth1", 1500});
  REQUIRE(!again);
  CHECK(again.error().sys_errno == EEXIST);
  auto no_bridge = nl.create_veth({"stkc0c0c0c0c1", "stk-nosuch0", netns_fd, "eth1", 1500});
  REQUIRE(!no_bridge);
  CHECK(no_bridge.error().sys_errno == ENODEV);

  // The peer has the MAC it was born with; a link the namespace lacks is no error.
  auto peer = nl.get_link_in(netns_fd, "eth0").value();
  REQUIRE(peer);
  CHECK(peer->mac == peer_mac);
  CHECK(!nl.get_link_in(netns_fd, "eth7").value());

  // Inside the namespace: address, MTU, up, default route; idempotent.
  net::InterfaceConfig eth0{netns_fd, "eth0", cidr("10.250.0.2/24"), 1400, ip("10.250.0.1")};
  NET_REQUIRE_OK(nl.configure_interface(eth0));
  NET_REQUIRE_OK(nl.configure_interface(eth0));
  auto missing =
      nl.configure_interface({netns_fd, "eth9", cidr("10.250.0.3/24"), 1500, std::nullopt});
  REQUIRE(!missing);
  CHECK(missing.error().sys_errno == ENODEV);
  NET_REQUIRE_OK(
      nl.add_neighbour(netns_fd, "eth0", ip("10.250.0.9"), net::Mac{{2, 0, 0, 0, 0, 9}}));

  // A name in use by another kind of link is refused.
  auto clash = nl.ensure_bridge({veth, cidr("10.251.0.1/24"), 1500, std::nullopt});
  REQUIRE(!clash);
  CHECK(clash.error().sys_errno == EEXIST);

  // VXLAN in the bridge; head-end replication entries are appended once each.
  NET_REQUIRE_OK(nl.ensure_vxlan({vxlan, 4242, 4789, ip("10.250.0.1"), bridge, 1450}));
  NET_REQUIRE_OK(nl.ensure_vxlan({vxlan, 4242, 4789, ip("10.250.0.1"), bridge, 1450}));
  auto x = nl.get_link(vxlan).value();
  REQUIRE(x);
  CHECK(x->kind == "vxlan");
  CHECK(x->master == bridge);
  CHECK(x->mtu == 1450);
  NET_REQUIRE_OK(nl.append_fdb(vxlan, net::Mac{}, ip("192.0.2.2")));
  NET_REQUIRE_OK(nl.append_fdb(vxlan, net::Mac{}, ip("192.0.2.2")));
  NET_REQUIRE_OK(nl.append_fdb(vxlan, net::Mac{}, ip("192.0.2.3")));
  CHECK(nl.list_fdb_remotes(vxlan).value() ==
        std::vector<net::Ipv4>{ip("192.0.2.2"), ip("192.0.2.3")});

  auto listed = nl.list_links("stk-ctest").value();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].name == bridge);

  // Sysctls of this namespace.
  NET_REQUIRE_OK(nl.set_sysctl("net/ipv4/conf/" + bridge + "/route_localnet", "1"));

  // Deleting: the bridge goes, the veth stays (unenslaved); a missing link is ENODEV.
  NET_REQUIRE_OK(nl.delete_link(vxlan));
  NET_REQUIRE_OK(nl.delete_link(bridge));
  CHECK(!nl.get_link(bridge).value());
  auto gone = nl.delete_link(bridge);
  REQUIRE(!gone);
  CHECK(gone.error().sys_errno == ENODEV);
  auto orphan = nl.get_link(veth).value();
  REQUIRE(orphan);
  CHECK(orphan->master.empty());

  // The bridge made again gets the surviving port back; idempotent; a missing one is ENODEV.
  NET_REQUIRE_OK(nl.ensure_bridge({bridge, cidr("10.250.0.1/24"), 1500, std::nullopt}));
  NET_REQUIRE_OK(nl.ensure_port(veth, bridge));
  NET_REQUIRE_OK(nl.ensure_port(veth, bridge));
  auto back = nl.get_link(veth).value();
  REQUIRE(back);
  CHECK(back->master == bridge);
  CHECK(back->up);
  auto no_port = nl.ensure_port("stkc0c0c0c0c9", bridge);
  REQUIRE(!no_port);
  CHECK(no_port.error().sys_errno == ENODEV);

}

// After run_netlink_contract: deleting a veth takes its peer along.
inline void run_netlink_teardown_contract(net::Netlink& nl, int netns_fd) {
  NET_REQUIRE_OK(nl.delete_link("stkc0c0c0c0c"));
  CHECK(!nl.get_link_in(netns_fd, "eth0").value());
  NET_REQUIRE_OK(nl.delete_link("stk-ctest0"));
}

}  // namespace stack::test
