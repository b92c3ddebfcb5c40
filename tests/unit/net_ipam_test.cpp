// IPAM: subnets from the pool around what the host routes, overlaps named, addresses honouring
// ip_range, gateway and ipv4_address, and persistence through the AddressStore. Pure.
#include <doctest/doctest.h>

#include "net/ipam.h"
#include "support/netlink_contract.h"

using namespace stack;
using namespace stack::net;
using test::cidr;
using test::ip;

namespace {

NetworkAddressing addressing(const char* name, const char* subnet) {
  return plan_addressing({name, cidr(subnet), std::nullopt, std::nullopt}, {}, {}).value();
}

}  // namespace

TEST_CASE("a default subnet is the first /24 of the pool that overlaps nothing on the host") {
  auto a = plan_addressing({"demo_default"}, {}, {}).value();
  CHECK(a.subnet.str() == "10.89.0.0/24");
  CHECK(a.gateway.str() == "10.89.0.1");
  CHECK(!a.ip_range);

  // The host routes 10.89.0.0/23 (two /24s) and another network holds 10.89.2.0/24.
  auto b = plan_addressing({"demo_back"}, {}, {cidr("10.89.0.0/23"), cidr("10.89.2.0/24")}).value();
  CHECK(b.subnet.str() == "10.89.3.0/24");
  // A host route covering the whole pool leaves nothing.
  auto none = plan_addressing({"x"}, {}, {cidr("10.0.0.0/8")});
  REQUIRE(!none);
  CHECK(none.error().message.find("10.89.0.0/16") != std::string::npos);
  // A configured pool of /28s.
  SubnetPool small{cidr("192.168.77.0/24"), 28};
  CHECK(plan_addressing({"x"}, small, {cidr("192.168.77.0/28")}).value().subnet.str() ==
        "192.168.77.16/28");
}

TEST_CASE("user addressing is validated") {
  auto ok = plan_addressing({"n", cidr("172.30.0.0/16"), cidr("172.30.5.0/24"), ip("172.30.0.254")},
                            {}, {});
  REQUIRE(ok);
  CHECK(ok->gateway.str() == "172.30.0.254");
  CHECK(ok->ip_range->str() == "172.30.5.0/24");
  CHECK(!plan_addressing({"n", cidr("172.30.0.1/16")}, {}, {}));  // host bits
  CHECK(!plan_addressing({"n", cidr("172.30.0.0/16"), cidr("172.31.0.0/24")}, {},
                         {}));  // range outside
  CHECK(!plan_addressing({"n", cidr("172.30.0.0/16"), std::nullopt, ip("172.31.0.1")}, {}, {}));
  CHECK(!plan_addressing({"n", cidr("172.30.0.0/31")}, {}, {}));
}

TEST_CASE("overlapping subnets are refused naming both networks") {
  auto r = check_overlaps({addressing("a", "10.1.0.0/16"), addressing("c", "10.3.0.0/24"),
                           addressing("b", "10.1.2.0/24")});
  REQUIRE(!r);
  CHECK(r.error().message == "subnet 10.1.0.0/16 of network a overlaps 10.1.2.0/24 of network b");
  MemoryAddressStore store;
  Ipam ipam(store);
  REQUIRE(ipam.add_network(addressing("a", "10.1.0.0/16")));
  auto again = ipam.add_network(addressing("b", "10.1.2.0/24"));
  REQUIRE(!again);
  CHECK(again.error().message.find("network a") != std::string::npos);
  CHECK(again.error().message.find("network b") != std::string::npos);
}

