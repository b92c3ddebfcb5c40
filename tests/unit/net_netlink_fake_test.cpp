// FakeNetlink against the Netlink contract (the same scenario runs on the kernel in
// tests/integration/net_netlink_test.cpp), and its failure injection.
#include <doctest/doctest.h>

#include "support/fake_netlink.h"
#include "support/netlink_contract.h"

using namespace stack;

TEST_CASE("FakeNetlink honours the Netlink contract") {
  test::FakeNetlink fake;
  test::run_netlink_contract(fake, 3);
  test::run_netlink_teardown_contract(fake, 3);
}

TEST_CASE("FakeNetlink fails the Nth call of a kind and records every call in order") {
  test::FakeNetlink fake;
  fake.fail_on["create_veth"] = 2;
  REQUIRE(fake.ensure_bridge({"stk-x", test::cidr("10.1.0.1/24"), 1500, std::nullopt}));
  REQUIRE(fake.create_veth({"stk000000001", "stk-x", 5, "eth0", 1500}));
  auto second = fake.create_veth({"stk000000002", "stk-x", 5, "eth1", 1500});
  REQUIRE(!second);
  CHECK(second.error().message == "create_veth: injected failure");
  CHECK(fake.calls == std::vector<std::string>{"ensure_bridge stk-x 10.1.0.1/24 1500",
                                               "create_veth stk000000001 stk-x eth0 1500",
                                               "create_veth stk000000002 stk-x eth1 1500"});
  fake.drop_netns(5);  // the container's namespace goes: so does its veth
  CHECK(!fake.get_link("stk000000001").value());
}
