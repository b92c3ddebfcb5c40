// IPv6-only networks (enable_ipv4: false) without root: no IPv4 address on the bridge or in a
// container, ports published on IPv6 only, the DNS server listening on an IPv6 address and
// answering AAAA only, and the load-time refusal of a network with neither family.
#include <doctest/doctest.h>

#include <algorithm>

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
bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string check(const std::string& file) {
  test::TempDir dir("stack-ipv6only");
  test::write_text(dir / "stack.yaml", file);
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  auto r = spec::load(opts);
  if (!r) return r.error().message;
  auto c = spec::check_supported(*r);
  return c ? "" : c.error().message;
}

}  // namespace

TEST_CASE("ipv6-only: the bridge and the container get IPv6 and no IPv4 address or route") {
  test::FakeNetlink kernel;
  test::FakeNft nft;
  net::Firewall firewall{nft, kernel};
  net::MemoryAddressStore store;
  net::StaticPeers peers;
  net::NetworkManager mgr{kernel, firewall, store, peers, net::NetworkOptions{"", {}, true}};
  net::NetworkSpec spec;
  spec.project = "demo";
  spec.name = "six";
  spec.enable_ipv6 = true;
  spec.enable_ipv4 = false;
  spec.subnet6 = *net::Cidr6::parse("fd00:db8:9::/64");
  auto info = mgr.ensure_network(spec);
  REQUIRE_MESSAGE(info, (info ? "" : info.error().message));
  CHECK(std::count(kernel.calls.begin(), kernel.calls.end(),
                   "ensure_bridge " + info->bridge + " - 1500 fd00:db8:9::1/64") == 1);

  kernel.netns[7];
  auto eps = mgr.attach("demo-a-1", 7, 100, {{"demo_six"}});
  REQUIRE_MESSAGE(eps, (eps ? "" : eps.error().message));
  CHECK(std::count(kernel.calls.begin(), kernel.calls.end(),
                   "configure_interface eth0 - 1500 fd00:db8:9::2/64 via fd00:db8:9::1") == 1);
  CHECK(kernel.netns[7]["eth0"].addresses.empty());

  // Ports go to IPv6 only: no IPv4 DNAT to an address the container does not have.
  net::PortMapping p;
  p.host_port = 18080;
  p.container_port = 80;
  auto runs = nft.runs.size();
  REQUIRE(mgr.publish("demo-a-1", {p}));
  std::string rules;
  for (size_t i = runs; i < nft.runs.size(); i++) rules += nft.runs[i];
  CHECK(has(rules, "tcp dport 18080 dnat to [fd00:db8:9::2]:80"));
  CHECK_FALSE(has(rules, "tcp dport 18080 dnat to 10."));
  // An IPv4 host IP cannot reach it: refused, naming the network.
  p.host_ip = *net::Ipv4::parse("127.0.0.1");
  auto v4 = mgr.publish("demo-a-1", {p});
  REQUIRE_FALSE(v4);
  CHECK(has(v4.error().message, "network demo_six has no IPv4 (enable_ipv4: false)"));

  // Neither family: refused, nothing made.
  net::NetworkSpec none;
  none.project = "demo";
  none.name = "nothing";
  none.enable_ipv4 = false;
  auto bridges = [&] {
    return std::count_if(kernel.calls.begin(), kernel.calls.end(),
                         [](const std::string& c) { return c.rfind("ensure_bridge", 0) == 0; });
  };
  auto made = bridges();
  auto r = mgr.ensure_network(none);
  REQUIRE_FALSE(r);
  CHECK(has(r.error().message, "IPv4 or IPv6 must be enabled"));
  CHECK(bridges() == made);
  CHECK_FALSE(mgr.find("demo_nothing"));
}

TEST_CASE("ipv6-only: the DNS server listens on IPv6 and answers AAAA, not A") {
  using namespace stack::test::dns;
  asio::io_context io;
  DnsRegistry registry;
  DnsServerOptions o;
  o.address = "::1";
  o.port = 0;
  DnsServer server(io, registry, o);
  REQUIRE(server.start());
  // The client's IPv4 is its IPAM key only; it asks from its IPv6 address (::1 here).
  Endpoint client{"n6", "demo-client-1", *Ipv4::parse("10.89.5.2"), "client", "", {}};
  client.address6 = stack::net::dns::Ipv6{ip6("::1").bytes};
  client.has_ipv4 = false;
  REQUIRE(registry.add(client));
  Endpoint web{"n6", "demo-web-1", *Ipv4::parse("10.89.5.3"), "web", "", {}};
  web.address6 = stack::net::dns::Ipv6{ip6("fd00:db8:9::3").bytes};
  web.has_ipv4 = false;
  REQUIRE(registry.add(web));
  udp::endpoint ep{asio::ip::make_address("::1"), server.port()};
  auto wire = run(io, udp_ask("::1", ep, build_query("web", kTypeAaaa, 7)));
  REQUIRE(wire);
  auto r = parse_response(*wire);
  REQUIRE(r);
  CHECK(r->rcode == Rcode::kNoError);
  CHECK(r->answer_count == 1);
  auto bytes = ip6("fd00:db8:9::3").bytes;
  CHECK(std::search(wire->begin(), wire->end(), bytes.begin(), bytes.end()) != wire->end());
  // A: the name is the network's, so NOERROR with no data (never the IPAM key, never upstream).
  auto a = run(io, udp_ask("::1", ep, build_query("web", kTypeA, 8)));
  REQUIRE(a);
  auto ra = parse_response(*a);
  REQUIRE(ra);
  CHECK(ra->rcode == Rcode::kNoError);
  CHECK(ra->answer_count == 0);
}

TEST_CASE("ipv6-only: enable_ipv4 false runs with enable_ipv6, and is refused without it") {
  CHECK(check("services:\n  web: {image: x}\nnetworks:\n  n: {enable_ipv4: false, "
              "enable_ipv6: true}\n") == "");
  std::string m = check("services:\n  web: {image: x}\nnetworks:\n  n: {enable_ipv4: false}\n");
  CHECK_MESSAGE(has(m, "stack.yaml:4:"), m);
  CHECK_MESSAGE(has(m, "networks.n: IPv4 or IPv6 must be enabled"), m);
  m = check("services:\n  web: {image: x}\nnetworks:\n  n:\n    enable_ipv4: false\n"
            "    enable_ipv6: true\n    ipam: {config: [{subnet: 10.9.0.0/24}]}\n");
  CHECK_MESSAGE(has(m, "IPv4 subnet 10.9.0.0/24 on a network with enable_ipv4: false"), m);
  m = check("services:\n  web:\n    image: x\n    networks: {n: {ipv4_address: 10.9.0.5}}\n"
            "networks:\n  n: {enable_ipv4: false, enable_ipv6: true}\n");
  CHECK_MESSAGE(has(m, "services.web.networks.n.ipv4_address: network n has enable_ipv4: false"),
                m);
}
