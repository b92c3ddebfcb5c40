// The scheduler's loop and each node's view of its assignments (cluster/scheduler_loop.h,
// cluster/assignment_watch.h) against MemoryStore: a leader's pass places 6 replicas 2/2/2,
// a deposed leader writes nothing, a lost node's slots move keeping their numbers, two loops
// hand leadership over, a node's view holds its slots only.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "cluster/assignment_watch.h"
#include "cluster/memory_store.h"
#include "cluster/nodes.h"
#include "cluster/placement.h"
#include "cluster/project_record.h"
#include "cluster/scheduler_loop.h"

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

LeaseId join(Store& s, const std::string& name, int ttl = 10) {
  auto lease = s.grant(ttl);
  REQUIRE(lease);
  NodeRecord r;
  r.name = name;
  r.address = "10.0.0.1";
  r.cpus = 2;
  r.memory_bytes = int64_t{1} << 30;
  r.daemon_id = "d-" + name;
  REQUIRE(register_node(s, r, lease->id));
  return lease->id;
}

void put_project(Store& s, const std::string& name, int replicas,
                 std::vector<std::string> constraints = {}) {
  ProjectRecord p;
  p.name = name;
  p.spec = "{}";
  p.hash = "h" + std::to_string(replicas);
  ServicePlacement sp;
  sp.project = name;
  sp.name = "web";
  sp.replicas = replicas;
  for (const auto& c : constraints) {
    auto parsed = parse_constraint(c);
    REQUIRE(parsed);
    sp.constraints.push_back(*parsed);
  }
  p.placements.push_back(sp);
  REQUIRE(s.put(project_key(name), encode_project(p)));
}

// slot → node of demo/web, as the store holds it.
std::map<int, std::string> slots(Store& s, const std::string& project = "demo") {
  std::map<int, std::string> out;
  auto r = s.range(KeyRange::with_prefix(assign_prefix(project)));
  REQUIRE(r);
  for (const auto& kv : r->kvs) {
    SlotKey k;
    REQUIRE(parse_assign_key(kv.key, k));
    out[k.slot] = kv.value;
  }
  return out;
}

// slot → node of demo/web, as the per-node index holds it (a slot indexed twice fails).
std::map<int, std::string> index_of(Store& s, const std::string& project = "demo") {
  std::map<int, std::string> out;
  auto r = s.range(KeyRange::with_prefix(std::string(kNodeAssignPrefix)));
  REQUIRE(r);
  for (const auto& kv : r->kvs) {
    std::string node;
    SlotKey k;
    REQUIRE(parse_node_assign_key(kv.key, node, k));
    CHECK(kv.value == node);
    if (k.project == project) CHECK(out.emplace(k.slot, node).second);
  }
  return out;
}

std::map<std::string, int> per_node(const std::map<int, std::string>& m) {
  std::map<std::string, int> out;
  for (const auto& [slot, node] : m) out[node]++;
  return out;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 5s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

}  // namespace

TEST_CASE("scheduler pass: 6 replicas land 2 2 2 and a deposed leader writes nothing") {
  MemoryStore s;
  LeaseId a = join(s, "a");
  join(s, "b");
  join(s, "c");
  put_project(s, "demo", 6);
  auto leader = s.campaign(std::string(keys::kSchedulerElection), "a", a, 1s);
  REQUIRE(leader);
  auto pass = schedule_pass(s, *leader);
  REQUIRE(pass);
  CHECK(pass->leader);
  CHECK(pass->writes == 12);  // each slot's key and its per-node index key
  CHECK(per_node(slots(s)) == std::map<std::string, int>{{"a", 2}, {"b", 2}, {"c", 2}});
  CHECK(index_of(s) == slots(s));
  // Nothing changed: nothing written.
  auto again = schedule_pass(s, *leader);
  REQUIRE(again);
  CHECK(again->writes == 0);

  REQUIRE(s.resign(*leader));
  put_project(s, "demo", 9);
  auto deposed = schedule_pass(s, *leader);
  REQUIRE(deposed);
  CHECK_FALSE(deposed->leader);
  CHECK(deposed->writes == 0);
  CHECK(slots(s).size() == 6);
}

