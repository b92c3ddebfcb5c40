// The nftables ruleset as text: masquerade, isolation, internal networks, published ports with
// 127.0.0.1 and hairpin, the atomic replace transaction, and the Docker FORWARD accepts (against
// a FakeNft). Pure, no root.
#include <doctest/doctest.h>

#include "net/firewall.h"
#include "support/fake_netlink.h"
#include "support/netlink_contract.h"

using namespace stack;
using namespace stack::net;
using test::cidr;
using test::ip;

namespace {

FirewallModel two_networks() {
  FirewallModel m;
  m.networks = {{"stk-bbbbbbbb", cidr("10.89.1.0/24"), true},
                {"stk-aaaaaaaa", cidr("10.89.0.0/24"), false}};
  m.ports = {
      {ip("127.0.0.1"), 8081, 0, Proto::kTcp, ip("10.89.0.3"), 80, 0},
      {std::nullopt, 8080, 0, Proto::kTcp, ip("10.89.0.2"), 80, 0},
      {std::nullopt, 5353, 0, Proto::kUdp, ip("10.89.0.2"), 53, 0},
  };
  return m;
}

}  // namespace

TEST_CASE("the whole table renders from the model, sorted") {
  auto text = render_table(two_networks()).value();
  CHECK(text == R"(table ip stack {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump published
	}
	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump published
	}
	chain published {
		tcp dport 8080 dnat to 10.89.0.2:80
		udp dport 5353 dnat to 10.89.0.2:53
		ip daddr 127.0.0.1 tcp dport 8081 dnat to 10.89.0.3:80
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "stk-aaaaaaaa" ip saddr 127.0.0.0/8 masquerade
		oifname "stk-aaaaaaaa" ip saddr 10.89.0.0/24 ct status dnat masquerade
		ip saddr 10.89.0.0/24 oifname != "stk-aaaaaaaa" masquerade
		oifname "stk-bbbbbbbb" ip saddr 127.0.0.0/8 masquerade
		oifname "stk-bbbbbbbb" ip saddr 10.89.1.0/24 ct status dnat masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "stk-bbbbbbbb" oifname != "stk-bbbbbbbb" drop
		oifname "stk-bbbbbbbb" iifname != "stk-bbbbbbbb" drop
		ct status dnat accept
		iifname "stk-aaaaaaaa" oifname "stk-*" oifname != "stk-aaaaaaaa" drop
		iifname "stk-bbbbbbbb" oifname "stk-*" oifname != "stk-bbbbbbbb" drop
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname { "stk-aaaaaaaa", "stk-bbbbbbbb" } ip daddr 127.0.0.0/8 ct state != { established, related } ct status & dnat == 0 drop
	}
}
)");
  auto shuffled = two_networks();
  std::swap(shuffled.ports[0], shuffled.ports[2]);
  std::swap(shuffled.networks[0], shuffled.networks[1]);
  CHECK(render_table(shuffled).value() == text);
}

TEST_CASE("port ranges map one to one or onto a single port") {
  FirewallModel m;
  m.networks = {{"stk-aaaaaaaa", cidr("10.89.0.0/24"), false}};
  m.ports = {{std::nullopt, 9000, 9002, Proto::kTcp, ip("10.89.0.2"), 7000, 7002},
             {std::nullopt, 9100, 9109, Proto::kUdp, ip("10.89.0.2"), 53, 0}};
  auto text = render_table(m).value();
  CHECK(text.find(
            "\t\ttcp dport 9000 dnat to 10.89.0.2:7000\n\t\ttcp dport 9001 dnat to 10.89.0.2:7001\n"
            "\t\ttcp dport 9002 dnat to 10.89.0.2:7002\n") != std::string::npos);
  CHECK(text.find("\t\tudp dport 9100-9109 dnat to 10.89.0.2:53\n") != std::string::npos);
  m.ports = {{std::nullopt, 9000, 9002, Proto::kTcp, ip("10.89.0.2"), 7000, 7005}};
  auto bad = render_table(m);
  REQUIRE(!bad);
  CHECK(bad.error().message.find("9000-9002 does not match 7000-7005") != std::string::npos);
}

