// The network service fields without root: links and external_links as names only the linking
// container resolves, a service's own upstream servers (`dns`) over real loopback sockets, the
// MAC, interface name and gw_priority of an attachment over FakeNetlink, and what the stack
// file checks refuse (a link to no service, a malformed MAC, an unknown endpoint option).
#include <doctest/doctest.h>

#include <algorithm>

#include "dns_loopback.h"
#include "net/dns/dns_server.h"
#include "net/network.h"
#include "spec/loader.h"
#include "state/runtime_codec.h"
#include "support/fake_netlink.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::test::dns;

namespace {

Ipv4 ip4(const char* text) { return *Ipv4::parse(text); }

// db and app on n1, other on n1 too; app links db as "database" and ext-db as "legacy".
DnsRegistry linked_registry() {
  DnsRegistry r;
  REQUIRE(r.add(Endpoint{"n1", "demo-db-1", ip4("127.0.0.21"), "db", "", {}}));
  REQUIRE(r.add(Endpoint{"n1", "ext-db", ip4("127.0.0.22"), "ext", "", {}}));
  Endpoint app{"n1", "demo-app-1", ip4("127.0.0.11"), "app", "", {}};
  app.links = {{"database", "db"}, {"legacy", "ext-db"}, {"ext", "db"}};
  REQUIRE(r.add(app));
  REQUIRE(r.add(Endpoint{"n1", "demo-other-1", ip4("127.0.0.12"), "other", "", {}}));
  return r;
}

}  // namespace

TEST_CASE("links: the alias answers for the linking container only, and wins over a name") {
  DnsRegistry r = linked_registry();
  CHECK(r.lookup_a(ip4("127.0.0.11"), "database") == std::vector<Ipv4>{ip4("127.0.0.21")});
  CHECK(r.lookup_a(ip4("127.0.0.11"), "DATABASE.") == std::vector<Ipv4>{ip4("127.0.0.21")});
  CHECK(r.lookup_a(ip4("127.0.0.11"), "legacy") == std::vector<Ipv4>{ip4("127.0.0.22")});
  // "ext" is another container's service name; app's link says db.
  CHECK(r.lookup_a(ip4("127.0.0.11"), "ext") == std::vector<Ipv4>{ip4("127.0.0.21")});
  CHECK(r.lookup_a(ip4("127.0.0.12"), "ext") == std::vector<Ipv4>{ip4("127.0.0.22")});
  CHECK_FALSE(r.lookup_a(ip4("127.0.0.12"), "database"));
  CHECK_FALSE(r.contains(ip4("127.0.0.12"), "legacy"));
  CHECK(r.contains(ip4("127.0.0.11"), "legacy"));
  // The target gone: the alias answers nothing (and is forwarded, like any unknown name).
  r.remove_container("demo-db-1");
  CHECK_FALSE(r.lookup_a(ip4("127.0.0.11"), "database"));
  // A link with a name that is not a DNS name is refused, changing nothing.
  Endpoint bad{"n1", "demo-bad-1", ip4("127.0.0.13"), "bad", "", {}};
  bad.links = {{"has space", "db"}};
  CHECK_FALSE(r.add(bad));
  CHECK(r.networks_of(ip4("127.0.0.13")).empty());
}