TEST_CASE("scheduler pass: a lost node's slots move after its lease expires, keeping their numbers") {
  Clock clock;
  MemoryStore s(clock.fn());
  LeaseId a = join(s, "a", 60);
  join(s, "b", 5);
  join(s, "c", 60);
  put_project(s, "demo", 6);
  auto leader = s.campaign(std::string(keys::kSchedulerElection), "a", a, 1s);
  REQUIRE(leader);
  REQUIRE(schedule_pass(s, *leader));
  auto before = slots(s);
  std::set<int> on_b;
  for (const auto& [slot, node] : before)
    if (node == "b") on_b.insert(slot);
  REQUIRE(on_b.size() == 2);

  clock.now += 6s;
  s.expire_leases();
  auto pass = schedule_pass(s, *leader);
  REQUIRE(pass);
  CHECK(pass->schedule.moved == 2);
  auto after = slots(s);
  CHECK(after.size() == 6);
  for (const auto& [slot, node] : after) {
    CHECK(node != "b");
    if (!on_b.count(slot)) CHECK(node == before[slot]);  // nothing else moved
  }
  CHECK(per_node(after) == std::map<std::string, int>{{"a", 3}, {"c", 3}});
  CHECK(index_of(s) == after);  // b's index keys went with the moves
}

TEST_CASE("scheduler pass: a constraint pins the service, a removed project loses its slots") {
  MemoryStore s;
  LeaseId a = join(s, "a");
  join(s, "b");
  REQUIRE(update_node_labels(s, "b", {{"zone", "b"}}, {}));
  put_project(s, "demo", 3, {"node.labels.zone==b"});
  auto leader = s.campaign(std::string(keys::kSchedulerElection), "a", a, 1s);
  REQUIRE(leader);
  REQUIRE(schedule_pass(s, *leader));
  CHECK(per_node(slots(s)) == std::map<std::string, int>{{"b", 3}});
  REQUIRE(s.erase(KeyRange::exact(project_key("demo"))));
  auto pass = schedule_pass(s, *leader);
  REQUIRE(pass);
  CHECK(pass->schedule.removed == 3);
  CHECK(slots(s).empty());
  CHECK(index_of(s).empty());
}

TEST_CASE("scheduler pass: a stray or missing per-node index key is repaired") {
  MemoryStore s;
  LeaseId a = join(s, "a");
  join(s, "b");
  put_project(s, "demo", 2);
  auto leader = s.campaign(std::string(keys::kSchedulerElection), "a", a, 1s);
  REQUIRE(leader);
  REQUIRE(schedule_pass(s, *leader));
  auto placed = slots(s);
  // As an older version left it: slot 1 not indexed, slot 7 indexed but not assigned.
  REQUIRE(s.erase(KeyRange::exact(keys::node_assign(placed[1], "demo", "web", 1))));
  REQUIRE(s.put(keys::node_assign("b", "demo", "web", 7), "b"));
  auto pass = schedule_pass(s, *leader);
  REQUIRE(pass);
  CHECK(pass->writes == 2);
  CHECK(index_of(s) == placed);
}

TEST_CASE("scheduler loops: one leads, the other takes over when its node goes") {
  MemoryStore mem;
  std::shared_ptr<Store> s(&mem, [](Store*) {});
  LeaseId la = join(mem, "a");
  LeaseId lb = join(mem, "b");
  SchedulerLoop loop_a(s, {"a", [la] { return la; }, 200ms, 20ms});
  SchedulerLoop loop_b(s, {"b", [lb] { return lb; }, 200ms, 20ms});
  loop_a.start();
  REQUIRE(eventually([&] { return loop_a.leading(); }));
  loop_b.start();
  put_project(mem, "demo", 4);
  REQUIRE(eventually([&] { return slots(mem).size() == 4; }));
  CHECK(per_node(slots(mem)) == std::map<std::string, int>{{"a", 2}, {"b", 2}});
  CHECK_FALSE(loop_b.leading());

  REQUIRE(mem.revoke(la));  // node a is gone: its record and its leader key with it
  REQUIRE(eventually([&] { return loop_b.leading(); }));
  REQUIRE(eventually([&] { return per_node(slots(mem)) == std::map<std::string, int>{{"b", 4}}; }));
  loop_a.stop();
  loop_b.stop();
}

namespace {
// The candidates' keys under the election: one once the followers' campaigns timed out.
size_t candidates(MemoryStore& mem) {
  auto r = mem.range(KeyRange::with_prefix(std::string(keys::kSchedulerElection) + "/"));
  REQUIRE(r);
  return r->kvs.size();
}
}  // namespace

