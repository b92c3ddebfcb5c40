// NetworkManager over FakeNetlink and FakeNft: the order of kernel calls for networks,
// attachments, ports, overlay peers, drift, and undo on failure. Pure, no root.
#include <doctest/doctest.h>

#include <algorithm>

#include "net/naming.h"
#include "net/network.h"
#include "support/fake_netlink.h"
#include "support/netlink_contract.h"

using namespace stack;
using namespace stack::net;
using test::cidr;
using test::ip;

namespace {

struct Fixture {
  test::FakeNetlink kernel;
  test::FakeNft nft;
  Firewall firewall{nft, kernel};
  MemoryAddressStore store;
  StaticPeers peers;
  NetworkManager mgr{kernel, firewall, store, peers, NetworkOptions{"", {}, true}};

  NetworkInfo ensure(NetworkSpec spec) {
    auto r = mgr.ensure_network(spec);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    return *r;
  }
};

NetworkSpec bridge_net(const char* name) {
  NetworkSpec s;
  s.project = "demo";
  s.name = name;
  return s;
}

bool has_call(const test::FakeNetlink& k, const std::string& call) {
  return std::find(k.calls.begin(), k.calls.end(), call) != k.calls.end();
}

}  // namespace

TEST_CASE(
    "a bridge network gets a free subnet, its bridge, route_localnet, forwarding and the table") {
  Fixture f;
  f.kernel.routed = {cidr("10.89.0.0/24")};  // something on the host already uses the first /24
  auto info = f.ensure(bridge_net("default"));
  CHECK(info.addressing.subnet.str() == "10.89.1.0/24");
  CHECK(info.bridge == bridge_name("", "demo", "default"));
  CHECK(has_call(f.kernel, "ensure_bridge " + info.bridge + " 10.89.1.1/24 1500"));
  CHECK(f.kernel.sysctls["net/ipv4/conf/" + info.bridge + "/route_localnet"] == "1");
  CHECK(f.kernel.sysctls["net/ipv4/ip_forward"] == "1");
  CHECK(f.nft.runs.at(0).find("ip saddr 10.89.1.0/24 oifname != \"" + info.bridge +
                              "\" masquerade") != std::string::npos);

  // Ensuring again changes nothing in the firewall and keeps the subnet.
  f.nft.runs.clear();
  CHECK(f.ensure(bridge_net("default")).addressing.subnet.str() == "10.89.1.0/24");
  CHECK(f.nft.runs.empty());
  // A second network takes the next free /24.
  CHECK(f.ensure(bridge_net("back")).addressing.subnet.str() == "10.89.2.0/24");
}

TEST_CASE("user subnets that overlap are refused naming both networks, and nothing is made") {
  Fixture f;
  auto a = bridge_net("front");
  a.subnet = cidr("172.28.0.0/16");
  f.ensure(a);
  auto b = bridge_net("back");
  b.subnet = cidr("172.28.5.0/24");
  auto r = f.mgr.ensure_network(b);
  REQUIRE(!r);
  CHECK(r.error().message.find("network demo_front") != std::string::npos);
  CHECK(r.error().message.find("network demo_back") != std::string::npos);
  CHECK(!f.kernel.links.count(bridge_name("", "demo", "back")));
}

TEST_CASE("attach: a veth born in the namespace per network, eth0 then eth1, one default route") {
  Fixture f;
  auto internal = bridge_net("private");
  internal.internal = true;
  auto in = f.ensure(internal);
  auto out = f.ensure(bridge_net("default"));
  f.kernel.calls.clear();
  auto eps = f.mgr.attach("demo-web-1", 7, 4242, {{"demo_private"}, {"demo_default"}}).value();
  REQUIRE(eps.size() == 2);
  CHECK(eps[0].ifname == "eth0");
  CHECK(eps[1].ifname == "eth1");
  CHECK(eps[0].host_veth == veth_name("", "demo-web-1", "demo_private", 4242));
  CHECK(f.kernel.calls == std::vector<std::string>{
                              "create_veth " + eps[0].host_veth + " " + in.bridge + " eth0 1500",
                              "configure_interface eth0 " + eps[0].address.str() + " 1500",
                              "create_veth " + eps[1].host_veth + " " + out.bridge + " eth1 1500",
                              "configure_interface eth1 " + eps[1].address.str() + " 1500 via " +
                                  out.addressing.gateway.str(),
                          });
  CHECK(f.store.all().size() == 2);
}