TEST_CASE(
    "addresses skip network, gateway and broadcast, honour ip_range, and are not reused at once") {
  MemoryAddressStore store;
  Ipam ipam(store);
  REQUIRE(
      ipam.add_network(addressing("n", "10.9.0.0/29")));  // .1 gateway, .2-.6 usable, .7 broadcast
  std::vector<std::string> got;
  for (int i = 0; i < 5; i++) {
    std::string owner = "c";
    owner += std::to_string(i);  // not "c" + ...: g++ 12 warns falsely (-Wrestrict)
    got.push_back(ipam.allocate("n", owner).value().str());
  }
  CHECK(got ==
        std::vector<std::string>{"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"});
  auto full = ipam.allocate("n", "c5");
  REQUIRE(!full);
  CHECK(full.error().sys_errno == ENOSPC);
  CHECK(ipam.allocate("n", "c2").value().str() == "10.9.0.4");  // the owner keeps its address
  REQUIRE(ipam.release("n", "c1"));
  REQUIRE(ipam.release("n", "c3"));
  CHECK(ipam.allocate("n", "d").value().str() == "10.9.0.3");  // wraps around to the first free

  MemoryAddressStore store2;
  Ipam ranged(store2);
  REQUIRE(ranged.add_network(
      plan_addressing({"r", cidr("10.8.0.0/16"), cidr("10.8.1.0/24")}, {}, {}).value()));
  CHECK(ranged.allocate("r", "x").value().str() == "10.8.1.0");  // a host address of the /16
  REQUIRE(ranged.release("r", "x"));
  CHECK(ranged.allocate("r", "y").value().str() == "10.8.1.1");  // a released address rests a while
}

TEST_CASE("a static ipv4_address must be in the subnet and free") {
  MemoryAddressStore store;
  Ipam ipam(store);
  REQUIRE(ipam.add_network(addressing("n", "10.9.0.0/24")));
  CHECK(ipam.allocate("n", "db", ip("10.9.0.50")).value().str() == "10.9.0.50");
  auto taken = ipam.allocate("n", "other", ip("10.9.0.50"));
  REQUIRE(!taken);
  CHECK(taken.error().sys_errno == EADDRINUSE);
  CHECK(!ipam.allocate("n", "x", ip("10.9.1.5")));
  CHECK(!ipam.allocate("n", "x", ip("10.9.0.1")));    // the gateway
  CHECK(!ipam.allocate("n", "x", ip("10.9.0.255")));  // broadcast
  // Changing ipv4_address moves the owner.
  CHECK(ipam.allocate("n", "db", ip("10.9.0.51")).value().str() == "10.9.0.51");
  CHECK(ipam.allocate("n", "x", ip("10.9.0.50")).value().str() == "10.9.0.50");
}

TEST_CASE("allocations survive a restart through the store and are released from it") {
  MemoryAddressStore store;
  {
    Ipam ipam(store);
    REQUIRE(ipam.add_network(addressing("n", "10.9.0.0/24")));
    CHECK(ipam.allocate("n", "a").value().str() == "10.9.0.2");
    CHECK(ipam.allocate("n", "b").value().str() == "10.9.0.3");
  }
  CHECK(store.all().size() == 2);
  Ipam restarted(store);
  REQUIRE(restarted.add_network(addressing("n", "10.9.0.0/24")));
  CHECK(restarted.address_of("n", "a").value().str() == "10.9.0.2");
  CHECK(restarted.allocate("n", "c").value().str() == "10.9.0.4");  // never a duplicate
  REQUIRE(restarted.release("n", "a"));
  CHECK(store.all().size() == 2);
  REQUIRE(restarted.remove_network("n"));
  CHECK(store.all().empty());
}

TEST_CASE("overlay hosts share a subnet and each allocates from its own ip_range") {
  MemoryAddressStore s1, s2;
  Ipam host1(s1), host2(s2);
  REQUIRE(host1.add_network(
      plan_addressing({"o", cidr("10.70.0.0/24"), cidr("10.70.0.0/25")}, {}, {}).value()));
  REQUIRE(host2.add_network(
      plan_addressing({"o", cidr("10.70.0.0/24"), cidr("10.70.0.128/25")}, {}, {}).value()));
  auto a = host1.allocate("o", "a").value();
  auto b = host2.allocate("o", "b").value();
  CHECK(a.str() == "10.70.0.2");
  CHECK(b.str() == "10.70.0.128");
  CHECK(host1.find("o")->gateway == host2.find("o")->gateway);
}
