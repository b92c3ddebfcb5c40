// Bridge networks with real traffic, all inside a namespace playing the host: containers on one
// bridge reach each other, published ports answer on 127.0.0.1, the host address and through
// hairpin, internal networks stay inside, and two networks are isolated. Root only.
#include <doctest/doctest.h>

#include "support/net_host.h"
#include "support/temp_dir.h"

using namespace stack;
using test::NetHost;
using test::TestNetns;

TEST_CASE("two containers on one bridge reach each other by IP") {
  NetHost h("br");
  auto info = h.ensure(test::a_network("default"));
  TestNetns a("bra"), b("brb");
  auto ea = h.attach(a, {{"itest_default"}});
  auto eb = h.attach(b, {{"itest_default"}});
  CHECK(a.sh("ip -o addr show eth0").out.find(ea[0].address.str()) != std::string::npos);
  CHECK(a.sh("ip route show default").out.find("via " + info.addressing.gateway.str()) !=
        std::string::npos);
  CHECK(test::ping(a, eb[0].address.address.str()));
  CHECK(test::ping(b, ea[0].address.address.str()));
  CHECK(test::ping(a, info.addressing.gateway.str()));
  CHECK(h.host.sh("cat /proc/sys/net/ipv4/conf/" + info.bridge + "/route_localnet").out == "1\n");
  auto port = h.host.sh("ip -d link show " + ea[0].host_veth);
  CHECK(port.out.find("hairpin on") != std::string::npos);
  CHECK(port.out.find("master " + info.bridge) != std::string::npos);
  // Each container's port is in the anti-spoofing set with its MAC (the one its eth0 has) and
  // address, put there and taken out by small transactions of their own.
  auto entry = "\"" + ea[0].host_veth + "\" . " + ea[0].mac.str() + " . " +
               ea[0].address.address.str();
  CHECK(h.host.sh("nft list set bridge stack port_addresses").out.find(entry) != std::string::npos);
  CHECK(a.sh("cat /sys/class/net/eth0/address").out == ea[0].mac.str() + "\n");
  auto one = std::vector<net::FirewallEndpoint>{{ea[0].host_veth, ea[0].mac, ea[0].address.address}};
  REQUIRE(h.firewall->change_endpoints("stack", {}, one));
  CHECK(h.host.sh("nft list set bridge stack port_addresses").out.find(entry) == std::string::npos);
  REQUIRE(h.firewall->change_endpoints("stack", one, {}));
  CHECK(h.host.sh("nft list set bridge stack port_addresses").out.find(entry) != std::string::npos);
  REQUIRE(h.manager->detach(a.name()));
  CHECK(h.host.sh("nft list set bridge stack port_addresses").out.find(entry) == std::string::npos);
  REQUIRE(h.manager->detach(b.name()));
}

TEST_CASE("remove_network leaves no bridge, veth or table once the containers are gone") {
  NetHost h("rm");
  h.ensure(test::a_network("default"));
  {
    TestNetns a("rma");
    h.attach(a, {{"itest_default"}});
    REQUIRE(h.manager->detach(a.name()));
  }
  REQUIRE(h.manager->remove_network("itest_default"));
  std::string left;
  for (int i = 0; i < 100; i++) {  // the veth goes with its namespace, asynchronously
    left = h.leftovers();
    if (left.empty()) break;
    ::usleep(10000);
  }
  CHECK(left == "");
}

TEST_CASE("a published port answers on 127.0.0.1, the host address, from outside and by hairpin") {
  NetHost h("pub");
  h.ensure(test::a_network("default"));
  TestNetns web("pubweb"), client("pubcli");
  auto ew = h.attach(web, {{"itest_default"}});
  h.attach(client, {{"itest_default"}});
  test::TempDir root("stack-net-www");
  test::write_text(root / "index.html", "hello from web\n");
  test::Background server(
      web, {"/usr/bin/busybox", "httpd", "-f", "-p", "80", "-h", root.path().string()});
  REQUIRE(test::wait_http(web, "http://127.0.0.1:80/"));

  using net::PortMapping;
  net::Ipv4 lo = test::ip("127.0.0.1");
  REQUIRE(h.manager->publish(web.name(),
                             {PortMapping{std::nullopt, 8080, 0, net::Proto::kTcp, {}, 80, 0},
                              PortMapping{lo, 8081, 0, net::Proto::kTcp, {}, 80, 0}}));
  const std::string hello = "hello from web\n";
  CHECK(test::http_get(h.host, "http://127.0.0.1:8080/") == hello);         // DNAT + route_localnet
  CHECK(test::http_get(h.host, "http://192.168.200.1:8080/") == hello);     // host address
  CHECK(test::http_get(h.outside, "http://192.168.200.1:8080/") == hello);  // from another machine
  CHECK(test::http_get(client, "http://192.168.200.1:8080/") == hello);     // hairpin
  CHECK(test::http_get(web, "http://192.168.200.1:8080/") == hello);  // itself, via hairpin mode
  CHECK(test::http_get(h.host, "http://127.0.0.1:8081/") == hello);
  CHECK(test::http_get(h.host, "http://192.168.200.1:8081/").empty());  // bound to 127.0.0.1 only

  REQUIRE(h.manager->detach(web.name()));  // its ports go with it
  CHECK(test::http_get(h.host, "http://127.0.0.1:8080/").empty());
  REQUIRE(h.manager->detach(client.name()));
}

TEST_CASE(
    "an internal network cannot reach outside the bridge but a normal one goes out masqueraded") {
  NetHost h("int");
  auto priv = h.ensure(test::a_network("private", true));
  h.ensure(test::a_network("public"));
  TestNetns in("inta"), in2("intb"), out("intc");
  auto ei = h.attach(in, {{"itest_private"}});
  auto ei2 = h.attach(in2, {{"itest_private"}});
  h.attach(out, {{"itest_public"}});
  CHECK(test::ping(in, ei2[0].address.address.str()));  // inside the bridge: fine
  CHECK(test::ping(out, "192.168.200.2"));              // outside has no route back: masquerade
  CHECK(in.sh("ip route show default").out.empty());    // no default route on an internal network
  // Even with a route added by hand, the firewall keeps it in.
  REQUIRE(in.sh("ip route add default via " + priv.addressing.gateway.str()).code == 0);
  CHECK(!test::ping(in, "192.168.200.2"));
  CHECK(!test::ping(h.outside, ei[0].address.address.str()));
  for (auto* c : {&in, &in2, &out}) REQUIRE(h.manager->detach(c->name()));
}

TEST_CASE("two networks are isolated but a container on both reaches each") {
  NetHost h("iso");
  h.ensure(test::a_network("front"));
  h.ensure(test::a_network("back"));
  TestNetns f("isof"), b("isob"), both("isox");
  auto ef = h.attach(f, {{"itest_front"}});
  auto eb = h.attach(b, {{"itest_back"}});
  auto ex = h.attach(both, {{"itest_front"}, {"itest_back"}});
  CHECK(!test::ping(f, eb[0].address.address.str()));
  CHECK(!test::ping(b, ef[0].address.address.str()));
  CHECK(test::ping(both, ef[0].address.address.str()));
  CHECK(test::ping(both, eb[0].address.address.str()));
  CHECK(test::ping(f, ex[0].address.address.str()));
  CHECK(test::ping(b, ex[1].address.address.str()));
  for (auto* c : {&f, &b, &both}) REQUIRE(h.manager->detach(c->name()));
}
