// IPv6 networks without root: IPv6 values, the ULA pool and a network's IPv6 subnet, the
// containers' IPv6 addresses, the ip6 table (NAT66, published ports) and the bridge table's IPv6
// anti-spoofing as text, NetworkManager over FakeNetlink, AAAA answers over loopback sockets,
// and what the stack file checks accept and refuse.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "dns_loopback.h"
#include "net/dns/dns_server.h"
#include "net/network.h"
#include "spec/loader.h"
#include "support/fake_netlink.h"
#include "support/temp_dir.h"

using namespace stack;

namespace {

net::Ipv6 ip6(const char* text) {
  auto r = net::Ipv6::parse(text);
  REQUIRE_MESSAGE(r, text);
  return *r;
}
net::Cidr6 cidr6(const char* text) {
  auto r = net::Cidr6::parse(text);
  REQUIRE_MESSAGE(r, text);
  return *r;
}
bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("ipv6: addresses and blocks parse strictly and print in RFC 5952 form") {
  CHECK(ip6("FD00:0:0:0::1").str() == "fd00::1");
  CHECK_FALSE(net::Ipv6::parse("fd00::1::2"));
  CHECK_FALSE(net::Ipv6::parse("[fd00::1]"));
  CHECK_FALSE(net::Ipv6::parse("10.0.0.1"));
  CHECK_FALSE(net::Cidr6::parse("fd00::/129"));
  CHECK_FALSE(net::Cidr6::parse("fd00::"));
  auto c = cidr6("fd12:3456:789a:1::5/64");
  CHECK(c.network().str() == "fd12:3456:789a:1::/64");
  CHECK(c.contains(ip6("fd12:3456:789a:1:ffff::1")));
  CHECK_FALSE(c.contains(ip6("fd12:3456:789a:2::1")));
  CHECK(c.at(0x1ff).str() == "fd12:3456:789a:1::1ff");
  CHECK(cidr6("fd00::/48").overlaps(cidr6("fd00:0:0:7::/64")));
  CHECK_FALSE(cidr6("fd00:1::/64").overlaps(cidr6("fd00:2::/64")));
}

TEST_CASE("ipv6: the default pool is a ULA /48 of the instance, a network's subnet a /64 of it") {
  auto pool = net::ula_pool("");
  CHECK(pool.prefix == 48);
  CHECK(pool.address.bytes[0] == 0xfd);
  CHECK(net::ula_pool("") == pool);  // stable across restarts
  CHECK_FALSE(net::ula_pool("a1b2c3") == pool);
  auto a = net::plan_ipv6("demo_default", 24, std::nullopt, std::nullopt, pool, {});
  REQUIRE(a);
  CHECK(a->subnet.prefix == 64);
  CHECK(pool.contains(a->subnet.address));
  CHECK(a->gateway == a->subnet.at(1));
  // The same name gives the same subnet; a taken one moves to the next.
  auto again = net::plan_ipv6("demo_default", 24, std::nullopt, std::nullopt, pool, {});
  CHECK(again->subnet == a->subnet);
  auto moved = net::plan_ipv6("demo_default", 24, std::nullopt, std::nullopt, pool, {a->subnet});
  REQUIRE(moved);
  CHECK_FALSE(moved->subnet.overlaps(a->subnet));

  // The user's subnet and gateway, checked.
  auto user = net::plan_ipv6("demo_n", 24, cidr6("fd00:db8:1::/64"), ip6("fd00:db8:1::fe"), pool,
                             {});
  REQUIRE(user);
  CHECK(user->gateway.str() == "fd00:db8:1::fe");
  auto small = net::plan_ipv6("demo_n", 16, cidr6("fd00:db8:1::/120"), std::nullopt, pool, {});
  REQUIRE_FALSE(small);
  CHECK(has(small.error().message, "smaller than the IPv4 subnet"));
  auto outside =
      net::plan_ipv6("demo_n", 24, cidr6("fd00:db8:1::/64"), ip6("fd00:db8:2::1"), pool, {});
  REQUIRE_FALSE(outside);
  CHECK(has(outside.error().message, "outside the subnet"));
  auto clash =
      net::plan_ipv6("demo_n", 24, cidr6("fd00:db8:1::/64"), std::nullopt, pool, {user->subnet});
  REQUIRE_FALSE(clash);
  CHECK(has(clash.error().message, "overlaps"));
}

TEST_CASE("ipv6: a container's address is its IPv4 address's image, or its ipv6_address") {
  net::Addressing6 v6{cidr6("fd00:db8:1::/64"), ip6("fd00:db8:1::1")};
  auto v4 = *net::Cidr::parse("10.89.3.0/24");
  CHECK(net::ipv6_address_for(v6, v4, *net::Ipv4::parse("10.89.3.7"), std::nullopt)->str() ==
        "fd00:db8:1::7");
  CHECK(net::ipv6_address_for(v6, v4, *net::Ipv4::parse("10.89.3.7"), ip6("fd00:db8:1::99"))
            ->str() == "fd00:db8:1::99");
  CHECK_FALSE(net::ipv6_address_for(v6, v4, *net::Ipv4::parse("10.89.3.7"), ip6("fd00:9::1")));
  CHECK_FALSE(net::ipv6_address_for(v6, v4, *net::Ipv4::parse("10.89.3.7"), ip6("fd00:db8:1::1")));
}

TEST_CASE("ipv6: the ip6 table masquerades egress and publishes ports, never from ::1") {
  net::FirewallModel m;
  m.networks.push_back({"stk-v6", *net::Cidr::parse("10.89.3.0/24"), false, "", {},
                        cidr6("fd00:db8:1::/64")});
  m.networks.push_back({"stk-v4", *net::Cidr::parse("10.89.4.0/24")});
  net::PortMapping p;
  p.host_port = 8080;
  p.container_ip = *net::Ipv4::parse("10.89.3.2");
  p.container_port = 80;
  p.container_ip6 = ip6("fd00:db8:1::2");
  m.ports.push_back(p);
  net::PortMapping only6 = p;
  only6.host_port = 8443;
  only6.host_ip6 = net::Ipv6{};  // "[::]:8443:80"
  m.ports.push_back(only6);
  auto t6 = net::render_table6(m);
  REQUIRE(t6);
  CHECK(has(*t6, "table ip6 stack {"));
  CHECK(has(*t6, "ip6 saddr fd00:db8:1::/64 oifname != \"stk-v6\" masquerade"));
  CHECK(has(*t6, "tcp dport 8080 dnat to [fd00:db8:1::2]:80"));
  CHECK(has(*t6, "tcp dport 8443 dnat to [fd00:db8:1::2]:80"));
  CHECK(has(*t6, "ip6 daddr != ::1 fib daddr type local jump published"));
  CHECK_FALSE(has(*t6, "stk-v4\" masquerade"));
  // "[::]:8443" is IPv6 only; "8080" both.
  auto t4 = net::render_table(m);
  REQUIRE(t4);
  CHECK(has(*t4, "tcp dport 8080 dnat to 10.89.3.2:80"));
  CHECK_FALSE(has(*t4, "8443"));
  // No network with IPv6: no ip6 table, but the transaction still removes one.
  net::FirewallModel v4only;
  v4only.networks.push_back(m.networks[1]);
  CHECK(net::render_table6(v4only)->empty());
  CHECK(has(*net::render_transaction(v4only), "delete table ip6 stack"));
}

TEST_CASE("ipv6: a port passes IPv6 only with its own address, and never a router advert") {
  net::FirewallModel m;
  m.networks.push_back({"stk-v6", *net::Cidr::parse("10.89.3.0/24"), false, "", {},
                        cidr6("fd00:db8:1::/64")});
  net::Mac mac{{2, 0x42, 10, 89, 3, 2}};
  m.endpoints.push_back({"stk0a", mac, *net::Ipv4::parse("10.89.3.2"), ip6("fd00:db8:1::2")});
  m.endpoints.push_back({"stk0b", mac, *net::Ipv4::parse("10.89.4.2")});
  auto t = net::render_bridge_table(m);
  CHECK(has(t, "ether type ip6 iifname != @ports6 drop"));
  CHECK(has(t, "icmpv6 type { nd-router-advert, nd-redirect } drop"));
  CHECK(has(t, "elements = { \"stk0a\" . 02:42:0a:59:03:02 . fd00:db8:1::2 }"));
  CHECK(has(t, "set ports6 {\n\t\ttype ifname\n\t\telements = { \"stk0a\" }"));
  auto change = net::render_endpoint_change("stack", {m.endpoints[0]}, {});
  CHECK(has(change, "add element bridge stack port_addresses6 { \"stk0a\" . 02:42:0a:59:03:02 . "
                    "fd00:db8:1::2 }"));
}

TEST_CASE("ipv6: a network with enable_ipv6 gives its bridge and containers IPv6 and a route") {
  test::FakeNetlink kernel;
  test::FakeNft nft;
  net::Firewall firewall{nft, kernel};
  net::MemoryAddressStore store;
  net::StaticPeers peers;
  net::NetworkManager mgr{kernel, firewall, store, peers, net::NetworkOptions{"", {}, true}};
  net::NetworkSpec spec;
  spec.project = "demo";
  spec.name = "v6";
  spec.enable_ipv6 = true;
  spec.subnet6 = cidr6("fd00:db8:7::/64");
  kernel.uplinks6 = {"eth9"};
  auto info = mgr.ensure_network(spec);
  REQUIRE_MESSAGE(info, (info ? "" : info.error().message));
  REQUIRE(info->v6);
  CHECK(std::count(kernel.calls.begin(), kernel.calls.end(),
                   "ensure_bridge " + info->bridge + " 10.89.0.1/24 1500 fd00:db8:7::1/64") == 1);
  CHECK(kernel.sysctls["net/ipv6/conf/" + info->bridge + "/force_forwarding"] == "1");
  // NAT66 replies are forwarded from the uplink; not all.forwarding (the host stays a host).
  CHECK(kernel.sysctls["net/ipv6/conf/eth9/force_forwarding"] == "1");
  CHECK_FALSE(kernel.sysctls.count("net/ipv6/conf/all/forwarding"));
  CHECK(std::any_of(nft.runs.begin(), nft.runs.end(), [&](const std::string& run) {
    return has(run, "ip6 saddr fd00:db8:7::/64 oifname != \"" + info->bridge + "\" masquerade");
  }));

  kernel.netns[7];
  auto eps = mgr.attach("demo-a-1", 7, 100, {{"demo_v6"}});
  REQUIRE_MESSAGE(eps, (eps ? "" : eps.error().message));
  REQUIRE(eps->front().address6);
  CHECK(eps->front().address6->str() == "fd00:db8:7::2/64");
  CHECK(std::count(kernel.calls.begin(), kernel.calls.end(),
                   "configure_interface eth0 10.89.0.2/24 1500 via 10.89.0.1 fd00:db8:7::2/64 via "
                   "fd00:db8:7::1") == 1);
  // A static address another container holds is refused, naming it.
  net::EndpointRequest req{"demo_v6"};
  req.ipv6_address = ip6("fd00:db8:7::2");
  kernel.netns[8];
  auto clash = mgr.attach("demo-b-1", 8, 101, {req});
  REQUIRE_FALSE(clash);
  CHECK(has(clash.error().message, "in use by demo-a-1"));
  // Adoption after a restart finds the same address (from the stored IPv4 one; the reconciler
  // gives back the stored IPv4 subnet, as here).
  net::NetworkManager again{kernel, firewall, store, peers, net::NetworkOptions{"", {}, true}};
  spec.subnet = info->addressing.subnet;
  REQUIRE(again.ensure_network(spec));
  auto adopted = again.adopt("demo-a-1", -1, 100, {{"demo_v6"}});
  REQUIRE_MESSAGE(adopted, (adopted ? "" : adopted.error().message));
  CHECK(adopted->front().address6 == eps->front().address6);
}

TEST_CASE("ipv6: an IPv6 aux address is nobody's, nor the image of anybody's IPv4 address") {
  test::FakeNetlink kernel;
  test::FakeNft nft;
  net::Firewall firewall{nft, kernel};
  net::MemoryAddressStore store;
  net::StaticPeers peers;
  net::NetworkManager mgr{kernel, firewall, store, peers, net::NetworkOptions{"", {}, true}};
  net::NetworkSpec spec;
  spec.project = "demo";
  spec.name = "aux6";
  spec.enable_ipv6 = true;
  spec.subnet = *net::Cidr::parse("10.77.6.0/29");
  spec.subnet6 = cidr6("fd00:db8:6::/64");
  // ::2 mirrors 10.77.6.2; ::100 mirrors no IPv4 host of a /29, so it keeps nothing of IPv4.
  spec.reserved6 = {{"router", ip6("fd00:db8:6::2")}, {"far", ip6("fd00:db8:6::100")}};
  auto info = mgr.ensure_network(spec);
  REQUIRE_MESSAGE(info, (info ? "" : info.error().message));
  CHECK(info->addressing.reserved ==
        std::map<std::string, net::Ipv4>{{"router (IPv6)", *net::Ipv4::parse("10.77.6.2")}});
  kernel.netns[7];
  auto eps = mgr.attach("demo-a-1", 7, 100, {{"demo_aux6"}});
  REQUIRE_MESSAGE(eps, (eps ? "" : eps.error().message));
  CHECK(eps->front().address.str() == "10.77.6.3/29");
  CHECK(eps->front().address6->str() == "fd00:db8:6::3/64");
  for (const char* kept : {"fd00:db8:6::2", "fd00:db8:6::100"}) {
    net::EndpointRequest req{"demo_aux6"};
    req.ipv6_address = ip6(kept);
    kernel.netns[8];
    auto asked = mgr.attach("demo-b-1", 8, 101, {req});
    REQUIRE_FALSE(asked);
    CHECK_MESSAGE(has(asked.error().message, "is kept out of the pool (aux_addresses "),
                  asked.error().message);
  }
}

TEST_CASE("ipv6: the DNS server answers AAAA with a container's IPv6 address") {
  using namespace stack::test::dns;
  asio::io_context io;
  DnsRegistry registry;
  DnsServerOptions o;
  o.address = "127.0.0.1";
  o.port = 0;
  DnsServer server(io, registry, o);
  REQUIRE(server.start());
  Endpoint client{"n1", "demo-client-1", *Ipv4::parse("127.0.0.11"), "client", "", {}};
  REQUIRE(registry.add(client));
  Endpoint web{"n1", "demo-web-1", *Ipv4::parse("10.0.0.2"), "web", "", {}};
  web.address6 = stack::net::dns::Ipv6{ip6("fd00:db8:1::2").bytes};
  REQUIRE(registry.add(web));
  udp::endpoint ep{asio::ip::make_address("127.0.0.1"), server.port()};
  auto wire = run(io, udp_ask("127.0.0.11", ep, build_query("web", kTypeAaaa, 7)));
  REQUIRE(wire);
  auto r = parse_response(*wire);
  REQUIRE(r);
  CHECK(r->rcode == Rcode::kNoError);
  CHECK(r->answer_count == 1);
  auto bytes = ip6("fd00:db8:1::2").bytes;
  CHECK(std::search(wire->begin(), wire->end(), bytes.begin(), bytes.end()) != wire->end());
  // The client itself has no IPv6: NOERROR, no data.
  auto none = run(io, udp_ask("127.0.0.11", ep, build_query("client", kTypeAaaa, 8)));
  REQUIRE(none);
  CHECK(parse_response(*none)->answer_count == 0);
}

namespace {

std::string check(const std::string& file) {
  test::TempDir dir("stack-ipv6");
  test::write_text(dir / "stack.yaml", file);
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  auto r = spec::load(opts);
  if (!r) return r.error().message;
  auto c = spec::check_supported(*r);
  return c ? "" : c.error().message;
}

}  // namespace

TEST_CASE("ipv6: enable_ipv6, an IPv6 subnet and ipv6_address load, and mistakes are refused") {
  CHECK(check(R"(services:
  app:
    image: x
    networks:
      n: {ipv6_address: "fd00:db8:9::10"}
networks:
  n:
    enable_ipv6: true
    ipam:
      config:
        - subnet: 10.5.0.0/24
        - subnet: fd00:db8:9::/64
          gateway: fd00:db8:9::1
)") == "");
  CHECK(has(check("services:\n  app:\n    image: x\n    networks:\n      n: {ipv6_address: "
                  "\"fd00::5\"}\nnetworks:\n  n: {}\n"),
            "network n has no enable_ipv6: true"));
  CHECK(has(check("services:\n  app: {image: x}\nnetworks:\n  default:\n    ipam:\n      config:\n"
                  "        - subnet: fd00:1::/64\n"),
            "needs enable_ipv6: true"));
  CHECK(has(check("services:\n  app:\n    image: x\n    ports: [\"[::1]:8080:80\"]\n"),
            "host IP ::1"));
  CHECK(has(check("services:\n  app: {image: x}\nnetworks:\n  default: {driver: overlay, "
                  "enable_ipv6: true}\n"),
            "not supported on an overlay network"));
}
