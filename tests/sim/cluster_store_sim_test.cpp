// The simulation's store figures (label sim): with MemoryStore and 1,000 nodes each watching an
// overlay network's endpoints, what one container costs the store (keys and bytes written for
// its address and its endpoint) and what one change costs the nodes (watch events delivered).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>

#include "cluster/ipam.h"
#include "cluster/memory_store.h"
#include "cluster/store_peers.h"

using namespace stack;
using namespace stack::cluster;
using namespace std::chrono_literals;

TEST_CASE("sim store writes per container and watch events per node for 1000 nodes") {
  constexpr int kNodes = 1000;
  constexpr int kContainers = 200;
  MemoryStore s;
  ClusterIpam ipam(s);
  REQUIRE(ipam.ensure_subnet("ov", *net::Cidr::parse("10.90.0.0/16")));
  std::vector<LeaseId> leases;
  std::vector<std::unique_ptr<EndpointWatch>> watches;
  for (int n = 0; n < kNodes; ++n) {
    auto l = s.grant(30);
    REQUIRE(l);
    leases.push_back(l->id);
    auto node = "node-" + std::to_string(n);
    REQUIRE(s.put(keys::node(node), R"({"underlay":"192.0.2.1"})", l->id));
    auto w = EndpointWatch::start(s, "ov");
    REQUIRE(w);
    watches.push_back(std::move(*w));
  }

  // Containers spread over the nodes: an address, then the endpoint under the node's lease.
  s.reset_stats();
  auto t0 = std::chrono::steady_clock::now();
  for (int c = 0; c < kContainers; ++c) {
    int n = c % kNodes;
    auto node = "node-" + std::to_string(n);
    auto name = "demo-web-" + std::to_string(c + 1);
    auto ip = ipam.allocate("ov", node + "/" + name);
    REQUIRE(ip);
    OverlayEndpoint ep{node, name, *ip, *net::Mac::parse("02:42:0a:5a:00:02"),
                       *net::Ipv4::parse("192.0.2.1")};
    REQUIRE(put_endpoint(s, "ov", ep, leases[n]));
  }
  auto elapsed = std::chrono::steady_clock::now() - t0;
  auto written = s.stats();
  double keys_per = double(written.keys_put) / kContainers;
  double bytes_per = double(written.bytes_put) / kContainers;
  CHECK(keys_per == 2.0);  // the address key and the endpoint key, nothing else

  // Every node hears of every change once.
  s.reset_stats();
  std::int64_t changes = 0;
  for (auto& w : watches) {
    auto got = w->next(0ms);
    REQUIRE(got);
    changes += static_cast<std::int64_t>(got->size());
  }
  double events_per_node_per_change =
      double(s.stats().events_delivered) / kNodes / kContainers;
  CHECK(changes == std::int64_t{kNodes} * kContainers);
  CHECK(events_per_node_per_change == 1.0);

  std::printf("sim: nodes=%d containers=%d\n", kNodes, kContainers);
  std::printf("sim: store writes per container (address + endpoint): keys=%.1f bytes=%.1f\n",
              keys_per, bytes_per);
  std::printf("sim: watch events per node per endpoint change: %.2f (%lld delivered in all)\n",
              events_per_node_per_change, static_cast<long long>(changes));
  std::printf("sim: MemoryStore time per container: %.1f us; ipam conflicts: %d\n",
              std::chrono::duration<double, std::micro>(elapsed).count() / kContainers,
              ipam.conflicts());
}