TEST_CASE("dns: a service's own servers answer its other queries, the others keep the network's") {
  asio::io_context io;
  DnsRegistry registry;
  FakeUpstream network_upstream(io), service_upstream(io);
  network_upstream.answers["where.example"] = {ip4("192.0.2.1")};
  service_upstream.answers["where.example"] = {ip4("192.0.2.2")};
  DnsServerOptions o;
  o.address = "127.0.0.1";
  o.port = 0;
  o.upstreams = {network_upstream.upstream()};
  o.upstream_timeout = 300ms;
  DnsServer server(io, registry, o);
  REQUIRE(server.start());
  Endpoint custom{"n1", "demo-custom-1", ip4("127.0.0.11"), "custom", "", {}};
  custom.upstreams = {service_upstream.upstream()};
  REQUIRE(registry.add(custom));
  REQUIRE(registry.add(Endpoint{"n1", "demo-plain-1", ip4("127.0.0.12"), "plain", "", {}}));
  udp::endpoint at{asio::ip::make_address("127.0.0.1"), server.port()};
  auto ask = [&](const char* from, const char* name) {
    auto wire = run(io, udp_ask(from, at, build_query(name, kTypeA, 7)));
    REQUIRE(wire);
    return parse_response(*wire)->addresses;
  };
  CHECK(ask("127.0.0.11", "where.example") == std::vector<Ipv4>{ip4("192.0.2.2")});
  CHECK(ask("127.0.0.12", "where.example") == std::vector<Ipv4>{ip4("192.0.2.1")});
  // Project names are still answered locally for the service with its own servers.
  CHECK(ask("127.0.0.11", "plain") == std::vector<Ipv4>{ip4("127.0.0.12")});
  CHECK(registry.upstreams_of(ip4("127.0.0.12")).empty());
}

TEST_CASE("attach: mac_address, interface_name and gw_priority shape the container's interfaces") {
  test::FakeNetlink kernel;
  test::FakeNft nft;
  net::Firewall firewall{nft, kernel};
  net::MemoryAddressStore store;
  net::StaticPeers peers;
  net::NetworkManager mgr{kernel, firewall, store, peers, net::NetworkOptions{"", {}, true}};
  for (const char* name : {"front", "back"}) {
    net::NetworkSpec s;
    s.project = "demo";
    s.name = name;
    REQUIRE(mgr.ensure_network(s));
  }
  net::EndpointRequest front{"demo_front"};
  front.mac = net::Mac::parse("02:42:ac:11:00:99").value();
  net::EndpointRequest back{"demo_back"};
  back.ifname = "eth0";  // the first one's default name: it becomes eth1
  back.gw_priority = 5;
  auto eps = mgr.attach("demo-web-1", 7, 1, {front, back});
  REQUIRE_MESSAGE(eps, (eps ? "" : eps.error().message));
  REQUIRE(eps->size() == 2);
  CHECK((*eps)[0].ifname == "eth1");
  CHECK((*eps)[1].ifname == "eth0");
  CHECK(kernel.netns[7]["eth1"].info.mac.str() == "02:42:ac:11:00:99");
  CHECK_FALSE((*eps)[0].default_route);
  CHECK((*eps)[1].default_route);  // the higher gw_priority
  auto via = std::find_if(kernel.calls.begin(), kernel.calls.end(), [](const std::string& c) {
    return c.rfind("configure_interface eth0", 0) == 0;
  });
  REQUIRE(via != kernel.calls.end());
  CHECK(via->find(" via ") != std::string::npos);
  // The anti-spoofing set has the MAC asked for.
  CHECK(nft.runs.back().find("02:42:ac:11:00:99") != std::string::npos);

  net::EndpointRequest twice{"demo_back"};
  twice.ifname = "x0";
  net::EndpointRequest again{"demo_front"};
  again.ifname = "x0";
  auto r = mgr.attach("demo-two-1", 8, 1, {twice, again});
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("interface name x0 is asked for twice") != std::string::npos);
}

namespace {

std::string refusal(const std::string& services) {
  test::TempDir dir("stack-netfields");
  test::write_text(dir / "stack.yaml", "services:\n" + services);
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  auto r = spec::load(opts);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  auto c = spec::check_supported(*r);
  return c ? "" : c.error().message;
}

}  // namespace