TEST_CASE(
    "detach releases addresses and ports and deletes no link: the veth goes with the namespace") {
  Fixture f;
  f.ensure(bridge_net("default"));
  auto eps = f.mgr.attach("demo-web-1", 7, 1, {{"demo_default"}}).value();
  REQUIRE(f.mgr.publish("demo-web-1", {{std::nullopt, 8080, 0, Proto::kTcp, {}, 80, 0}}));
  CHECK(f.nft.runs.back().find("") == 0);
  bool published = false;
  for (const auto& run : f.nft.runs)
    published |= run.find("tcp dport 8080 dnat to " + eps[0].address.address.str() + ":80") !=
                 std::string::npos;
  CHECK(published);
  f.kernel.calls.clear();
  f.nft.runs.clear();
  REQUIRE(f.mgr.detach("demo-web-1"));
  CHECK(f.kernel.count("delete_link") == 0);
  CHECK(f.store.all().empty());
  CHECK(f.nft.runs.at(0).find("dport 8080") == std::string::npos);
  f.kernel.drop_netns(7);
  CHECK(!f.kernel.links.count(eps[0].host_veth));
}

TEST_CASE("a failed attach gives back every address it took") {
  Fixture f;
  f.ensure(bridge_net("a"));
  f.ensure(bridge_net("b"));
  f.kernel.fail_on["configure_interface"] = 2;
  auto r = f.mgr.attach("demo-web-1", 7, 1, {{"demo_a"}, {"demo_b"}});
  REQUIRE(!r);
  CHECK(r.error().message.find("attach demo-web-1 to demo_b") == 0);
  CHECK(f.store.all().empty());
  CHECK(f.mgr.endpoints("demo-web-1").empty());
}

TEST_CASE("a static address is honoured and a restarted daemon hands out no duplicate") {
  Fixture f;
  auto spec = bridge_net("default");
  spec.subnet = cidr("172.29.0.0/24");
  f.ensure(spec);
  auto db = f.mgr.attach("demo-db-1", 7, 1, {{"demo_default", ip("172.29.0.10")}}).value();
  CHECK(db[0].address.str() == "172.29.0.10/24");
  auto web = f.mgr.attach("demo-web-1", 8, 1, {{"demo_default"}}).value();

  // A new manager on the same store: the state store of a restarted daemon.
  NetworkManager again{f.kernel, f.firewall, f.store, f.peers, NetworkOptions{}};
  REQUIRE(again.ensure_network(spec));
  auto next = again.attach("demo-web-2", 9, 1, {{"demo_default"}}).value();
  CHECK(next[0].address != web[0].address);
  CHECK(next[0].address != db[0].address);
  // An adopted container's ports go to the address the store holds for it.
  REQUIRE(again.publish("demo-db-1", {{std::nullopt, 5432, 0, Proto::kTcp, {}, 5432, 0}}));
  CHECK(f.nft.runs[f.nft.runs.size() - 2].find("tcp dport 5432 dnat to 172.29.0.10:5432") !=
        std::string::npos);
}

