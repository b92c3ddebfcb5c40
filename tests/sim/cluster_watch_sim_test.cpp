// The cluster's control plane at scale (label sim): simulated nodes as store clients (no daemon,
// no host change) register under leases; the leader's scheduler pass places a project and each
// container gets its overlay address (ClusterIpam) and endpoint; then the figures: time to
// place, keys and bytes in the store per container, and watch events per node for one change
// (one slot added, one node lost), with every node watching all of /stack/assign/ (before the
// per-node index) and with each watching only /stack/node-assign/<node>/ (now). Runs on
// MemoryStore at 1,000 nodes and on a real etcd member (the fixture's) at 100.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>

#include "cluster/etcd_store.h"
#include "cluster/ipam.h"
#include "cluster/memory_store.h"
#include "cluster/nodes.h"
#include "cluster/project_record.h"
#include "cluster/scheduler_loop.h"
#include "cluster/store_peers.h"
#include "support/etcd_fixture.h"
#include "support/fixtures.h"

using namespace stack;
using namespace stack::cluster;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct SimNode {
  std::string name;
  std::shared_ptr<Store> store;  // its own client (one per node against etcd)
  LeaseId lease = 0;
  std::unique_ptr<EventStream> all;   // /stack/assign/: what every node watched before
  std::unique_ptr<EventStream> mine;  // /stack/node-assign/<node>/: what it watches now
};

struct WatchCount {
  double per_node_all = 0, per_node_mine = 0;  // events per node
  size_t woken_all = 0, woken_mine = 0;        // nodes that got at least one event
};

void put_project(Store& s, int services, int replicas) {
  ProjectRecord p;
  p.name = "sim";
  p.spec = "{}";
  p.hash = "h" + std::to_string(replicas);
  for (int i = 0; i < services; i++) {
    ServicePlacement sp;
    sp.project = "sim";
    sp.name = "svc" + std::to_string(i);
    sp.replicas = replicas;
    p.placements.push_back(sp);
  }
  REQUIRE(s.put(project_key("sim"), encode_project(p)));
}

// Drains every node's two streams; a stream is done after an empty wait of QUIET.
WatchCount drain(std::vector<SimNode>& nodes, std::chrono::milliseconds quiet,
                 const std::string& skip = "") {
  WatchCount w;
  size_t all = 0, mine = 0, counted = 0;
  for (auto& n : nodes) {
    if (n.name == skip) continue;
    counted++;
    size_t a = 0, m = 0;
    for (;;) {
      auto got = n.all->next(quiet);
      REQUIRE(got);
      if (got->empty()) break;
      a += got->size();
    }
    for (;;) {
      auto got = n.mine->next(quiet);
      REQUIRE(got);
      if (got->empty()) break;
      m += got->size();
    }
    all += a;
    mine += m;
    w.woken_all += a > 0;
    w.woken_mine += m > 0;
  }
  w.per_node_all = double(all) / double(counted);
  w.per_node_mine = double(mine) / double(counted);
  return w;
}

// Keys and bytes (key + value) under PREFIX.
std::pair<size_t, size_t> footprint(Store& s, const std::string& prefix) {
  auto r = s.range(KeyRange::with_prefix(prefix));
  REQUIRE(r);
  size_t bytes = 0;
  for (const auto& kv : r->kvs) bytes += kv.key.size() + kv.value.size();
  return {r->kvs.size(), bytes};
}

