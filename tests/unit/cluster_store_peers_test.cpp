// Overlay endpoints in the store and StorePeers (src/cluster/store_peers.h) on a MemoryStore:
// peers are other nodes' underlay addresses, the watch after a listing misses nothing, and a
// node's lease running out takes its endpoints (and so it as a peer) away.
#include <doctest/doctest.h>

#include <atomic>

#include "cluster/memory_store.h"
#include "cluster/store_peers.h"

using namespace stack;
using namespace stack::cluster;
using namespace std::chrono_literals;

namespace {

OverlayEndpoint ep(std::string node, std::string container, const char* ip, const char* mac,
                   const char* underlay) {
  return {std::move(node), std::move(container), *net::Ipv4::parse(ip), *net::Mac::parse(mac),
          *net::Ipv4::parse(underlay)};
}

std::vector<std::string> strs(const std::vector<net::Ipv4>& ips) {
  std::vector<std::string> out;
  for (auto i : ips) out.push_back(i.str());
  return out;
}

}  // namespace

TEST_CASE("store peers are the other nodes' underlay addresses, each once") {
  MemoryStore s;
  REQUIRE(put_endpoint(s, "ov", ep("a", "web-1", "10.90.0.2", "02:00:00:00:00:02", "192.0.2.1"), 0));
  REQUIRE(put_endpoint(s, "ov", ep("b", "web-2", "10.90.0.3", "02:00:00:00:00:03", "192.0.2.2"), 0));
  REQUIRE(put_endpoint(s, "ov", ep("b", "db-1", "10.90.0.4", "02:00:00:00:00:04", "192.0.2.2"), 0));
  REQUIRE(put_endpoint(s, "ov", ep("c", "web-3", "10.90.0.5", "02:00:00:00:00:05", "192.0.2.3"), 0));
  REQUIRE(put_endpoint(s, "other", ep("d", "x", "10.91.0.2", "02:00:00:00:00:06", "192.0.2.4"), 0));
  // Garbage under the prefix is skipped, not fatal.
  REQUIRE(s.put(keys::overlay_endpoints("ov") + "e/bad", "not json"));

  auto listing = list_endpoints(s, "ov");
  REQUIRE(listing);
  CHECK(listing->endpoints.size() == 4);
  StorePeers peers("a");
  auto before = peers.peers("ov");
  REQUIRE_FALSE(before);
  CHECK(before.error().message ==
        "overlay network ov: its endpoints are not loaded from the cluster store yet");
  peers.replace("ov", listing->endpoints);
  CHECK(strs(*peers.peers("ov")) == std::vector<std::string>{"192.0.2.2", "192.0.2.3"});
  StorePeers from_b("b");
  from_b.replace("ov", listing->endpoints);
  CHECK(strs(*from_b.peers("ov")) == std::vector<std::string>{"192.0.2.1", "192.0.2.3"});
  CHECK_FALSE(put_endpoint(s, "ov", ep("a/b", "x", "10.90.0.9", "02:00:00:00:00:09", "192.0.2.9"), 0));
}

TEST_CASE("store peers follow endpoint changes and a node whose lease ran out") {
  auto t = std::make_shared<std::atomic<std::int64_t>>(0);
  auto start = std::chrono::steady_clock::now();
  MemoryStore s([t, start] { return start + std::chrono::seconds(t->load()); });
  auto lease_b = s.grant(10);
  REQUIRE(lease_b);
  REQUIRE(put_endpoint(s, "ov", ep("b", "web-2", "10.90.0.3", "02:00:00:00:00:03", "192.0.2.2"),
                       lease_b->id));
  auto w = EndpointWatch::start(s, "ov");
  REQUIRE(w);
  CHECK((*w)->initial().endpoints.size() == 1);
  StorePeers peers("a");
  peers.replace("ov", (*w)->initial().endpoints);
  CHECK(strs(*peers.peers("ov")) == std::vector<std::string>{"192.0.2.2"});

  REQUIRE(put_endpoint(s, "ov", ep("c", "web-3", "10.90.0.5", "02:00:00:00:00:05", "192.0.2.3"), 0));
  REQUIRE(put_endpoint(s, "ov", ep("a", "web-1", "10.90.0.2", "02:00:00:00:00:02", "192.0.2.1"), 0));
  auto changes = (*w)->next(0ms);
  REQUIRE(changes);
  REQUIRE(changes->size() == 2);
  CHECK((*changes)[0].kind == EndpointChange::Kind::Added);
  CHECK((*changes)[0].endpoint.container == "web-3");
  peers.apply("ov", *changes);
  CHECK(strs(*peers.peers("ov")) == std::vector<std::string>{"192.0.2.2", "192.0.2.3"});

  REQUIRE(erase_endpoint(s, "ov", "c", "web-3"));
  *t += 11;  // node b stopped renewing its lease
  s.expire_leases();
  changes = (*w)->next(0ms);
  REQUIRE(changes);
  REQUIRE(changes->size() == 2);
  CHECK((*changes)[0].kind == EndpointChange::Kind::Removed);
  CHECK((*changes)[1].endpoint.node == "b");
  peers.apply("ov", *changes);
  CHECK(peers.peers("ov")->empty());
  CHECK(peers.endpoints("ov").size() == 1);  // this node's own
}

TEST_CASE("endpoint records carry service, project and aliases, and older records still read") {
  MemoryStore s;
  auto web = ep("b", "demo-web-1", "10.90.0.3", "02:00:00:00:00:03", "192.0.2.2");
  web.service = "web";
  web.project = "demo";
  web.aliases = {"www"};
  REQUIRE(put_endpoint(s, "ov", web, 0));
  auto kv = s.range(KeyRange::exact(keys::overlay_endpoint("ov", "b", "demo-web-1")));
  REQUIRE(kv);
  CHECK(kv->kvs.at(0).value ==
        R"({"aliases":["www"],"ip":"10.90.0.3","mac":"02:00:00:00:00:03","project":"demo",)"
        R"("service":"web","underlay":"192.0.2.2"})");
  // A record without them (as written before): names empty.
  REQUIRE(s.put(keys::overlay_endpoint("ov", "c", "x-1"),
                R"({"ip":"10.90.0.4","mac":"02:00:00:00:00:04","underlay":"192.0.2.3"})"));
  auto listing = list_endpoints(s, "ov");
  REQUIRE(listing);
  REQUIRE(listing->endpoints.size() == 2);
  CHECK(listing->endpoints[0] == web);
  CHECK(listing->endpoints[1].service.empty());
  CHECK(listing->endpoints[1].ip.str() == "10.90.0.4");
}
