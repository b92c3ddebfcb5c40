// MemoryStore (src/cluster/memory_store.h): the store conformance suite that also runs against
// a real etcd (tests/integration/cluster_etcd_test.cpp), leases on a clock the test moves, and
// what only the in-process store offers (stats, streams outliving the store).
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "cluster/memory_store.h"
#include "support/store_conformance.h"

using namespace stack;
using namespace stack::cluster;
using namespace std::chrono_literals;

namespace {

// A clock that moves only when the test says so (atomic: campaigns read it on other threads).
struct ManualClock {
  std::shared_ptr<std::atomic<std::int64_t>> offset_ns =
      std::make_shared<std::atomic<std::int64_t>>(0);
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  MemoryStore::Clock fn() const {
    return [o = offset_ns, s = start] { return s + std::chrono::nanoseconds(o->load()); };
  }
  void advance(std::chrono::seconds d) const {
    *offset_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }
};

class MemoryHarness final : public test::StoreHarness {
 public:
  MemoryHarness() : store_(clock_.fn()) {}
  Store& store() override { return store_; }
  Store& other() override { return store_; }
  void let_expire(LeaseId, std::int64_t ttl, const std::string&) override {
    clock_.advance(std::chrono::seconds(ttl + 1));
    store_.expire_leases();
  }
  std::string prefix(const std::string& scenario) override { return "/t/" + scenario + "/"; }
  ManualClock clock_;
  MemoryStore store_;
};

}  // namespace

STACK_STORE_CONFORMANCE(std::make_unique<MemoryHarness>(), "memory")

TEST_CASE("memory store lease lives while kept alive and expires by its clock") {
  ManualClock clock;
  MemoryStore s(clock.fn());
  auto l = s.grant(10);
  REQUIRE(l);
  REQUIRE(s.put("/stack/nodes/n1", "up", l->id));
  clock.advance(9s);
  REQUIRE(s.keepalive(l->id));
  clock.advance(9s);
  CHECK(s.range(KeyRange::exact("/stack/nodes/n1"))->kvs.size() == 1);
  clock.advance(2s);
  CHECK(s.range(KeyRange::exact("/stack/nodes/n1"))->kvs.empty());
}

TEST_CASE("memory store lease expiry of several keys is one revision") {
  ManualClock clock;
  MemoryStore s(clock.fn());
  auto l = s.grant(5);
  REQUIRE(l);
  REQUIRE(s.put("/a", "1", l->id));
  REQUIRE(s.put("/b", "1", l->id));
  auto w = s.watch(KeyRange::with_prefix("/"), 0);
  REQUIRE(w);
  clock.advance(6s);
  s.expire_leases();
  auto ev = (*w)->next(0ms);
  REQUIRE(ev);
  REQUIRE(ev->size() == 2);
  CHECK((*ev)[0].kv.mod_revision == (*ev)[1].kv.mod_revision);
}

TEST_CASE("memory store a waiting campaign wins when the leader lease expires") {
  ManualClock clock;
  MemoryStore s(clock.fn());
  auto l1 = s.grant(5);
  auto l2 = s.grant(60);
  REQUIRE(s.campaign("/e", "a", l1->id, 1000ms));
  std::thread expire([&] {
    // The campaign below is already waiting or will find the lease gone: either way it wins.
    clock.advance(6s);
    s.expire_leases();
  });
  auto b = s.campaign("/e", "b", l2->id, 5000ms);
  expire.join();
  REQUIRE(b);
  CHECK(s.leader("/e")->value == "b");
}

TEST_CASE("memory store a stream outlives its store and then fails") {
  std::unique_ptr<EventStream> w;
  {
    MemoryStore s;
    w = std::move(*s.watch(KeyRange::with_prefix("/"), 0));
  }
  CHECK_FALSE(w->next(10ms));
}

TEST_CASE("memory store counts keys and bytes written and events delivered") {
  MemoryStore s;
  auto w = s.watch(KeyRange::with_prefix("/x/"), 0);
  REQUIRE(s.put("/x/a", "12345"));
  REQUIRE(s.txn({}, {TxnOp::put("/x/b", "1"), TxnOp::put("/y", "22")}, {}));
  REQUIRE((*w)->next(0ms));
  auto st = s.stats();
  CHECK(st.keys_put == 3);
  CHECK(st.bytes_put == (4 + 5) + (4 + 1) + (2 + 2));
  CHECK(st.events_delivered == 2);
}

TEST_CASE("memory store refuses a put on an unknown lease and an empty key") {
  MemoryStore s;
  auto r = s.put("/k", "v", 12345);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("lease 3039 not found") != std::string::npos);
  CHECK_FALSE(s.put("", "v"));
  CHECK(s.range(KeyRange::with_prefix(""))->kvs.empty());
}