TEST_CASE("an overlay network: vxlan in its bridge, one FDB entry per peer, MTU 1450") {
  Fixture f;
  auto spec = bridge_net("over");
  spec.driver = Driver::kOverlay;
  spec.subnet = cidr("10.70.0.0/24");
  spec.ip_range = cidr("10.70.0.0/25");
  spec.underlay = ip("192.168.240.1");
  f.peers.set("demo_over",
              StaticPeers::parse("192.168.240.1, 192.168.240.2,192.168.240.3").value());
  auto info = f.ensure(spec);
  CHECK(info.vni == derive_vni("demo", "over"));
  CHECK(info.mtu == 1450);
  CHECK(has_call(f.kernel, "ensure_vxlan " + info.vxlan + " " + std::to_string(info.vni) +
                               " 192.168.240.1 " + info.bridge));
  CHECK(f.kernel.list_fdb_remotes(info.vxlan).value() ==
        std::vector<Ipv4>{ip("192.168.240.2"), ip("192.168.240.3")});
  f.kernel.calls.clear();
  f.ensure(spec);  // converged: no entry appended twice
  CHECK(f.kernel.count("append_fdb") == 0);
  auto eps = f.mgr.attach("demo-a-1", 7, 1, {{"demo_over"}}).value();
  CHECK(eps[0].mtu == 1450);
  CHECK(eps[0].address.address.str() == "10.70.0.2");

  auto no_local = bridge_net("over2");
  no_local.driver = Driver::kOverlay;
  auto r = f.mgr.ensure_network(no_local);
  REQUIRE(!r);
  CHECK(r.error().message.find("driver_opts.local") != std::string::npos);
}

TEST_CASE("drift: a deleted bridge is observed and ensure_network makes it again") {
  Fixture f;
  auto info = f.ensure(bridge_net("default"));
  CHECK(f.mgr.observe_missing().value().empty());
  f.kernel.links.erase(info.bridge);
  CHECK(f.mgr.observe_missing().value() == std::vector<std::string>{"demo_default"});
  f.ensure(bridge_net("default"));
  CHECK(f.mgr.observe_missing().value().empty());
}

TEST_CASE("remove_network is refused while attached, then bridge, vxlan and the table go") {
  Fixture f;
  auto info = f.ensure(bridge_net("default"));
  REQUIRE(f.mgr.attach("demo-web-1", 7, 1, {{"demo_default"}}));
  auto busy = f.mgr.remove_network("demo_default");
  REQUIRE(!busy);
  CHECK(busy.error().sys_errno == EBUSY);
  REQUIRE(f.mgr.detach("demo-web-1"));
  REQUIRE(f.mgr.remove_network("demo_default"));
  CHECK(!f.kernel.links.count(info.bridge));
  CHECK(f.nft.runs[f.nft.runs.size() - 2] ==
        "table ip stack {}\ndelete table ip stack\ntable ip6 stack {}\ndelete table ip6 "
              "stack\ntable bridge stack {}\ndelete table bridge "
        "stack\n");
  CHECK(f.store.all().empty());
}

TEST_CASE("another instance's manager writes only its own table, named after it") {
  test::FakeNetlink kernel;
  test::FakeNft nft;
  Firewall firewall{nft, kernel};
  MemoryAddressStore store;
  StaticPeers peers;
  NetworkManager mgr{kernel, firewall, store, peers, NetworkOptions{"1a2b3c4d", {}, true}};
  REQUIRE(mgr.ensure_network(bridge_net("default")));
  CHECK(mgr.firewall_model().table == "stack-1a2b3c4d");
  CHECK(nft.runs.at(0).starts_with("table ip stack-1a2b3c4d {}\ndelete table ip stack-1a2b3c4d\n"));
  CHECK(nft.runs.at(0).find("table ip stack {") == std::string::npos);
  REQUIRE(mgr.remove_network("demo_default"));
  CHECK(nft.runs[nft.runs.size() - 2] ==
        "table ip stack-1a2b3c4d {}\ndelete table ip stack-1a2b3c4d\ntable ip6 stack-1a2b3c4d "
        "{}\ndelete table ip6 stack-1a2b3c4d\ntable bridge stack-1a2b3c4d "
        "{}\ndelete table bridge stack-1a2b3c4d\n");
}