TEST_CASE("the network fields load, and what cannot work is refused with its reason") {
  CHECK(refusal(R"(  db: {image: x}
  app:
    image: x
    links: ["db:database", db]
    external_links: ["other-db:legacy"]
    dns: [192.0.2.53, "2001:db8::53"]
    mac_address: "02:42:ac:11:00:02"
    networks:
      default: {gw_priority: 1}
      side:
        interface_name: side0
        driver_opts: {com.docker.network.endpoint.macaddress: "02:42:ac:11:00:03"}
networks: {side: {}}
)") == "");
  std::string e = refusal("  app:\n    image: x\n    links: [\"nosuch:alias\"]\n");
  CHECK(e.find("stack.yaml:4:5") != std::string::npos);
  CHECK(e.find("no service \"nosuch\"") != std::string::npos);
  CHECK(refusal("  app:\n    image: x\n    dns: [resolver.example]\n")
            .find("dns: resolver.example is not an IP address") != std::string::npos);
  CHECK(refusal("  app:\n    image: x\n    mac_address: \"03:00:00:00:00:01\"\n")
            .find("multicast") != std::string::npos);
  CHECK(refusal("  app:\n    image: x\n    mac_address: 02-00-00-00-00-01\n")
            .find("not six hexadecimal bytes") != std::string::npos);
  CHECK(refusal("  app:\n    image: x\n    mac_address: \"02:00:00:00:00:01\"\n    scale: 2\n")
            .find("cannot be given to 2 replicas") != std::string::npos);
  CHECK(refusal("  app:\n    image: x\n    networks:\n      default:\n        driver_opts:\n"
                "          com.docker.network.endpoint.sysctls: net.ipv4.conf.IFNAME.log_martians=1\n")
            .find("com.docker.network.endpoint.sysctls: not an option of stack's bridge driver") !=
        std::string::npos);
  CHECK(refusal("  app:\n    image: x\n    networks:\n      default: {interface_name: "
                "a-very-long-interface}\n")
            .find("is not an interface name") != std::string::npos);
  // IPv6 runs (net_ipv6_test.cpp); so do extra link-local addresses (fields_last_test.cpp).
  CHECK(refusal("  app: {image: x}\nnetworks:\n  default: {enable_ipv6: true}\n") == "");
  CHECK(refusal("  app:\n    image: x\n    networks:\n      default: {link_local_ips: "
                "[\"169.254.8.8\"]}\n") == "");
}

TEST_CASE("a link orders the start like depends_on, and the record keeps the network fields") {
  test::TempDir dir("stack-netfields");
  test::write_text(dir / "stack.yaml", R"(services:
  db: {image: x}
  cache: {image: x}
  app:
    image: x
    links: ["db:database", cache]
    depends_on: {cache: {condition: service_healthy}}
)");
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  auto stack = spec::load(opts);
  REQUIRE_MESSAGE(stack, (stack ? "" : stack.error().message));
  const spec::Service* app = nullptr;
  for (const auto& s : stack->services)
    if (s.name == "app") app = &s;
  REQUIRE(app);
  std::map<std::string, std::string> conditions;
  for (const auto& d : app->dependencies) conditions[d.service] = d.condition;
  CHECK(conditions == std::map<std::string, std::string>{{"cache", "service_healthy"},
                                                         {"db", "service_started"}});

  model::RuntimeRecord r;
  r.spec.name = "demo-app-1";
  r.spec.cgroup = "stack/demo/demo-app-1";
  r.spec.dir = "/tmp/x";
  r.dns = {"192.0.2.53"};
  r.links = {{"database", "db"}};
  r.networks.push_back({"demo_default", {}, "", "h", "02:42:ac:11:00:02", "lan0", 7});
  auto back = state::decode_runtime(state::encode_runtime(r));
  REQUIRE(back);
  CHECK(back->dns == r.dns);
  CHECK(back->links == r.links);
  REQUIRE(back->networks.size() == 1);
  CHECK(back->networks[0].mac_address == "02:42:ac:11:00:02");
  CHECK(back->networks[0].interface_name == "lan0");
  CHECK(back->networks[0].gw_priority == 7);
}
