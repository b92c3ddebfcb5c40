// The cluster's ingress network and published ports (reconciler/cluster_ingress.h,
// cluster/ingress_ports.h): what attach_ingress adds to a project (a network that survives the
// canonical JSON the nodes load, joined last with the lowest gateway priority, only by services
// that publish meshed ports; a user network named ingress refused), and ports claimed on a
// MemoryStore (ephemeral: lowest free, kept across ups, distinct under concurrency, freed on
// release; fixed: one service's, a clash refused naming the holder).
#include <doctest/doctest.h>

#include <set>
#include <thread>

#include "cluster/ingress_ports.h"
#include "cluster/memory_store.h"
#include "reconciler/cluster_ingress.h"
#include "spec/loader.h"

using namespace stack;

namespace {

Result<spec::Stack> load(const std::string& yaml) {
  spec::LoadOptions o;
  o.files = {"-"};
  o.stdin_text = yaml;
  o.working_dir = "/tmp";
  return spec::load(o);
}

}  // namespace

TEST_CASE("cluster ingress: services publishing ingress ports join the ingress network last") {
  auto stack = load(R"(name: shop
services:
  web:
    image: busybox
    networks: [zeta]
    ports: ["8080:80", "81"]
  host:
    image: busybox
    ports: [{target: 82, published: "8082", mode: host}]
  quiet:
    image: busybox
networks:
  zeta: {}
)");
  REQUIRE_MESSAGE(stack, stack.error().message);
  auto meshed = reconciler::attach_ingress(*stack);
  REQUIRE_MESSAGE(meshed, meshed.error().message);
  REQUIRE(meshed->size() == 2);  // 8080 (fixed) and 81 (ephemeral); not host's 8082
  CHECK((*meshed)[0].want.owner == "web@8080/tcp");
  CHECK((*meshed)[0].want.fixed == 8080);
  CHECK((*meshed)[1].want.owner == "web/81/tcp");
  CHECK((*meshed)[1].want.proto == "tcp");
  CHECK((*meshed)[1].want.fixed == 0);
  reconciler::set_ephemeral_ports(*stack, *meshed, {{"web@8080/tcp", 8080}, {"web/81/tcp", 30007}});

  // What a node loads: the canonical JSON, as a stack file.
  auto again = load(spec::render_json(spec::stack_json(*stack)));
  REQUIRE_MESSAGE(again, again.error().message);
  const auto* net = again->find_network("ingress");
  REQUIRE(net != nullptr);
  CHECK(net->name == "ingress");
  CHECK(net->driver == "overlay");
  REQUIRE(net->ipam.size() == 1);
  CHECK(net->ipam[0].subnet == reconciler::kIngressSubnet);
  const auto* web = again->find("web");
  REQUIRE(web->networks.size() == 2);
  CHECK(web->networks[0].network == "zeta");  // resolv.conf's and the default route's
  CHECK(web->networks[1].network == "ingress");
  CHECK(web->networks[1].gw_priority == reconciler::kIngressPriority);
  REQUIRE(web->ports.size() == 2);
  CHECK(web->ports[1].published_start == 30007);
  for (const char* other : {"host", "quiet"})
    for (const auto& a : again->find(other)->networks) CHECK(a.network != "ingress");

  // Nothing published through the mesh: no ingress network at all.
  auto none = load("name: q\nservices:\n  a:\n    image: busybox\n");
  REQUIRE(none);
  REQUIRE(reconciler::attach_ingress(*none));
  CHECK(none->find_network("ingress") == nullptr);
}

TEST_CASE("cluster ingress: a network of the file named ingress is refused") {
  for (const char* networks : {"  ingress: {}\n", "  front:\n    name: ingress\n"}) {
    auto stack = load(std::string("name: shop\nservices:\n  web:\n    image: busybox\n"
                                  "    ports: [\"80:80\"]\nnetworks:\n") + networks);
    REQUIRE_MESSAGE(stack, stack.error().message);
    auto r = reconciler::attach_ingress(*stack);
    REQUIRE(!r);
    CHECK(r.error().message.find("reserved") != std::string::npos);
    CHECK(r.error().message.find("-:") == 0);  // where it is written
  }
}