void simulate(const char* store_name, int node_count, int services, int replicas,
              const std::function<std::shared_ptr<Store>()>& client,
              std::chrono::milliseconds quiet) {
  auto admin = client();
  std::vector<SimNode> nodes(static_cast<size_t>(node_count));
  auto t_join = Clock::now();
  for (int i = 0; i < node_count; i++) {
    auto& n = nodes[static_cast<size_t>(i)];
    char name[32];
    std::snprintf(name, sizeof name, "sim-%04d", i);
    n.name = name;
    n.store = client();
    auto lease = n.store->grant(60);
    REQUIRE(lease);
    n.lease = lease->id;
    NodeRecord r;
    r.name = n.name;
    r.address = "192.0.2." + std::to_string(1 + i % 250);
    r.cpus = 16;
    r.memory_bytes = int64_t{64} << 30;
    r.daemon_id = "d-" + n.name;
    REQUIRE(register_node(*n.store, r, n.lease));
  }
  double join_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_join).count();

  // Place: the leader's pass, then each container's address and endpoint from its node.
  auto leader = admin->campaign(std::string(keys::kSchedulerElection), nodes[0].name,
                                nodes[0].lease, 5s);
  REQUIRE(leader);
  ClusterIpam admin_ipam(*admin);
  REQUIRE(admin_ipam.ensure_subnet("simnet", *net::Cidr::parse("10.96.0.0/16")));
  put_project(*admin, services, replicas);
  auto t0 = Clock::now();
  auto pass = schedule_pass(*admin, *leader);
  REQUIRE(pass);
  double schedule_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  const size_t containers = size_t(services) * size_t(replicas);
  REQUIRE(pass->schedule.placed == containers);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < nodes.size(); i++) index[nodes[i].name] = i;
  std::vector<std::unique_ptr<ClusterIpam>> ipams;
  for (auto& n : nodes) ipams.push_back(std::make_unique<ClusterIpam>(*n.store));
  for (const auto& [service, slots] : pass->schedule.assignments)
    for (const auto& [slot, node] : slots) {
      auto& n = nodes[index.at(node)];
      std::string container = "sim-" + service.substr(4) + "-" + std::to_string(slot);
      auto ip = ipams[index.at(node)]->allocate("simnet", node + "/" + container, {}, n.lease);
      REQUIRE(ip);
      OverlayEndpoint ep{node, container, *ip, *net::Mac::parse("02:42:0a:60:00:02"),
                         *net::Ipv4::parse("192.0.2.1")};
      ep.service = service.substr(4);
      ep.project = "sim";
      REQUIRE(put_endpoint(*n.store, "simnet", ep, n.lease));
    }
  double place_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

  size_t keys = 0, bytes = 0;
  for (const std::string& prefix :
       {std::string(kAssignPrefix), std::string(kNodeAssignPrefix), keys::ipam_addrs("simnet"),
        keys::overlay_endpoints("simnet")}) {
    auto [k, b] = footprint(*admin, prefix);
    keys += k;
    bytes += b;
  }
  CHECK(keys == 4 * containers);  // slot, its index key, address, endpoint

  // The watches, from now on.
  for (auto& n : nodes) {
    auto a = n.store->watch(KeyRange::with_prefix(std::string(kAssignPrefix)), pass->revision + 1);
    auto m = n.store->watch(KeyRange::with_prefix(keys::node_assigns(n.name)), pass->revision + 1);
    REQUIRE(a);
    REQUIRE(m);
    n.all = std::move(*a);
    n.mine = std::move(*m);
  }
  (void)drain(nodes, quiet);  // the IPAM's and endpoints' writes are not assignments: none

  // One change: one more replica of one service.
  {
    auto cur = admin->range(KeyRange::exact(project_key("sim")));
    REQUIRE(cur);
    auto rec = decode_project(cur->kvs.at(0).value, "sim");
    REQUIRE(rec);
    rec->placements[0].replicas++;
    REQUIRE(admin->put(project_key("sim"), encode_project(*rec)));
  }
  auto one = schedule_pass(*admin, *leader);
  REQUIRE(one);
  CHECK(one->schedule.placed == 1);
  auto add = drain(nodes, quiet);
  CHECK(add.woken_all == nodes.size());
  CHECK(add.woken_mine == 1);

  // One node lost: its lease revoked (as on expiry), its slots move.
  auto& lost = nodes[nodes.size() / 2];
  REQUIRE(lost.store->revoke(lost.lease));
  auto moved = schedule_pass(*admin, *leader);
  REQUIRE(moved);
  auto gone = drain(nodes, quiet, lost.name);

  std::printf("sim %s: nodes=%d containers=%zu join=%.0f ms schedule pass=%.1f ms place all "
              "(pass + address + endpoint each)=%.0f ms (%.2f ms per container)\n",
              store_name, node_count, containers, join_ms, schedule_ms, place_ms,
              place_ms / double(containers));
  std::printf("sim %s: per container in the store: keys=%.1f bytes=%.0f (slot, per-node index, "
              "address, endpoint)\n",
              store_name, double(keys) / double(containers), double(bytes) / double(containers));
  std::printf("sim %s: one slot added: events per node %.3f with /stack/assign/ (%zu nodes woken), "
              "%.3f with the per-node index (%zu woken)\n",
              store_name, add.per_node_all, add.woken_all, add.per_node_mine, add.woken_mine);
  std::printf("sim %s: one node lost (%zu slots moved): events per node %.3f with /stack/assign/ "
              "(%zu woken), %.3f with the per-node index (%zu woken)\n",
              store_name, moved->schedule.moved, gone.per_node_all, gone.woken_all,
              gone.per_node_mine, gone.woken_mine);
  std::fflush(stdout);
  CHECK(gone.woken_all == nodes.size() - 1);
  CHECK(gone.woken_mine <= moved->schedule.moved);
  CHECK(gone.per_node_mine < gone.per_node_all);
  for (auto& n : nodes) {
    n.all->cancel();
    n.mine->cancel();
  }
}

}  // namespace

TEST_CASE("sim watch events per node for one change with and without the per-node index on MemoryStore") {
  auto mem = std::make_shared<MemoryStore>();
  simulate("memory", 1000, 20, 50, [mem] { return mem; }, 0ms);
}

TEST_CASE("sim the scheduler and IPAM against a real etcd member with 100 simulated nodes") {
  if (auto why = test::etcd_missing(); !why.empty()) return test::report_skip(why);
  auto etcd = test::EtcdCluster::single();
  REQUIRE(etcd->healthy());
  EtcdOptions o;
  o.endpoints = etcd->endpoints();
  simulate("etcd", 100, 10, 30,
           [o]() -> std::shared_ptr<Store> {
             auto s = EtcdStore::open(o);
             REQUIRE(s);
             return std::shared_ptr<Store>(std::move(*s));
           },
           30ms);
}
