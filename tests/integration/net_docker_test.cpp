// A Docker host: `ip filter FORWARD` with policy drop and br_netfilter on (the default in a new
// namespace) kills even bridged traffic between two containers; stack inserts accepts for its
// bridges and removes them with its last network. Inside a test namespace only. Root only.
#include <doctest/doctest.h>

#include "support/net_host.h"

using namespace stack;
using test::NetHost;
using test::TestNetns;

TEST_CASE(
    "on a Docker-style host, stack's bridges work and the accepts leave with the last network") {
  NetHost h("dock");
  REQUIRE(h.host.sh("cat /proc/sys/net/bridge/bridge-nf-call-iptables").out == "1\n");
  auto r = h.host.exec({"/usr/sbin/nft",
                        "add table ip filter; add chain ip filter FORWARD "
                        "{ type filter hook forward priority filter; policy drop; }"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  auto docker = h.firewall->observe_docker_forward().value();
  CHECK(docker.forward_drop);
  CHECK(docker.br_netfilter);
  CHECK(docker.chain == "FORWARD");

  h.ensure(test::a_network("default"));
  TestNetns a("docka"), b("dockb");
  h.attach(a, {{"itest_default"}});
  auto eb = h.attach(b, {{"itest_default"}});
  auto chain = h.host.sh("nft list chain ip filter FORWARD").out;
  CHECK(chain.find("iifname \"stk-*\" accept") != std::string::npos);
  CHECK(chain.find("oifname \"stk-*\" accept") != std::string::npos);
  CHECK(test::ping(a, eb[0].address.address.str()));
  CHECK(test::ping(a, "192.168.200.2"));  // routed out too

  // Proof that the chain bites: without stack's accepts, the same ping dies on the bridge.
  REQUIRE(h.host.sh("nft flush chain ip filter FORWARD").code == 0);
  CHECK(!test::ping(a, eb[0].address.address.str()));
  REQUIRE(h.firewall->apply(h.manager->firewall_model()));  // what the reconciler's repair does
  CHECK(test::ping(a, eb[0].address.address.str()));
  REQUIRE(h.firewall->apply(h.manager->firewall_model()));  // converged: not inserted twice
  auto twice = h.host.sh("nft list chain ip filter FORWARD | grep -c 'stk-\\*'").out;
  CHECK(twice == "2\n");

  REQUIRE(h.manager->detach(a.name()));
  REQUIRE(h.manager->detach(b.name()));
  REQUIRE(h.manager->remove_network("itest_default"));
  chain = h.host.sh("nft list chain ip filter FORWARD").out;
  CHECK(chain.find("stk-") == std::string::npos);
  CHECK(chain.find("policy drop") != std::string::npos);  // Docker's own chain is left as it was
  CHECK(h.host.sh("nft list tables").out.find("ip stack") == std::string::npos);
}

TEST_CASE("on a Docker-style host, one instance's last network leaves another's accepts") {
  NetHost h("dock2");
  auto r = h.host.exec({"/usr/sbin/nft",
                        "add table ip filter; add chain ip filter FORWARD "
                        "{ type filter hook forward priority filter; policy drop; }"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  // A second instance (another --root) in the same host namespace: its own manager and table.
  net::MemoryAddressStore store2;
  net::NetworkManager other(*h.nl, *h.firewall, store2, h.peers,
                            net::NetworkOptions{"0123abcd", {}, true});
  h.ensure(test::a_network("default"));
  REQUIRE(other.ensure_network(test::a_network("default")));
  TestNetns a("dock2a"), b("dock2b"), c("dock2c"), d("dock2d");
  h.attach(a, {{"itest_default"}});
  auto eb = h.attach(b, {{"itest_default"}});
  REQUIRE(other.attach(c.name(), c.fd(), 1, {{"itest_default"}}));
  auto ed = other.attach(d.name(), d.fd(), 1, {{"itest_default"}}).value();
  auto chain = h.host.sh("nft list chain ip filter FORWARD").out;
  CHECK(chain.find("comment \"stack\"") != std::string::npos);
  CHECK(chain.find("comment \"stack-0123abcd\"") != std::string::npos);
  CHECK(h.host.sh("nft list tables").out.find("table ip stack-0123abcd") != std::string::npos);
  CHECK(test::ping(a, eb[0].address.address.str()));
  CHECK(test::ping(c, ed[0].address.address.str()));

  // The default instance goes: its table and accepts go, the other's stay and still work.
  REQUIRE(h.manager->detach(a.name()));
  REQUIRE(h.manager->detach(b.name()));
  REQUIRE(h.manager->remove_network("itest_default"));
  chain = h.host.sh("nft list chain ip filter FORWARD").out;
  CHECK(chain.find("comment \"stack\"") == std::string::npos);
  CHECK(chain.find("comment \"stack-0123abcd\"") != std::string::npos);
  auto tables = h.host.sh("nft list tables").out;
  CHECK(tables.find("table ip stack\n") == std::string::npos);
  CHECK(tables.find("table ip stack-0123abcd") != std::string::npos);
  CHECK(test::ping(c, ed[0].address.address.str()));

  REQUIRE(other.detach(c.name()));
  REQUIRE(other.detach(d.name()));
  REQUIRE(other.remove_network("itest_default"));
  CHECK(h.host.sh("nft list chain ip filter FORWARD").out.find("stk-") == std::string::npos);
  CHECK(h.host.sh("nft list tables").out.find("stack") == std::string::npos);
}
