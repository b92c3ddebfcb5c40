// macvlan and ipvlan networks in NetworkManager without root, against FakeNetlink and a fake
// Sublinks writing into it: the DNS shim and its reserved address, children born in the
// container's namespace, no firewall rules, and down deleting exactly what stack made (its
// dummy parent, the VLAN link it made, never the user's parent).
#include <doctest/doctest.h>

#include "net/network.h"
#include "support/fake_netlink.h"

using namespace stack;

namespace {

class FakeSublinks final : public net::Sublinks {
 public:
  explicit FakeSublinks(test::FakeNetlink& k) : k_(k) {}
  std::map<std::string, std::string> aliases;
  std::vector<std::string> calls;
  int fail_create = 0;  // the Nth create_sublink fails

  Result<void> ensure_dummy(std::string_view name) override {
    calls.push_back("ensure_dummy " + std::string(name));
    k_.links[std::string(name)].info = {std::string(name), "dummy", "", 1500, true};
    return {};
  }
  Result<bool> ensure_vlan(std::string_view name, std::string_view base, int id,
                           std::string_view alias) override {
    calls.push_back("ensure_vlan " + std::string(name) + " " + std::to_string(id));
    std::string n(name);
    if (k_.links.count(n)) return aliases[n] == alias;
    if (!k_.links.count(std::string(base))) return fail("no parent", ENODEV);
    k_.links[n].info = {n, "vlan", "", 1500, true};
    aliases[n] = std::string(alias);
    return true;
  }
  Result<std::optional<std::string>> alias_of(std::string_view name) override {
    if (!k_.links.count(std::string(name))) return std::optional<std::string>();
    return std::optional<std::string>(aliases[std::string(name)]);
  }
  Result<void> create_sublink(const net::SublinkConfig& c) override {
    calls.push_back("create_sublink " + c.kind + " " + c.name + " " + c.parent + " " + c.mode +
                    " " + std::to_string(c.netns_fd));
    if (fail_create > 0 && --fail_create == 0) return fail("create: injected", EIO);
    if (!k_.links.count(c.parent)) return fail("no parent", ENODEV);
    auto& space = c.netns_fd < 0 ? k_.links : k_.netns[c.netns_fd];
    if (space.count(c.name)) return fail("exists", EEXIST);
    space[c.name].info = {c.name, c.kind, "", c.mtu, false};
    return {};
  }

 private:
  test::FakeNetlink& k_;
};

struct Fixture {
  test::FakeNetlink kernel;
  test::FakeNft nft;
  net::Firewall firewall{nft, kernel};
  net::MemoryAddressStore store;
  net::StaticPeers peers;
  net::NetworkManager mgr{kernel, firewall, store, peers, net::NetworkOptions{"", {}, true}};
  FakeSublinks sub{kernel};
  Fixture() { mgr.use_sublinks(sub); }

  net::NetworkSpec spec(net::Driver d, const std::string& parent) {
    net::NetworkSpec s;
    s.project = "demo";
    s.name = "lan";
    s.driver = d;
    s.parent = parent;
    s.subnet = *net::Cidr::parse("10.77.0.0/24");
    return s;
  }
};

}  // namespace