TEST_CASE("a port's anti-spoofing rules are applied before the port exists, with its MAC") {
  Fixture f;
  f.ensure(bridge_net("default"));
  f.nft.runs.clear();
  auto eps = f.mgr.attach("demo-web-1", 7, 1, {{"demo_default"}}).value();
  REQUIRE(eps.size() == 1);
  CHECK(eps[0].mac == container_mac(eps[0].address.address));
  CHECK(eps[0].mac.str() == "02:5d:0a:59:00:02");
  CHECK(eps[0].default_route);
  // The peer was born with that MAC, and the sets held it by then: one small transaction.
  CHECK(f.kernel.netns[7]["eth0"].info.mac == eps[0].mac);
  auto v = "\"" + eps[0].host_veth + "\"";
  CHECK(f.nft.runs == std::vector<std::string>{
                          "add element bridge stack ports { " + v +
                          " }\nadd element bridge stack port_addresses { " + v +
                          " . 02:5d:0a:59:00:02 . 10.89.0.2 }\n"});

  // When the link cannot be made, the rules were already there; they go with the address.
  f.nft.runs.clear();
  f.kernel.fail_on["create_veth"] = 2;
  auto r = f.mgr.attach("demo-web-2", 8, 1, {{"demo_default"}});
  REQUIRE(!r);
  REQUIRE(f.nft.runs.size() >= 2);
  CHECK(f.nft.runs[0].find("10.89.0.3") != std::string::npos);  // applied before create_veth
  CHECK(f.nft.runs.back().find("10.89.0.3") == std::string::npos);
  CHECK(f.mgr.endpoints("demo-web-2").empty());

  // Detach takes the container's port out of the sets.
  f.nft.runs.clear();
  REQUIRE(f.mgr.detach("demo-web-1"));
  CHECK(f.nft.runs == std::vector<std::string>{
                          "delete element bridge stack ports { " + v +
                          " }\ndelete element bridge stack port_addresses { " + v +
                          " . 02:5d:0a:59:00:02 . 10.89.0.2 }\n"});

  // Sets that are not as the model says (the small change fails): the whole model instead.
  f.nft.runs.clear();
  f.nft.fail_on_run = 1;
  f.kernel.fail_on.clear();
  auto third = f.mgr.attach("demo-web-3", 9, 1, {{"demo_default"}}).value();
  REQUIRE(f.nft.runs.size() >= 2);
  CHECK(f.nft.runs[0].starts_with("add element"));
  CHECK(f.nft.runs[1].starts_with("table ip stack {}\ndelete table ip stack\n"));
  CHECK(f.nft.runs[1].find("\"" + third[0].host_veth + "\" . ") != std::string::npos);
}

TEST_CASE("a network named in the file is one bridge whichever project makes it") {
  Fixture f;
  NetworkSpec a = bridge_net("front");
  a.host_name = "shared-front";
  auto made = f.ensure(a);
  CHECK(made.bridge == bridge_name("", "", "shared-front"));
  CHECK(made.bridge != bridge_name("", "demo", "front"));
  CHECK(f.mgr.find("shared-front") != nullptr);
  CHECK(f.mgr.find("demo_front") == nullptr);
  NetworkSpec b = a;
  b.project = "other";
  b.name = "edge";  // another key in another file, the same name
  auto again = f.ensure(b);
  CHECK(again.bridge == made.bridge);
  CHECK(again.addressing.subnet.str() == made.addressing.subnet.str());
}

TEST_CASE("link_local_ips: extra addresses on the container's interface, no route") {
  Fixture f;
  auto net = f.ensure(bridge_net("default"));
  f.kernel.calls.clear();
  EndpointRequest req{"demo_default"};
  req.link_local_ips = {cidr("169.254.7.7/16")};
  req.link_local_ips6 = {Cidr6::parse("fe80::7/64").value()};
  auto eps = f.mgr.attach("demo-web-1", 7, 1, {req}).value();
  REQUIRE(eps.size() == 1);
  CHECK(f.kernel.calls.at(1) == "configure_interface eth0 " + eps[0].address.str() + " 1500 via " +
                                    net.addressing.gateway.str() + " +169.254.7.7/16 +fe80::7/64");
}