TEST_CASE("scheduler loops: no wake-up while idle, a lost leader key noticed at once, prompt stop") {
  MemoryStore mem;
  std::shared_ptr<Store> s(&mem, [](Store*) {});
  LeaseId la = join(mem, "a");
  LeaseId lb = join(mem, "b");
  SchedulerLoop loop_a(s, {"a", [la] { return la; }, 200ms, 20ms});
  SchedulerLoop loop_b(s, {"b", [lb] { return lb; }, 200ms, 20ms});
  loop_a.start();
  REQUIRE(eventually([&] { return loop_a.leading(); }));
  loop_b.start();
  put_project(mem, "demo", 2);
  REQUIRE(eventually([&] { return slots(mem).size() == 2; }));
  REQUIRE(eventually([&] { return loop_b.campaigns() == 1 && candidates(mem) == 1; }));
  std::this_thread::sleep_for(50ms);  // the leader's pass after its own writes
  // Idle: nobody wakes (the leader asked the store every second; the follower campaigned
  // again every campaign_timeout, each time waking the leader with its candidate key).
  auto passes = loop_a.passes();
  auto woken_a = loop_a.wakeups(), woken_b = loop_b.wakeups();
  std::this_thread::sleep_for(1200ms);
  CHECK(loop_a.passes() == passes);
  CHECK(loop_a.wakeups() == woken_a);
  CHECK(loop_b.wakeups() == woken_b);
  CHECK(loop_b.campaigns() == 1);

  // A change is placed at once, with one pass (and one more after its own writes).
  put_project(mem, "more", 1);
  REQUIRE(eventually([&] { return slots(mem, "more").size() == 1; }, 100ms));
  CHECK(loop_b.wakeups() == woken_b);  // not the follower's business

  // The leader's key goes while its node stays (as when the node's old lease expires after
  // it registered again): both notice at once, and one of them leads.
  auto old = mem.leader(std::string(keys::kSchedulerElection));
  REQUIRE(old);
  auto campaigns = loop_a.campaigns() + loop_b.campaigns();
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(mem.erase(KeyRange::exact(old->key)));
  REQUIRE(eventually([&] {
    auto now = mem.leader(std::string(keys::kSchedulerElection));
    return now && now->create_revision != old->create_revision &&
           (loop_a.leading() || loop_b.leading());
  }));
  CHECK(std::chrono::steady_clock::now() - t0 < 100ms);
  // Each campaigned once; the loser's timed out and it follows again.
  CHECK(eventually([&] {
    return loop_a.campaigns() + loop_b.campaigns() == campaigns + 2 && candidates(mem) == 1 &&
           loop_a.leading() != loop_b.leading();
  }));

  for (auto* loop : {&loop_a, &loop_b}) {
    t0 = std::chrono::steady_clock::now();
    loop->stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 50ms);
  }
}

namespace {

// MemoryStore that puts project LATE just before the first assignment write reaches it: a
// change made between a pass's read and its writes.
class PutBeforeWrite final : public Store {
 public:
  PutBeforeWrite(MemoryStore& m, std::string late) : m_(m), late_(std::move(late)) {}
  Result<RangeResult> range(const KeyRange& r) override { return m_.range(r); }
  Result<Revision> put(const std::string& k, const std::string& v, LeaseId l) override {
    return m_.put(k, v, l);
  }
  Result<std::int64_t> erase(const KeyRange& r) override { return m_.erase(r); }
  Result<TxnResult> txn(const std::vector<Compare>& c, const std::vector<TxnOp>& t,
                        const std::vector<TxnOp>& e) override {
    bool writes = std::any_of(t.begin(), t.end(), [](const TxnOp& op) {
      return op.kind == TxnOp::Kind::Put && op.range.key.rfind("/stack/assign/", 0) == 0;
    });
    if (writes && !done_.exchange(true)) (void)m_.put(project_key("late"), late_);
    return m_.txn(c, t, e);
  }
  Result<void> compact(Revision r) override { return m_.compact(r); }
  Result<Lease> grant(std::int64_t ttl) override { return m_.grant(ttl); }
  Result<std::int64_t> keepalive(LeaseId l) override { return m_.keepalive(l); }
  Result<void> revoke(LeaseId l) override { return m_.revoke(l); }
  Result<std::unique_ptr<EventStream>> watch_ranges(const std::vector<KeyRange>& r,
                                                    Revision from) override {
    return m_.watch_ranges(r, from);
  }
  Result<LeaderKey> campaign(const std::string& n, const std::string& v, LeaseId l,
                             std::chrono::milliseconds t) override {
    return m_.campaign(n, v, l, t);
  }
  Result<void> proclaim(const LeaderKey& l, const std::string& v) override {
    return m_.proclaim(l, v);
  }
  Result<KeyValue> leader(const std::string& n) override { return m_.leader(n); }
  Result<void> resign(const LeaderKey& l) override { return m_.resign(l); }
  Result<std::unique_ptr<EventStream>> observe(const std::string& n) override {
    return m_.observe(n);
  }

 private:
  MemoryStore& m_;
  std::string late_;  // its record
  std::atomic<bool> done_{false};
};

}  // namespace