TEST_CASE("macvlan: a shim on the parent holds the DNS address, children are born in the netns") {
  Fixture f;
  f.kernel.links["eth9"].info = {"eth9", "", "", 1500, true};
  auto info = f.mgr.ensure_network(f.spec(net::Driver::kMacvlan, "eth9"));
  REQUIRE_MESSAGE(info, (info ? "" : info.error().message));
  CHECK(info->bridge.empty());
  CHECK(info->parent == "eth9");
  REQUIRE(info->shim_address);
  CHECK(info->shim_address->str() == "10.77.0.2");
  REQUIRE(f.kernel.links.count(info->shim));
  CHECK(f.kernel.links[info->shim].info.kind == "macvlan");
  CHECK(f.kernel.links[info->shim].addresses == std::vector<net::Cidr>{*net::Cidr::parse("10.77.0.2/24")});
  CHECK(f.kernel.count("ensure_bridge") == 0);
  CHECK(f.mgr.firewall_model().networks.empty());

  f.kernel.netns[7];
  auto eps = f.mgr.attach("demo-a-1", 7, 100, {{"demo_lan"}});
  REQUIRE_MESSAGE(eps, (eps ? "" : eps.error().message));
  CHECK((*eps)[0].address.str() == "10.77.0.3/24");
  CHECK((*eps)[0].host_veth.empty());
  auto& eth0 = f.kernel.netns[7]["eth0"];
  CHECK(eth0.info.kind == "macvlan");
  CHECK(eth0.info.up);
  CHECK(eth0.gateway == net::Ipv4::parse("10.77.0.1").value());
  CHECK(f.mgr.firewall_model().endpoints.empty());
  // The shim's address is never a container's.
  auto taken = f.mgr.attach("demo-b-1", 8, 100, {{"demo_lan", net::Ipv4::parse("10.77.0.2").value()}});
  CHECK_FALSE(taken);
  // Nothing drifts: the parent and shim are there, no port left a bridge.
  CHECK(f.mgr.observe_missing().value().empty());
  CHECK(f.mgr.observe_detached().value().empty());

  REQUIRE(f.mgr.detach("demo-a-1"));
  REQUIRE(f.mgr.remove_network("demo_lan"));
  CHECK_FALSE(f.kernel.links.count(info->shim));
  CHECK(f.kernel.links.count("eth9"));  // the user's parent stays
}

TEST_CASE("macvlan: without a parent stack's dummy, with IFACE.VLAN the vlan link, both removed") {
  Fixture f;
  auto info = f.mgr.ensure_network(f.spec(net::Driver::kMacvlan, ""));
  REQUIRE_MESSAGE(info, (info ? "" : info.error().message));
  CHECK(info->parent == info->shim.substr(0, info->shim.size() - 2) + "-p");
  CHECK(f.kernel.links.count(info->parent));
  // A deleted shim is drift, repaired by ensure_network.
  f.kernel.links.erase(info->shim);
  CHECK(f.mgr.observe_missing().value() == std::vector<std::string>{"demo_lan"});
  REQUIRE(f.mgr.ensure_network(f.spec(net::Driver::kMacvlan, "")));
  CHECK(f.mgr.observe_missing().value().empty());
  REQUIRE(f.mgr.remove_network("demo_lan"));
  CHECK_FALSE(f.kernel.links.count(info->parent));

  f.kernel.links["eth9"].info = {"eth9", "", "", 1500, true};
  info = f.mgr.ensure_network(f.spec(net::Driver::kIpvlan, "eth9.50"));
  REQUIRE_MESSAGE(info, (info ? "" : info.error().message));
  CHECK(f.kernel.links.count("eth9.50"));
  CHECK(f.kernel.links[info->shim].info.kind == "ipvlan");
  REQUIRE(f.mgr.remove_network("demo_lan"));
  CHECK_FALSE(f.kernel.links.count("eth9.50"));

  // One the user made stays.
  f.kernel.links["eth9.50"].info = {"eth9.50", "vlan", "", 1500, true};
  f.sub.aliases["eth9.50"] = "";  // no alias: not stack's
  REQUIRE(f.mgr.ensure_network(f.spec(net::Driver::kIpvlan, "eth9.50")));
  REQUIRE(f.mgr.remove_network("demo_lan"));
  CHECK(f.kernel.links.count("eth9.50"));
}

TEST_CASE("macvlan: a failure half-way leaves neither the dummy parent nor the subnet") {
  Fixture f;
  f.sub.fail_create = 1;  // the shim
  auto info = f.mgr.ensure_network(f.spec(net::Driver::kMacvlan, ""));
  REQUIRE_FALSE(info);
  CHECK_MESSAGE(info.error().message.find("DNS shim") != std::string::npos, info.error().message);
  for (const auto& [name, l] : f.kernel.links) CHECK_MESSAGE(false, "left: " << name);
  CHECK(f.mgr.find("demo_lan") == nullptr);
  // A missing parent is named.
  auto r = f.mgr.ensure_network(f.spec(net::Driver::kMacvlan, "eth7"));
  REQUIRE_FALSE(r);
  CHECK_MESSAGE(r.error().message.find("parent eth7: no such link") != std::string::npos,
                r.error().message);
}