TEST_CASE("an sctp port is matched and DNATed like tcp and udp, on IPv4 and IPv6") {
  FirewallModel m;
  m.networks = {{"stk-aaaaaaaa", cidr("10.89.0.0/24"), false}};
  m.networks[0].subnet6 = Cidr6::parse("fd00:89::/64").value();
  PortMapping p{std::nullopt, 8080, 0, Proto::kSctp, ip("10.89.0.2"), 80, 0};
  p.container_ip6 = Ipv6::parse("fd00:89::2").value();
  m.ports = {p, {ip("127.0.0.1"), 9000, 9001, Proto::kSctp, ip("10.89.0.2"), 7000, 7001}};
  auto text = render_table(m).value();
  CHECK(text.find("\t\tsctp dport 8080 dnat to 10.89.0.2:80\n") != std::string::npos);
  CHECK(text.find("\t\tip daddr 127.0.0.1 sctp dport 9001 dnat to 10.89.0.2:7001\n") !=
        std::string::npos);
  CHECK(render_table6(m).value().find("\t\tsctp dport 8080 dnat to [fd00:89::2]:80\n") !=
        std::string::npos);
}

TEST_CASE("another instance's tables are its own: named after it, replaced and removed alone") {
  auto m = two_networks();
  m.table = "stack-1a2b3c4d";
  auto tx = render_transaction(m).value();
  CHECK(tx.starts_with(
      "table ip stack-1a2b3c4d {}\ndelete table ip stack-1a2b3c4d\ntable ip6 stack-1a2b3c4d "
      "{}\ndelete table ip6 stack-1a2b3c4d\ntable bridge stack-1a2b3c4d "
      "{}\ndelete table bridge stack-1a2b3c4d\ntable ip stack-1a2b3c4d {\n"));
  // Nothing in it names the default instance's tables (or any other).
  for (const char* other : {"table ip stack ", "table bridge stack ", "table ip stack {",
                            "table bridge stack {", "delete table ip stack\n"})
    CHECK(tx.find(other) == std::string::npos);
  m.networks.clear();
  CHECK(render_transaction(m).value() ==
        "table ip stack-1a2b3c4d {}\ndelete table ip stack-1a2b3c4d\ntable ip6 stack-1a2b3c4d "
        "{}\ndelete table ip6 stack-1a2b3c4d\ntable bridge stack-1a2b3c4d "
        "{}\ndelete table bridge stack-1a2b3c4d\n");
}

TEST_CASE("the tables are replaced in one transaction and removed with the last network") {
  const std::string head =
      "table ip stack {}\ndelete table ip stack\ntable ip6 stack {}\ndelete table ip6 stack\n"
      "table bridge stack {}\ndelete table bridge stack\n";
  auto tx = render_transaction(two_networks()).value();
  CHECK(tx == head + render_table(two_networks()).value() + render_bridge_table(two_networks()));
  CHECK(render_transaction({}).value() == head);
  CHECK(render_bridge_table({}).empty());
}

TEST_CASE("a container port accepts only its own MAC and IPv4 address, and IPv6 only with one") {
  auto m = two_networks();
  m.endpoints = {{"stk00000000b", Mac{{2, 0x5d, 10, 89, 0, 3}}, ip("10.89.0.3")},
                 {"stk00000000a", Mac{{2, 0x5d, 10, 89, 0, 2}}, ip("10.89.0.2")}};
  CHECK(render_bridge_table(m) == R"(table bridge stack {
	set ports {
		type ifname
		elements = { "stk00000000a", "stk00000000b" }
	}
	set port_addresses {
		type ifname . ether_addr . ipv4_addr
		elements = { "stk00000000a" . 02:5d:0a:59:00:02 . 10.89.0.2, "stk00000000b" . 02:5d:0a:59:00:03 . 10.89.0.3 }
	}
	set ports6 {
		type ifname
	}
	set port_addresses6 {
		type ifname . ether_addr . ipv6_addr
	}
	set port_macs6 {
		type ifname . ether_addr
	}
	chain prerouting {
		type filter hook prerouting priority filter; policy accept;
		iifname @ports jump port
	}
	chain port {
		ether type != { ip, arp, ip6 } drop
		ether type ip6 iifname != @ports6 drop
		icmpv6 type { nd-router-advert, nd-redirect } drop
		iifname . ether saddr . ip saddr != @port_addresses drop
		iifname . ether saddr . arp saddr ip != @port_addresses drop
		iifname . arp saddr ether . arp saddr ip != @port_addresses drop
		ip6 saddr != { ::, fe80::/10 } iifname . ether saddr . ip6 saddr != @port_addresses6 drop
		ip6 saddr { ::, fe80::/10 } iifname . ether saddr != @port_macs6 drop
	}
}
)");
  // No container yet: empty sets (nft refuses `elements = { }`).
  m.endpoints.clear();
  CHECK(render_bridge_table(m).starts_with(
      "table bridge stack {\n\tset ports {\n\t\ttype ifname\n\t}\n\tset port_addresses {\n\t\ttype "
      "ifname . ether_addr . ipv4_addr\n\t}\n"));
}

