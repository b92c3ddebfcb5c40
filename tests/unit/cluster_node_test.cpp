// Nodes joining the cluster (cluster/nodes.h, cluster/node_agent.h) against MemoryStore with a
// hand-moved clock: registration, a name held by another daemon, a lost lease, an unreachable
// store, labels kept while a node is down, the scheduler's leader.
#include <doctest/doctest.h>

#include <atomic>
#include <future>

#include "cluster/memory_store.h"
#include "cluster/node_agent.h"
#include "cluster/nodes.h"

using namespace stack;
using namespace stack::cluster;
using namespace std::chrono_literals;

namespace {

struct Clock {
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
  MemoryStore::Clock fn() {
    return [this] { return now; };
  }
};

// A store that can be made unreachable: every call fails while DOWN.
class FlakyStore final : public Store {
 public:
  explicit FlakyStore(Store& s) : s_(s) {}
  std::atomic<bool> down{false};
#define FLAKY(call)                                               \
  if (down) return fail("connect to etcd: Connection refused", ECONNREFUSED); \
  return s_.call
  Result<RangeResult> range(const KeyRange& r) override { FLAKY(range(r)); }
  Result<Revision> put(const std::string& k, const std::string& v, LeaseId l) override {
    FLAKY(put(k, v, l));
  }
  Result<std::int64_t> erase(const KeyRange& r) override { FLAKY(erase(r)); }
  Result<TxnResult> txn(const std::vector<Compare>& c, const std::vector<TxnOp>& t,
                        const std::vector<TxnOp>& e) override {
    FLAKY(txn(c, t, e));
  }
  Result<void> compact(Revision r) override { FLAKY(compact(r)); }
  Result<Lease> grant(std::int64_t ttl) override { FLAKY(grant(ttl)); }
  Result<std::int64_t> keepalive(LeaseId l) override { FLAKY(keepalive(l)); }
  Result<void> revoke(LeaseId l) override { FLAKY(revoke(l)); }
  Result<std::unique_ptr<EventStream>> watch_ranges(const std::vector<KeyRange>& r,
                                                    Revision from) override {
    FLAKY(watch_ranges(r, from));
  }
  Result<LeaderKey> campaign(const std::string& n, const std::string& v, LeaseId l,
                             std::chrono::milliseconds t) override {
    FLAKY(campaign(n, v, l, t));
  }
  Result<void> proclaim(const LeaderKey& k, const std::string& v) override { FLAKY(proclaim(k, v)); }
  Result<KeyValue> leader(const std::string& n) override { FLAKY(leader(n)); }
  Result<void> resign(const LeaderKey& k) override { FLAKY(resign(k)); }
  Result<std::unique_ptr<EventStream>> observe(const std::string& n) override {
    FLAKY(observe(n));
  }
#undef FLAKY

 private:
  Store& s_;
};

// A Store shared with the test, which keeps the real one.
std::shared_ptr<Store> borrow(Store& s) { return {&s, [](Store*) {}}; }

AgentOptions node(const std::string& name, const std::string& daemon_id,
                  const std::string& address = "10.0.0.1") {
  AgentOptions o;
  o.record = {name, address, {}, 2, 4LL << 30, "0.1.0", "2026-11-30T12:00:00Z", daemon_id};
  o.ttl = 10s;
  return o;
}

NodeStatus find(Store& store, const std::string& name) {
  auto list = list_nodes(store);
  REQUIRE(list);
  for (const auto& n : list->nodes)
    if (n.record.name == name) return n;
  FAIL("node " << name << " is not listed");
  return {};
}

}  // namespace

TEST_CASE("cluster node: a daemon registers its node under a lease, with its capacity") {
  Clock clock;
  MemoryStore store(clock.fn());
  NodeAgent agent(borrow(store), node("n1", "aaaa"));
  REQUIRE(agent.join());
  CHECK(agent.status().state == NodeAgent::State::Ready);
  auto n = find(store, "n1");
  CHECK(n.ready);
  CHECK(n.record.address == "10.0.0.1");
  CHECK(n.record.cpus == 2);
  CHECK(n.record.memory_bytes == 4LL << 30);
  CHECK(n.record.engine_version == "0.1.0");
  auto kv = store.range(KeyRange::exact("/stack/nodes/n1"));
  REQUIRE(kv);
  REQUIRE(kv->kvs.size() == 1);
  CHECK(kv->kvs[0].lease == agent.status().lease);
  // The next step is a keepalive a third of the TTL later, and keeps the node alive past it.
  CHECK(agent.step() == std::chrono::milliseconds(10000) / 3);
  clock.now += 8s;
  CHECK(agent.step() == std::chrono::milliseconds(10000) / 3);
  clock.now += 8s;
  store.expire_leases();
  CHECK(find(store, "n1").ready);
}