TEST_CASE("scheduler loop: a project put between a pass's read and its writes is placed") {
  MemoryStore mem, scratch;
  put_project(scratch, "late", 1);
  auto late = scratch.range(KeyRange::exact(project_key("late")));
  REQUIRE(late);
  auto s = std::make_shared<PutBeforeWrite>(mem, late->kvs.at(0).value);
  LeaseId la = join(mem, "a");
  SchedulerLoop loop(s, {"a", [la] { return la; }, 200ms, 20ms});
  loop.start();
  REQUIRE(eventually([&] { return loop.leading(); }));
  put_project(mem, "demo", 2);
  REQUIRE(eventually([&] { return slots(mem).size() == 2; }));
  // Nothing else changes: only the watch from the pass's snapshot wakes the loop for "late".
  CHECK(eventually([&] { return slots(mem, "late").size() == 1; }, 3s));
  loop.stop();
}

// What the scheduler writes for one slot: its key and its per-node index key, the old node's
// index key deleted (FROM), in one txn.
void assign(MemoryStore& mem, const std::string& project, const std::string& service, int slot,
            const std::string& node, const std::string& from = "") {
  std::vector<TxnOp> ops = {TxnOp::put(keys::assign(project, service, slot), node),
                            TxnOp::put(keys::node_assign(node, project, service, slot), node)};
  if (!from.empty())
    ops.push_back(TxnOp::erase(KeyRange::exact(keys::node_assign(from, project, service, slot))));
  REQUIRE(mem.txn({}, ops, {}));
}

TEST_CASE("assignment view: a node sees every project and only its own slots, and each change once") {
  MemoryStore mem;
  std::shared_ptr<Store> s(&mem, [](Store*) {});
  put_project(mem, "demo", 3);
  put_project(mem, "other", 1);
  assign(mem, "demo", "web", 1, "a");
  assign(mem, "demo", "web", 2, "b");
  assign(mem, "demo", "web", 3, "a");
  assign(mem, "other", "web", 1, "b");
  auto view = read_local_view(mem, "a");
  REQUIRE(view);
  REQUIRE(view->first.size() == 2);
  CHECK(view->first["demo"].slots == std::map<std::string, std::set<int>>{{"web", {1, 3}}});
  CHECK(view->first["other"].slots.empty());  // nothing of it runs here

  std::mutex mu;
  std::vector<LocalView> seen;
  AssignmentWatch watch(s, "a", [&](LocalView v) {
    std::lock_guard lk(mu);
    seen.push_back(std::move(v));
  }, 20ms);
  watch.start();
  REQUIRE(eventually([&] { return watch.views() == 1; }));
  auto events = watch.events();
  assign(mem, "other", "web", 1, "c", "b");  // not ours either way: no new view, no event
  assign(mem, "demo", "web", 2, "a", "b");   // moved here
  REQUIRE(eventually([&] { return watch.views() == 2; }));
  CHECK(watch.events() == events + 1);  // the index key put here, nothing of b's or c's
  REQUIRE(mem.erase(KeyRange::exact(project_key("other"))));
  REQUIRE(eventually([&] { return watch.views() == 3; }));
  watch.stop();
  std::lock_guard lk(mu);
  CHECK(seen[1]["demo"].slots["web"] == std::set<int>{1, 2, 3});
  CHECK(seen[2].count("other") == 0);
}

TEST_CASE("assignment view: one wait on both prefixes, woken at once by either, never while idle") {
  MemoryStore mem;
  std::shared_ptr<Store> s(&mem, [](Store*) {});
  put_project(mem, "demo", 2);
  AssignmentWatch watch(s, "a", [](LocalView) {}, 20ms);
  watch.start();
  REQUIRE(eventually([&] { return watch.views() == 1; }));
  // Idle: no wake-up at all (waiting on two streams in turn woke it ten times a second).
  std::this_thread::sleep_for(300ms);
  CHECK(watch.wakeups() == 0);
  // A change on either prefix is seen at once, whichever the thread waited on before.
  std::vector<std::chrono::steady_clock::duration> seen;
  for (int i = 0; i < 6; i++) {
    auto views = watch.views();
    auto t0 = std::chrono::steady_clock::now();
    std::string name = "p";
    name += std::to_string(i);
    if (i % 2 == 0) put_project(mem, name, 1);
    else assign(mem, "demo", "web", i, "a");
    REQUIRE(eventually([&] { return watch.views() == views + 1; }));
    seen.push_back(std::chrono::steady_clock::now() - t0);
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen[3] < 30ms);  // the median: a 100 ms alternation gives ~50 ms
  CHECK(watch.wakeups() == 6);
  auto t0 = std::chrono::steady_clock::now();
  watch.stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 50ms);
}