TEST_CASE("a container's start or exit changes only the port sets") {
  FirewallEndpoint a{"stk00000000a", Mac{{2, 0x5d, 10, 89, 0, 2}}, ip("10.89.0.2")};
  FirewallEndpoint b{"stk00000000b", Mac{{2, 0x5d, 10, 89, 0, 3}}, ip("10.89.0.3")};
  CHECK(render_endpoint_change("stack-1a2b3c4d", {a, b}, {}) ==
        "add element bridge stack-1a2b3c4d ports { \"stk00000000a\", \"stk00000000b\" }\n"
        "add element bridge stack-1a2b3c4d port_addresses { \"stk00000000a\" . 02:5d:0a:59:00:02 . "
        "10.89.0.2, \"stk00000000b\" . 02:5d:0a:59:00:03 . 10.89.0.3 }\n");
  CHECK(render_endpoint_change("stack", {}, {a}) ==
        "delete element bridge stack ports { \"stk00000000a\" }\n"
        "delete element bridge stack port_addresses { \"stk00000000a\" . 02:5d:0a:59:00:02 . "
        "10.89.0.2 }\n");
  CHECK(render_endpoint_change("stack", {}, {}).empty());
}

TEST_CASE("ARP for an overlay's gateway stays on its host") {
  FirewallModel m;
  m.networks = {{"stk-aaaaaaaa", cidr("10.89.0.0/24"), false},
                {"stk-cccccccc", cidr("10.70.0.0/24"), false, "stx-4242", ip("10.70.0.1")}};
  auto text = render_bridge_table(m);
  CHECK(text.ends_with(R"(	chain forward {
		type filter hook forward priority filter; policy accept;
		oifname "stx-4242" arp daddr ip 10.70.0.1 drop
		iifname "stx-4242" arp saddr ip 10.70.0.1 drop
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "stx-4242" arp saddr ip 10.70.0.1 drop
	}
}
)"));
  // The vxlan device is a port of the bridge, but no container's: not in the port set.
  CHECK(text.find("elements") == std::string::npos);
  CHECK(render_transaction(m).value().ends_with(text));
}

TEST_CASE("apply runs one buffer and leaves a host without Docker's chain alone") {
  test::FakeNft nft;
  test::FakeNetlink kernel;
  Firewall fw(nft, kernel);
  REQUIRE(fw.apply(two_networks()));
  REQUIRE(nft.runs.size() == 2);
  CHECK(nft.runs[0] == render_transaction(two_networks()).value());
  CHECK(nft.runs[1] == "list chain ip filter FORWARD");
}

