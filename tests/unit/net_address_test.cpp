// IPv4/CIDR/MAC parsing and the names of host objects: pure, no root.
#include <doctest/doctest.h>

#include <set>

#include "common/instance.h"
#include "net/address.h"
#include "net/naming.h"
#include "reconciler/controller.h"

using namespace stack::net;

TEST_CASE("IPv4 and CIDR values parse strictly and print back") {
  CHECK(Ipv4::parse("10.89.0.1").value().str() == "10.89.0.1");
  CHECK(Ipv4::parse("10.89.0.1").value().value == 0x0a590001u);
  for (const char* bad :
       {"", "10.89.0", "10.89.0.256", "10.89.0.1.2", "010.1.1.1", "a.b.c.d", "1.2.3.4 "})
    CHECK_MESSAGE(!Ipv4::parse(bad), bad);
  auto c = Cidr::parse("10.89.3.7/24").value();
  CHECK(c.str() == "10.89.3.7/24");
  CHECK(c.network().str() == "10.89.3.0/24");
  CHECK(c.first().str() == "10.89.3.0");
  CHECK(c.last().str() == "10.89.3.255");
  CHECK(c.size() == 256);
  CHECK(Cidr::parse("0.0.0.0/0").value().contains(Ipv4::parse("8.8.8.8").value()));
  CHECK(!Cidr::parse("10.0.0.1"));
  CHECK(Cidr::parse("10.0.0.1", true).value().prefix == 32);
  CHECK(!Cidr::parse("10.0.0.0/33"));
  auto err = Cidr::parse("10.0.0.0/x");
  REQUIRE(!err);
  CHECK(err.error().message.find("10.0.0.0/x") != std::string::npos);
}

TEST_CASE("CIDR overlap is containment either way") {
  auto a = Cidr::parse("10.1.0.0/16").value();
  auto b = Cidr::parse("10.1.2.0/24").value();
  auto c = Cidr::parse("10.2.0.0/24").value();
  CHECK(a.overlaps(b));
  CHECK(b.overlaps(a));
  CHECK(!a.overlaps(c));
  CHECK(a.contains(b));
  CHECK(!b.contains(a));
}

TEST_CASE("MAC addresses parse and print") {
  CHECK(Mac::parse("02:42:AC:11:00:02").value().str() == "02:42:ac:11:00:02");
  CHECK(Mac{}.is_zero());
  CHECK(!Mac::parse("02:42:ac:11:00"));
  CHECK(!Mac::parse("02-42-ac-11-00-02"));
}

TEST_CASE("host object names are recognisable, bounded and stable") {
  auto bridge = bridge_name("", "demo", "default");
  CHECK(bridge.size() == 12);
  CHECK(bridge.starts_with("stk-"));
  CHECK(bridge == bridge_name("", "demo", "default"));
  CHECK(bridge != bridge_name("i-1234", "demo", "default"));  // another instance
  CHECK(bridge != bridge_name("", "demo", "back"));
  CHECK(bridge_name("", "ab", "c") != bridge_name("", "a", "bc"));

  auto veth = veth_name("", "demo-web-1", "demo_default", 4242);
  CHECK(veth.size() == 12);
  CHECK(veth.starts_with("stk"));
  CHECK(veth.find('-') == std::string::npos);
  CHECK(veth != veth_name("", "demo-web-1", "demo_default", 4243));  // a restart

  CHECK(vxlan_name(16777215) == "stx-16777215");
  for (const auto& n : {bridge, veth, vxlan_name(16777215)}) {
    CHECK(n.size() <= kMaxIfName);
    CHECK(is_stack_link(n));
  }
  CHECK(!is_stack_link("eth0"));
  CHECK(!is_stack_link("stkz"));
  CHECK(!is_stack_link("docker0"));
}

TEST_CASE("derived VNIs agree across hosts and stay in range, bridge MACs are local unicast") {
  CHECK(derive_vni("demo", "over") == derive_vni("demo", "over"));
  std::set<uint32_t> seen;
  for (int i = 0; i < 200; i++) {
    std::string name = "n";
    name += std::to_string(i);  // not "n" + ...: g++ 12 warns falsely (-Wrestrict)
    auto vni = derive_vni("p", name);
    CHECK(vni >= 4096);
    CHECK(vni < (1u << 24));
    seen.insert(vni);
  }
  CHECK(seen.size() == 200);
  auto mac = bridge_mac("stk-00000000");
  CHECK((mac.bytes[0] & 1) == 0);  // unicast
  CHECK((mac.bytes[0] & 2) == 2);  // locally administered
}

TEST_CASE("an instance is named from its root: cgroups and nftables tables agree") {
  CHECK(stack::instance_id("/var/lib/stack").empty());
  auto id = stack::instance_id("/tmp/stack-e2e-1/root");
  CHECK(id.size() == 8);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(stack::instance_id("/tmp/stack-e2e-1/root/") == id);  // one root, however it is written
  CHECK(stack::instance_id("/tmp/stack-e2e-2/root") != id);
  CHECK(table_name("") == "stack");
  CHECK(table_name(id) == "stack-" + id);
  stack::reconciler::Paths paths;
  CHECK(paths.cgroup_parent() == "stack");
  paths.root = "/tmp/stack-e2e-1/root";
  CHECK(paths.instance() == id);
  CHECK(paths.cgroup_parent() == "stack/i-" + id);
}