TEST_CASE("cluster node: a second daemon with the same name is refused while the first's lease lives") {
  Clock clock;
  MemoryStore store(clock.fn());
  NodeAgent first(borrow(store), node("n1", "aaaa", "10.0.0.1"));
  REQUIRE(first.join());
  NodeAgent second(borrow(store), node("n1", "bbbb", "10.0.0.2"));
  auto r = second.join();
  REQUIRE_FALSE(r);
  CHECK(r.error().message ==
        "register node n1: the name is held by another daemon (address 10.0.0.1, started "
        "2026-11-30T12:00:00Z) for as long as it keeps its lease alive; give this daemon another "
        "--node-name, or stop that one and wait for its lease to expire");
  CHECK(second.status().state == NodeAgent::State::Refused);
  CHECK(find(store, "n1").record.address == "10.0.0.1");
  // The refused daemon's lease was revoked at once: only the first one's remains.
  // Once the first is gone (no keepalive past the TTL), the second gets the name.
  clock.now += 11s;
  store.expire_leases();
  second.step();
  CHECK(second.status().state == NodeAgent::State::Ready);
  CHECK(find(store, "n1").record.address == "10.0.0.2");
}

TEST_CASE("cluster node: a restarted daemon (same daemon id) takes its name back at once") {
  Clock clock;
  MemoryStore store(clock.fn());
  {
    NodeAgent killed(borrow(store), node("n1", "aaaa", "10.0.0.1"));
    REQUIRE(killed.join());
  }  // gone without revoking, as after kill -9: its lease still lives
  NodeAgent again(borrow(store), node("n1", "aaaa", "10.0.0.9"));
  REQUIRE(again.join());
  CHECK(find(store, "n1").record.address == "10.0.0.9");
  // The old lease expiring does not take the new record with it.
  clock.now += 6s;
  again.step();
  clock.now += 6s;
  store.expire_leases();
  CHECK(find(store, "n1").ready);
}

TEST_CASE("cluster node: a lost lease is noticed and the node registers again") {
  Clock clock;
  MemoryStore store(clock.fn());
  REQUIRE(store.put("/stack/node-labels/n1", R"({"zone":"a"})"));
  NodeAgent agent(borrow(store), node("n1", "aaaa"));
  REQUIRE(agent.join());
  auto first_lease = agent.status().lease;
  // Told of the new lease once status() has it (ClusterOverlay writes its endpoints again then).
  std::vector<std::pair<LeaseId, LeaseId>> told;  // (given, status().lease then)
  agent.on_registered([&](LeaseId l) { told.emplace_back(l, agent.status().lease); });
  clock.now += 11s;  // no keepalive in time: the lease expires, the record goes
  store.expire_leases();
  auto down = find(store, "n1");
  CHECK_FALSE(down.ready);
  CHECK(down.record.labels == Labels{{"zone", "a"}});  // still listed, by its labels
  CHECK(agent.step() == 0ms);  // keepalive fails, the record is gone: register now
  CHECK(agent.status().state == NodeAgent::State::Joining);
  agent.step();
  CHECK(agent.status().state == NodeAgent::State::Ready);
  CHECK(agent.status().lease != first_lease);
  REQUIRE(told.size() == 1);
  CHECK(told[0].first == agent.status().lease);
  CHECK(told[0].second == agent.status().lease);
  agent.on_registered(nullptr);
  auto back = find(store, "n1");
  CHECK(back.ready);
  CHECK(back.record.labels == Labels{{"zone", "a"}});
}