TEST_CASE(
    "on a Docker host, accepts for stk-* go into FORWARD once and leave with the last network") {
  test::FakeNft nft;
  test::FakeNetlink kernel;
  kernel.sysctls["net/bridge/bridge-nf-call-iptables"] = "1";
  nft.listings["list chain ip filter FORWARD"] =
      "table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy "
      "drop;\n\t}\n}\n";
  Firewall fw(nft, kernel);
  auto docker = fw.observe_docker_forward().value();
  CHECK(docker.forward_drop);
  CHECK(docker.br_netfilter);
  CHECK(docker.chain == "FORWARD");

  REQUIRE(fw.apply(two_networks()));
  CHECK(nft.runs.back() ==
        "insert rule ip filter FORWARD iifname \"stk-*\" accept comment \"stack\"\n"
        "insert rule ip filter FORWARD oifname \"stk-*\" accept comment \"stack\"\n");

  // Already there (as nft lists them with handles): nothing inserted again.
  nft.listings["list chain ip filter FORWARD"] =
      "table ip filter {\n\tchain FORWARD { # handle 1\n\t\ttype filter hook forward priority "
      "filter; policy drop;\n"
      "\t\toifname \"stk-*\" accept comment \"stack\" # handle 7\n"
      "\t\tiifname \"stk-*\" accept comment \"stack\" # handle 6\n\t}\n}\n";
  nft.runs.clear();
  REQUIRE(fw.apply(two_networks()));
  CHECK(nft.runs.back().starts_with("list chain"));

  REQUIRE(fw.apply({}));
  CHECK(nft.runs.back() ==
        "delete rule ip filter FORWARD handle 6\ndelete rule ip filter FORWARD handle 7\n");
}

TEST_CASE("an instance removes only its own accepts from Docker's chain") {
  test::FakeNft nft;
  test::FakeNetlink kernel;
  // Two instances' accepts, and the default one's, as nft lists them with handles.
  nft.listings["list chain ip filter FORWARD"] =
      "table ip filter {\n\tchain FORWARD { # handle 1\n\t\ttype filter hook forward priority "
      "filter; policy drop;\n"
      "\t\toifname \"stk-*\" accept comment \"stack-bbbbbbbb\" # handle 9\n"
      "\t\tiifname \"stk-*\" accept comment \"stack-bbbbbbbb\" # handle 8\n"
      "\t\toifname \"stk-*\" accept comment \"stack-aaaaaaaa\" # handle 7\n"
      "\t\tiifname \"stk-*\" accept comment \"stack-aaaaaaaa\" # handle 6\n"
      "\t\toifname \"stk-*\" accept comment \"stack\" # handle 5\n"
      "\t\tiifname \"stk-*\" accept comment \"stack\" # handle 4\n\t}\n}\n";
  Firewall fw(nft, kernel);
  FirewallModel a;
  a.table = "stack-aaaaaaaa";
  REQUIRE(fw.apply(a));
  CHECK(nft.runs.back() ==
        "delete rule ip filter FORWARD handle 6\ndelete rule ip filter FORWARD handle 7\n");
  // Instance b, still with networks, finds its accepts in place and adds none.
  auto b = two_networks();
  b.table = "stack-bbbbbbbb";
  nft.runs.clear();
  REQUIRE(fw.apply(b));
  CHECK(nft.runs.back().starts_with("list chain"));
  // A third instance adds its own pair even though others' are there.
  auto c = two_networks();
  c.table = "stack-cccccccc";
  REQUIRE(fw.apply(c));
  CHECK(nft.runs.back() ==
        "insert rule ip filter FORWARD iifname \"stk-*\" accept comment \"stack-cccccccc\"\n"
        "insert rule ip filter FORWARD oifname \"stk-*\" accept comment \"stack-cccccccc\"\n");
}

TEST_CASE("Docker's DOCKER-USER chain is preferred when it exists") {
  test::FakeNft nft;
  test::FakeNetlink kernel;
  nft.listings["list chain ip filter FORWARD"] = "chain FORWARD { policy drop; }";
  nft.listings["list chain ip filter DOCKER-USER"] = "chain DOCKER-USER { }";
  Firewall fw(nft, kernel);
  auto docker = fw.observe_docker_forward().value();
  CHECK(docker.chain == "DOCKER-USER");
  CHECK(!docker.br_netfilter);
  REQUIRE(fw.apply(two_networks()));
  CHECK(nft.runs.back().starts_with("insert rule ip filter DOCKER-USER iifname"));
}

TEST_CASE("a failed transaction is reported with context") {
  test::FakeNft nft;
  test::FakeNetlink kernel;
  nft.fail_on_run = 1;
  Firewall fw(nft, kernel);
  auto r = fw.apply(two_networks());
  REQUIRE(!r);
  CHECK(r.error().message == "apply firewall: nft: injected failure");
}
