// The routing mesh's nftables rules (net/firewall_mesh.cpp): round-robin DNAT over the
// replicas' overlay addresses, the SNAT that brings another node's replies back, masquerade
// for local replicas, a port with no replica dropped, and their place in the instance's table.
// Pure, no root.
#include <doctest/doctest.h>

#include "net/firewall.h"
#include "support/netlink_contract.h"

using namespace stack;
using namespace stack::net;
using test::cidr;
using test::ip;

namespace {

MeshPort web(std::vector<MeshBackend> backends) {
  MeshPort p;
  p.port = 8080;
  p.target = 80;
  p.bridge = "stk-0e0e0e0e";
  p.snat = ip("10.128.5.9");
  p.backends = std::move(backends);
  return p;
}

}  // namespace

TEST_CASE("mesh: a published port is DNATed round robin to every replica and SNATed onto the overlay") {
  auto rules = render_mesh({web({{ip("10.128.5.3"), false}, {ip("10.128.5.2"), true}})}).value();
  CHECK(rules.published ==
        "\t\ttcp dport 8080 meta mark set 0x53544d00 dnat ip to numgen inc mod 2 map { "
        "0 : 10.128.5.2 . 80, 1 : 10.128.5.3 . 80 }\n");
  CHECK(rules.postrouting ==
        "\t\tmeta mark 0x53544d00 oifname \"stk-0e0e0e0e\" ip daddr { 10.128.5.2 } masquerade\n"
        "\t\tmeta mark 0x53544d00 oifname \"stk-0e0e0e0e\" snat ip to 10.128.5.9\n");
}

TEST_CASE("mesh: a port without a healthy replica drops rather than reaching a local container") {
  auto p = web({});
  p.proto = Proto::kUdp;
  auto rules = render_mesh({p}).value();
  CHECK(rules.published == "\t\tudp dport 8080 drop\n");
  CHECK(rules.postrouting.empty());
  CHECK_FALSE(render_mesh({web({})}).value().published.find("tcp dport 8080 drop") ==
              std::string::npos);
  auto bad = web({{ip("10.128.5.2"), false}});
  bad.target = 0;
  CHECK_FALSE(render_mesh({bad}));
}

TEST_CASE("mesh: its rules come first in the instance's table, before the node-local ports") {
  FirewallModel m;
  m.networks = {{"stk-0e0e0e0e", cidr("10.128.5.0/24"), false}};
  m.ports = {{std::nullopt, 8080, 0, Proto::kTcp, ip("10.128.5.2"), 80, 0}};
  m.mesh = {web({{ip("10.128.5.2"), true}})};
  auto text = render_table(m).value();
  auto mesh_at = text.find("tcp dport 8080 meta mark set");
  auto local_at = text.find("tcp dport 8080 dnat to 10.128.5.2:80");
  REQUIRE(mesh_at != std::string::npos);
  REQUIRE(local_at != std::string::npos);
  CHECK(mesh_at < local_at);
  auto snat_at = text.find("snat ip to 10.128.5.9");
  auto masq_at = text.find("oifname != \"stk-0e0e0e0e\" masquerade");
  REQUIRE(snat_at != std::string::npos);
  CHECK(snat_at < masq_at);
  // Equal models render equally, whatever the order of the replicas.
  FirewallModel m2 = m;
  m2.mesh = {web({{ip("10.128.5.2"), true}})};
  CHECK(render_table(m2).value() == text);
}
