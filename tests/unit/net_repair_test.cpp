// NetworkManager after a daemon restart and after drift, over FakeNetlink and FakeNft: adopted
// containers' endpoints (and anti-spoofing rules) come back without touching their links, a
// recreated bridge gets its ports back, a lost veth is made again, and the firewall can be held
// while a daemon re-learns its state. Pure, no root.
#include <doctest/doctest.h>

#include "net/naming.h"
#include "net/network.h"
#include "support/fake_netlink.h"
#include "support/netlink_contract.h"

using namespace stack;
using namespace stack::net;

namespace {

struct Fixture {
  test::FakeNetlink kernel;
  test::FakeNft nft;
  Firewall firewall{nft, kernel};
  MemoryAddressStore store;
  StaticPeers peers;
  NetworkManager mgr{kernel, firewall, store, peers, NetworkOptions{"", {}, true}};

  NetworkInfo ensure(const std::string& name, bool internal = false) {
    NetworkSpec s;
    s.project = "demo";
    s.name = name;
    s.internal = internal;
    auto r = mgr.ensure_network(s);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    return *r;
  }
};

}  // namespace

TEST_CASE("a restarted daemon adopts endpoints as they are and changes no link") {
  Fixture f;
  auto net = f.ensure("default");
  auto internal = f.ensure("back", true);
  auto eps = f.mgr.attach("demo-web-1", 7, 4242, {{"demo_back"}, {"demo_default"}}).value();
  // A container attached before MACs were derived: its interface has another one.
  net::Mac old_mac{{0x0a, 1, 2, 3, 4, 5}};
  f.kernel.netns[7]["eth1"].info.mac = old_mac;

  // A new manager over the same kernel and store: the restarted daemon.
  test::FakeNft nft2;
  Firewall fw2{nft2, f.kernel};
  NetworkManager again{f.kernel, fw2, f.store, f.peers, NetworkOptions{}};
  // As the daemon does, with the subnets the state store kept.
  NetworkSpec def = net.spec, back = internal.spec;
  def.subnet = net.addressing.subnet;
  back.subnet = internal.addressing.subnet;
  again.hold_firewall();
  REQUIRE(again.ensure_network(back));
  REQUIRE(again.ensure_network(def));
  f.kernel.calls.clear();
  auto adopted = again.adopt("demo-web-1", 7, 4242, {{"demo_back"}, {"demo_default"}}).value();
  CHECK(nft2.runs.empty());  // held: the previous ruleset stays until the complete one
  REQUIRE(adopted.size() == 2);
  for (size_t i = 0; i < 2; i++) {
    CHECK(adopted[i].host_veth == eps[i].host_veth);
    CHECK(adopted[i].address == eps[i].address);
    CHECK(adopted[i].ifname == eps[i].ifname);
  }
  CHECK(adopted[0].mac == eps[0].mac);
  CHECK(adopted[1].mac == old_mac);
  CHECK(!adopted[0].default_route);
  CHECK(adopted[1].default_route);
  for (const auto& c : f.kernel.calls) CHECK(c.rfind("get_link_in", 0) == 0);  // reads only
  REQUIRE(again.release_firewall());
  REQUIRE(nft2.runs.size() >= 1);
  CHECK(nft2.runs[0].find("\"" + eps[1].host_veth + "\" . " + old_mac.str()) != std::string::npos);
  CHECK(again.observe_detached().value().empty());
}

TEST_CASE("a recreated bridge gets its ports back, a lost veth is made again, nothing restarts") {
  Fixture f;
  auto info = f.ensure("default");
  auto eps = f.mgr.attach("demo-web-1", 7, 1, {{"demo_default"}}).value();
  f.mgr.attach("demo-db-1", 8, 1, {{"demo_default"}}).value();
  CHECK(f.mgr.observe_detached().value().empty());

  // The bridge is deleted: its ports survive, released; ensure makes the bridge again, empty.
  REQUIRE(f.kernel.delete_link(info.bridge));
  CHECK(f.kernel.links.at(eps[0].host_veth).info.master.empty());
  f.ensure("default");
  CHECK(f.mgr.observe_detached().value() == std::vector<std::string>{"demo-db-1", "demo-web-1"});
  f.kernel.calls.clear();
  CHECK(f.mgr.reattach("demo-web-1", 7).value() == std::vector<std::string>{"demo_default"});
  CHECK(f.kernel.calls ==
        std::vector<std::string>{"get_link " + eps[0].host_veth,
                                 "ensure_port " + eps[0].host_veth + " " + info.bridge});
  CHECK(f.kernel.links.at(eps[0].host_veth).info.master == info.bridge);
  CHECK(f.kernel.links.at(eps[0].host_veth).hairpin);
  CHECK(f.mgr.observe_detached().value() == std::vector<std::string>{"demo-db-1"});
  CHECK(f.mgr.reattach("demo-web-1", 7).value().empty());  // converged

  // The veth itself is gone (and its peer with it): made again in the namespace, as it was.
  REQUIRE(f.kernel.delete_link(eps[0].host_veth));
  CHECK(!f.kernel.netns[7].count("eth0"));
  CHECK(f.mgr.observe_detached().value() == std::vector<std::string>{"demo-db-1", "demo-web-1"});
  REQUIRE(f.mgr.reattach("demo-web-1", 7));
  auto& eth0 = f.kernel.netns[7].at("eth0");
  CHECK(eth0.info.mac == eps[0].mac);
  CHECK(eth0.addresses == std::vector<Cidr>{eps[0].address});
  CHECK(eth0.gateway == info.addressing.gateway);
  CHECK(f.kernel.links.at(eps[0].host_veth).info.master == info.bridge);
  REQUIRE(f.mgr.reattach("demo-db-1", 8));
  CHECK(f.mgr.observe_detached().value().empty());
}