TEST_CASE("cluster node: an unreachable store is retried with backoff, and the node comes back") {
  Clock clock;
  MemoryStore real(clock.fn());
  FlakyStore store(real);
  auto opts = node("n1", "aaaa");
  opts.backoff_min = 100ms;
  opts.backoff_max = 400ms;
  NodeAgent agent(borrow(store), opts);
  store.down = true;
  REQUIRE(agent.join());  // not refused: it keeps trying
  CHECK(agent.status().state == NodeAgent::State::Unreachable);
  CHECK(agent.status().error.find("Connection refused") != std::string::npos);
  CHECK(agent.step() == 200ms);
  CHECK(agent.step() == 400ms);
  CHECK(agent.step() == 400ms);
  store.down = false;
  agent.step();
  CHECK(agent.status().state == NodeAgent::State::Ready);
  // Down again for longer than the TTL: the lease is lost meanwhile, then registered again.
  store.down = true;
  CHECK(agent.step() == 100ms);
  CHECK(agent.status().state == NodeAgent::State::Unreachable);
  clock.now += 11s;
  real.expire_leases();
  CHECK(list_nodes(real)->nodes.empty());  // no record, no labels: not even listed
  store.down = false;
  agent.step();  // keepalive: lease not found, and the record is gone
  agent.step();
  CHECK(agent.status().state == NodeAgent::State::Ready);
  CHECK(find(real, "n1").ready);
}

TEST_CASE("cluster node: labels are edited in the store and in the live record, keeping its lease") {
  Clock clock;
  MemoryStore store(clock.fn());
  NodeAgent agent(borrow(store), node("n1", "aaaa"));
  REQUIRE(agent.join());
  auto r = update_node_labels(store, "n1", {{"zone", "a"}, {"ssd", "true"}}, {});
  REQUIRE(r);
  CHECK(r->record.labels == Labels{{"ssd", "true"}, {"zone", "a"}});
  r = update_node_labels(store, "n1", {}, {"ssd"});
  REQUIRE(r);
  auto n = find(store, "n1");
  CHECK(n.record.labels == Labels{{"zone", "a"}});
  auto labels = store.range(KeyRange::exact("/stack/node-labels/n1"));
  REQUIRE(labels);
  REQUIRE(labels->kvs.size() == 1);
  CHECK(labels->kvs[0].lease == 0);
  auto kv = store.range(KeyRange::exact("/stack/nodes/n1"));
  REQUIRE(kv);
  REQUIRE(kv->kvs.size() == 1);
  CHECK(kv->kvs[0].lease == agent.status().lease);
  CHECK(decode_node(kv->kvs[0].value, "n1")->labels == Labels{{"zone", "a"}});

  auto bad = update_node_labels(store, "n1", {{"a b", "x"}}, {});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("not a label key") != std::string::npos);
  auto unknown = update_node_labels(store, "nope", {{"a", "b"}}, {});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().message == "no such node: nope");

  // Down with labels: still listed, as down. Its last label removed: forgotten.
  agent.stop(true);
  auto down = find(store, "n1");
  CHECK_FALSE(down.ready);
  REQUIRE(update_node_labels(store, "n1", {}, {"zone"}));
  auto list = list_nodes(store);
  REQUIRE(list);
  CHECK(list->nodes.empty());
}

TEST_CASE("cluster node: the scheduler's leader is marked when an election exists") {
  Clock clock;
  MemoryStore store(clock.fn());
  NodeAgent a(borrow(store), node("a", "aaaa")), b(borrow(store), node("b", "bbbb"));
  REQUIRE(a.join());
  REQUIRE(b.join());
  auto list = list_nodes(store);
  REQUIRE(list);
  CHECK_FALSE(list->election);
  REQUIRE(store.campaign(std::string(keys::kSchedulerElection), "b", b.status().lease, 1s));
  list = list_nodes(store);
  REQUIRE(list);
  CHECK(list->election);
  REQUIRE(list->nodes.size() == 2);
  CHECK_FALSE(list->nodes[0].leader);
  CHECK(list->nodes[1].leader);
  CHECK(leader_node(R"({"node":"a","since":1})") == "a");
}

TEST_CASE("cluster node: the agent's threads keep the lease and answer queries") {
  MemoryStore store;
  auto opts = node("n1", "aaaa");
  opts.ttl = 3s;
  NodeAgent agent(borrow(store), opts);
  REQUIRE(agent.join());
  agent.start();
  std::promise<bool> answered;
  agent.submit([&] { answered.set_value(list_nodes(agent.store()).has_value()); });
  CHECK(answered.get_future().get());
  agent.stop(true);  // left on purpose: the record goes at once, not after the TTL
  auto list = list_nodes(store);
  REQUIRE(list);
  CHECK(list->nodes.empty());
}