TEST_CASE("cluster ingress: ephemeral ports are the lowest free, kept across ups, freed on down") {
  cluster::MemoryStore store;
  auto a = cluster::claim_ingress_ports(store, "a", {{"web/80/tcp", "tcp", 0}, {"dns/53/udp", "udp", 0}});
  REQUIRE_MESSAGE(a, a.error().message);
  CHECK(a->at("web/80/tcp") == 30000);
  CHECK(a->at("dns/53/udp") == 30000);  // another protocol's number space
  auto b = cluster::claim_ingress_ports(store, "b", {{"web/80/tcp", "tcp", 0}});
  REQUIRE(b);
  CHECK(b->at("web/80/tcp") == 30001);
  // Up again with one more and one fewer: the kept one keeps its number, the other is freed.
  auto a2 = cluster::claim_ingress_ports(store, "a", {{"web/80/tcp", "tcp", 0}, {"web/81/tcp", "tcp", 0}});
  REQUIRE(a2);
  CHECK(a2->at("web/80/tcp") == 30000);
  CHECK(a2->at("web/81/tcp") == 30002);
  auto all = cluster::ingress_ports(store);
  REQUIRE(all);
  CHECK(*all == std::map<std::string, std::string>{{"tcp/30000", "a/web/80/tcp"},
                                                   {"tcp/30001", "b/web/80/tcp"},
                                                   {"tcp/30002", "a/web/81/tcp"}});
  REQUIRE(cluster::release_ingress_ports(store, "a"));
  all = cluster::ingress_ports(store);
  REQUIRE(all);
  CHECK(*all == std::map<std::string, std::string>{{"tcp/30001", "b/web/80/tcp"}});
  // A freed number is handed out again.
  auto c = cluster::claim_ingress_ports(store, "c", {{"x/1/tcp", "tcp", 0}});
  REQUIRE(c);
  CHECK(c->at("x/1/tcp") == 30000);
}

TEST_CASE("cluster ingress: a fixed port is one service's cluster-wide, and ephemeral ones skip it") {
  cluster::MemoryStore store;
  auto a = cluster::claim_ingress_ports(store, "a", {{"web@30000/tcp", "tcp", 30000},
                                                     {"web@8080/tcp", "tcp", 8080},
                                                     {"web/80/tcp", "tcp", 0}});
  REQUIRE_MESSAGE(a, a.error().message);
  CHECK(a->at("web@30000/tcp") == 30000);
  CHECK(a->at("web/80/tcp") == 30001);
  // Up again: the same; another project asking for 8080 is refused, naming who has it, and
  // claims nothing.
  auto again = cluster::claim_ingress_ports(store, "a", {{"web@30000/tcp", "tcp", 30000},
                                                         {"web@8080/tcp", "tcp", 8080},
                                                         {"web/80/tcp", "tcp", 0}});
  REQUIRE(again);
  CHECK(*again == *a);
  auto b = cluster::claim_ingress_ports(store, "b", {{"api/81/tcp", "tcp", 0},
                                                     {"api@8080/tcp", "tcp", 8080}});
  REQUIRE(!b);
  CHECK(b.error().message ==
        "project b: publish its ports in the cluster: port 8080/tcp is published by service web "
        "of project a already: the routing mesh serves one service per port");
  CHECK(cluster::ingress_ports(store)->size() == 3);
  // Two services of one project on one port: refused too.
  auto c = cluster::claim_ingress_ports(store, "c", {{"x@9000/udp", "udp", 9000},
                                                     {"y@9000/udp", "udp", 9000}});
  REQUIRE(!c);
  CHECK(c.error().message.find("port 9000/udp is published by service x of project c") !=
        std::string::npos);
  // Another protocol's 8080 is free.
  CHECK(cluster::claim_ingress_ports(store, "d", {{"dns@8080/udp", "udp", 8080}}));
}

TEST_CASE("cluster ingress: projects claiming at once never get the same port") {
  cluster::MemoryStore store;
  constexpr int kProjects = 8, kPorts = 10;
  std::vector<std::map<std::string, int>> got(kProjects);
  std::vector<std::string> errors(kProjects);
  std::vector<std::thread> threads;
  for (int p = 0; p < kProjects; p++)
    threads.emplace_back([&, p] {
      std::vector<cluster::PortWant> wants;
      for (int i = 0; i < kPorts; i++)
        wants.push_back({"s/" + std::to_string(i) + "/tcp", "tcp", 0});
      std::string project = "p";  // not "p" + ...: GCC 12's -Wrestrict false positive
      project += std::to_string(p);
      auto r = cluster::claim_ingress_ports(store, project, wants);
      if (r) got[p] = *r;
      else errors[p] = r.error().message;
    });
  for (auto& t : threads) t.join();
  std::set<int> ports;
  for (int p = 0; p < kProjects; p++) {
    CHECK_MESSAGE(errors[p].empty(), errors[p]);
    for (const auto& [owner, port] : got[p]) ports.insert(port);
  }
  CHECK(ports.size() == kProjects * kPorts);
  CHECK(*ports.begin() == 30000);
  CHECK(*ports.rbegin() == 30000 + kProjects * kPorts - 1);
}
