// LibnlNetlink on the kernel: the Netlink contract (the same scenario FakeNetlink passes), run
// inside a throwaway namespace playing the host, with another playing a container. Root only.
#include <doctest/doctest.h>

#include "net/netlink.h"
#include "support/netlink_contract.h"
#include "support/test_netns.h"

using namespace stack;

TEST_CASE("LibnlNetlink honours the Netlink contract") {
  test::TestNetns host("nlhost");
  test::TestNetns container("nlctr");
  test::EnterNetns in(host.fd());
  auto nl = net::make_libnl_netlink();
  REQUIRE_MESSAGE(nl, (nl ? "" : nl.error().message));
  test::run_netlink_contract(**nl, container.fd());

  // What the kernel shows: eth0 in the container with its address, MTU and route.
  auto addr = container.sh("ip -o addr show eth0");
  CHECK(addr.out.find("10.250.0.2/24") != std::string::npos);
  auto link = container.sh("ip -o link show eth0");
  CHECK(link.out.find("mtu 1400") != std::string::npos);
  CHECK(link.out.find("state UP") != std::string::npos);
  CHECK(container.sh("ip route show default").out.find("default via 10.250.0.1 dev eth0") !=
        std::string::npos);
  CHECK(container.sh("ip neigh show 10.250.0.9").out.find("02:00:00:00:00:09 PERMANENT") !=
        std::string::npos);
  CHECK(host.sh("cat /proc/sys/net/ipv4/conf/all/route_localnet").out == "0\n");
  CHECK(link.out.find("link/ether 02:5d:0a:fa:00:02") != std::string::npos);
  test::run_netlink_teardown_contract(**nl, container.fd());
}

TEST_CASE("sysctls go to the namespace the Netlink was made in, whichever thread calls") {
  test::TestNetns host("nlsys");
  std::unique_ptr<net::Netlink> nl;
  {
    test::EnterNetns in(host.fd());
    nl = net::make_libnl_netlink().value();
  }
  // Back in the test's own namespace: the write still lands in HOST.
  REQUIRE(nl->set_sysctl("net/ipv4/ip_forward", "1"));
  CHECK(host.sh("cat /proc/sys/net/ipv4/ip_forward").out == "1\n");
  CHECK(nl->get_sysctl("net/ipv4/ip_forward").value() == "1");
}

TEST_CASE("a veth's host end is gone once its container namespace is") {
  test::TestNetns host("nlgone");
  test::EnterNetns in(host.fd());
  auto nl = net::make_libnl_netlink().value();
  REQUIRE(nl->ensure_bridge({"stk-gone0", test::cidr("10.251.0.1/24"), 1500, std::nullopt}));
  {
    test::TestNetns container("nlgonec");
    REQUIRE(nl->create_veth({"stkg0g0g0g0g", "stk-gone0", container.fd(), "eth0", 1500}));
    CHECK(nl->get_link("stkg0g0g0g0g").value());
  }
  // The namespace's teardown is asynchronous (cleanup_net): wait a little.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; i++) {
    gone = !nl->get_link("stkg0g0g0g0g").value();
    if (!gone) ::usleep(5000);
  }
  CHECK(gone);
}

TEST_CASE("the default route's source address: none, the kernel's pick, the route's own src") {
  test::TestNetns host("nlsrc");
  test::EnterNetns in(host.fd());
  auto nl = net::make_libnl_netlink().value();
  auto none = nl->default_route_source();
  REQUIRE(none);
  CHECK_FALSE(*none);  // only lo: no default route
  // A veth pair with both ends here (no dummy driver on this kernel): its carrier comes up.
  REQUIRE(host.sh("ip link add stk-src0 type veth peer name stk-src1 && "
                  "ip link set stk-src1 up && ip link set stk-src0 up && "
                  "ip addr add 10.252.0.7/24 dev stk-src0 && ip addr add 10.253.0.9/24 dev "
                  "stk-src0 && ip route add default via 10.252.0.1")
              .code == 0);
  auto picked = nl->default_route_source();
  REQUIRE(picked);
  REQUIRE(*picked);
  CHECK((*picked)->str() == "10.252.0.7");  // the address on the gateway's subnet
  REQUIRE(host.sh("ip route replace default via 10.252.0.1 src 10.253.0.9").code == 0);
  CHECK(nl->default_route_source().value().value().str() == "10.253.0.9");
}
