// One conformance suite for src/cluster/store.h, run against MemoryStore (unit) and against a
// real etcd (integration), so the fake cannot drift from etcd. Each scenario works under its
// own key prefix and only relative revisions, so it runs on a shared etcd member too.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "cluster/store.h"

namespace stack::test {

// What differs between the stores: how time passes for leases.
class StoreHarness {
 public:
  virtual ~StoreHarness() = default;
  virtual cluster::Store& store() = 0;
  // A second client on the same data (another EtcdStore, or the same MemoryStore).
  virtual cluster::Store& other() = 0;
  // Lets LEASE (TTL seconds) run out without keepalive; returns once KEY (on it) is gone.
  virtual void let_expire(cluster::LeaseId lease, std::int64_t ttl, const std::string& key) = 0;
  // A unique prefix for one scenario.
  virtual std::string prefix(const std::string& scenario) = 0;
};

namespace conformance {

using namespace std::chrono_literals;
using cluster::Compare;
using cluster::Event;
using cluster::KeyRange;
using cluster::TxnOp;

inline std::vector<Event> drain(cluster::EventStream& s, size_t want,
                                std::chrono::milliseconds within = 5000ms) {
  std::vector<Event> all;
  auto deadline = std::chrono::steady_clock::now() + within;
  while (all.size() < want && std::chrono::steady_clock::now() < deadline) {
    auto r = s.next(100ms);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    all.insert(all.end(), r->begin(), r->end());
  }
  return all;
}

inline void kv_and_revisions(StoreHarness& h) {
  auto& s = h.store();
  auto p = h.prefix("kv");
  auto r0 = s.range(KeyRange::exact(p + "a"));
  REQUIRE(r0);
  CHECK(r0->kvs.empty());
  auto rev1 = s.put(p + "a", std::string("one\0two", 7));
  REQUIRE(rev1);
  CHECK(*rev1 > r0->revision);
  auto rev2 = s.put(p + "a", "again");
  REQUIRE(rev2);
  CHECK(*rev2 == *rev1 + 1);
  auto got = s.range(KeyRange::exact(p + "a"));
  REQUIRE(got);
  REQUIRE(got->kvs.size() == 1);
  CHECK(got->kvs[0].value == "again");
  CHECK(got->kvs[0].create_revision == *rev1);
  CHECK(got->kvs[0].mod_revision == *rev2);
  CHECK(got->kvs[0].version == 2);
  CHECK(got->revision >= *rev2);

  // Bytes of any value, NUL included, survive.
  REQUIRE(s.put(p + "b", std::string("\0\xff\n", 3)));
  REQUIRE(s.put(p + "c/x", "x"));
  REQUIRE(s.put(p + "c/y", "y"));
  auto pre = s.range(KeyRange::with_prefix(p));
  REQUIRE(pre);
  REQUIRE(pre->kvs.size() == 4);
  CHECK(pre->kvs[0].key == p + "a");  // sorted by key
  CHECK(pre->kvs[1].value == std::string("\0\xff\n", 3));
  CHECK(pre->kvs[3].key == p + "c/y");

  // One erase of several keys is one revision; an erase of nothing is none.
  auto before = s.range(KeyRange::exact(p + "none"));
  REQUIRE(before);
  auto n = s.erase(KeyRange::with_prefix(p + "c/"));
  REQUIRE(n);
  CHECK(*n == 2);
  auto after = s.range(KeyRange::exact(p + "none"));
  REQUIRE(after);
  CHECK(after->revision == before->revision + 1);
  auto zero = s.erase(KeyRange::exact(p + "none"));
  REQUIRE(zero);
  CHECK(*zero == 0);
  auto still = s.range(KeyRange::exact(p + "none"));
  REQUIRE(still);
  CHECK(still->revision == after->revision);

  // Deleted and created again: a new create_revision and version 1.
  REQUIRE(s.erase(KeyRange::exact(p + "a")));
  auto rev3 = s.put(p + "a", "new");
  REQUIRE(rev3);
  auto again = s.range(KeyRange::exact(p + "a"));
  REQUIRE(again);
  CHECK(again->kvs.at(0).create_revision == *rev3);
  CHECK(again->kvs.at(0).version == 1);
}

inline void txn_compares(StoreHarness& h) {
  auto& s = h.store();
  auto p = h.prefix("txn");
  // Create-if-absent: the first wins, the second sees the owner in its else branch.
  auto first = s.txn({Compare::absent(p + "k")}, {TxnOp::put(p + "k", "A")},
                     {TxnOp::get(KeyRange::exact(p + "k"))});
  REQUIRE(first);
  CHECK(first->succeeded);
  auto second = s.txn({Compare::absent(p + "k")}, {TxnOp::put(p + "k", "B")},
                      {TxnOp::get(KeyRange::exact(p + "k"))});
  REQUIRE(second);
  CHECK_FALSE(second->succeeded);
  REQUIRE(second->results.size() == 1);
  REQUIRE(second->results[0].kvs.size() == 1);
  CHECK(second->results[0].kvs[0].value == "A");
  // A txn that wrote nothing leaves the revision alone.
  CHECK(second->revision == first->revision);

  using Op = Compare::Op;
  auto kv = s.range(KeyRange::exact(p + "k"))->kvs.at(0);
  auto holds = [&](Compare c) {
    auto r = s.txn({std::move(c)}, {}, {});
    REQUIRE(r);
    return r->succeeded;
  };
  CHECK(holds(Compare::version(p + "k", Op::Equal, 1)));
  CHECK(holds(Compare::version(p + "k", Op::Greater, 0)));
  CHECK_FALSE(holds(Compare::version(p + "k", Op::Less, 1)));
  CHECK(holds(Compare::version(p + "k", Op::NotEqual, 2)));
  CHECK(holds(Compare::mod_revision(p + "k", Op::Equal, kv.mod_revision)));
  CHECK_FALSE(holds(Compare::mod_revision(p + "k", Op::Greater, kv.mod_revision)));
  CHECK(holds(Compare::create_revision(p + "k", Op::Less, kv.create_revision + 1)));
  CHECK(holds(Compare::value_is(p + "k", Op::Equal, "A")));
  CHECK(holds(Compare::value_is(p + "k", Op::Greater, "0")));  // bytewise
  CHECK_FALSE(holds(Compare::value_is(p + "k", Op::NotEqual, "A")));
  // A missing key: 0 on version and revisions; a value compare fails whatever the operator.
  CHECK(holds(Compare::version(p + "missing", Op::Equal, 0)));
  CHECK(holds(Compare::mod_revision(p + "missing", Op::Less, 1)));
  CHECK_FALSE(holds(Compare::value_is(p + "missing", Op::Equal, "")));
  CHECK_FALSE(holds(Compare::value_is(p + "missing", Op::NotEqual, "x")));
  // All compares must hold.
  auto both = s.txn({Compare::version(p + "k", Op::Equal, 1), Compare::absent(p + "k")},
                    {TxnOp::put(p + "then", "1")}, {TxnOp::put(p + "else", "1")});
  REQUIRE(both);
  CHECK_FALSE(both->succeeded);
  CHECK(s.range(KeyRange::exact(p + "else"))->kvs.size() == 1);
  CHECK(s.range(KeyRange::exact(p + "then"))->kvs.empty());

  // Several writes in one txn share one revision; a get after a put in the same txn sees it.
  auto multi = s.txn({}, {TxnOp::put(p + "m1", "1"), TxnOp::put(p + "m2", "2"),
                          TxnOp::erase(KeyRange::exact(p + "k")),
                          TxnOp::get(KeyRange::with_prefix(p + "m"))},
                     {});
  REQUIRE(multi);
  CHECK(multi->succeeded);
  REQUIRE(multi->results.size() == 4);
  CHECK(multi->results[2].deleted == 1);
  CHECK(multi->results[3].kvs.size() == 2);
  auto m = s.range(KeyRange::with_prefix(p + "m"));
  REQUIRE(m);
  CHECK(m->kvs.at(0).mod_revision == m->kvs.at(1).mod_revision);
  CHECK(m->kvs.at(0).mod_revision == multi->revision);

  // The same key twice in one txn is refused and nothing is written.
  auto dup = s.txn({}, {TxnOp::put(p + "d", "1"), TxnOp::put(p + "d", "2")}, {});
  CHECK_FALSE(dup);
  CHECK(s.range(KeyRange::exact(p + "d"))->kvs.empty());
}

inline void watch_history(StoreHarness& h) {
  auto& s = h.store();
  auto p = h.prefix("watch");
  auto r1 = s.put(p + "a", "1");
  REQUIRE(r1);
  REQUIRE(s.put(p + "b", "2"));
  REQUIRE(s.put("/elsewhere" + p, "not watched"));
  REQUIRE(s.erase(KeyRange::exact(p + "a")));
  // From a past revision: the history first, in order, then what comes later.
  auto w = s.watch(KeyRange::with_prefix(p), *r1);
  REQUIRE(w);
  auto past = drain(**w, 3);
  REQUIRE(past.size() == 3);
  CHECK(past[0].type == Event::Type::Put);
  CHECK(past[0].kv.key == p + "a");
  CHECK(past[0].kv.mod_revision == *r1);
  CHECK(past[1].kv.key == p + "b");
  CHECK(past[2].type == Event::Type::Delete);
  CHECK(past[2].kv.key == p + "a");
  CHECK(past[2].kv.mod_revision > past[1].kv.mod_revision);
  auto live_rev = s.put(p + "c", "3");
  REQUIRE(live_rev);
  auto live = drain(**w, 1);
  REQUIRE(live.size() == 1);
  CHECK(live[0].kv.key == p + "c");
  CHECK(live[0].kv.value == "3");
  CHECK(live[0].kv.mod_revision == *live_rev);
  CHECK(live[0].kv.version == 1);

  // From now on (0): no history. A second client's writes reach it.
  auto now = s.watch(KeyRange::exact(p + "b"), 0);
  REQUIRE(now);
  auto quiet = (*now)->next(200ms);
  REQUIRE(quiet);
  CHECK(quiet->empty());
  REQUIRE(h.other().put(p + "b", "changed"));
  auto seen = drain(**now, 1);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].kv.value == "changed");
  CHECK(seen[0].kv.version == 2);
  (*now)->cancel();

  // From a future revision: nothing before it.
  auto cur = s.range(KeyRange::exact(p + "f"));
  REQUIRE(cur);
  auto future = s.watch(KeyRange::exact(p + "f"), cur->revision + 3);
  REQUIRE(future);
  for (const char* v : {"1", "2", "3"}) REQUIRE(s.put(p + "f", v));
  auto later = drain(**future, 1);
  REQUIRE(later.size() == 1);
  CHECK(later[0].kv.value == "3");
  CHECK((*future)->next(200ms)->empty());
}

inline void lease_expiry(StoreHarness& h) {
  auto& s = h.store();
  auto p = h.prefix("lease");
  auto l = s.grant(1);
  REQUIRE(l);
  CHECK(l->ttl_seconds == 2);  // etcd's minimum
  REQUIRE(s.put(p + "node", "up", l->id));
  REQUIRE(s.put(p + "ep/1", "x", l->id));
  REQUIRE(s.put(p + "kept", "y"));
  auto got = s.range(KeyRange::exact(p + "node"));
  REQUIRE(got);
  CHECK(got->kvs.at(0).lease == l->id);
  auto ttl = s.keepalive(l->id);
  REQUIRE(ttl);
  CHECK(*ttl == 2);

  auto w = s.watch(KeyRange::with_prefix(p), 0);
  REQUIRE(w);
  h.let_expire(l->id, l->ttl_seconds, p + "node");
  auto events = drain(**w, 2);
  REQUIRE(events.size() == 2);
  for (const auto& e : events) CHECK(e.type == Event::Type::Delete);
  auto left = s.range(KeyRange::with_prefix(p));
  REQUIRE(left);
  REQUIRE(left->kvs.size() == 1);
  CHECK(left->kvs[0].key == p + "kept");
  CHECK_FALSE(s.keepalive(l->id));
  CHECK_FALSE(s.put(p + "late", "z", l->id));

  // Revoke deletes at once.
  auto l2 = s.grant(60);
  REQUIRE(l2);
  CHECK(l2->ttl_seconds == 60);
  REQUIRE(s.put(p + "r", "1", l2->id));
  REQUIRE(s.revoke(l2->id));
  CHECK(s.range(KeyRange::exact(p + "r"))->kvs.empty());
  CHECK_FALSE(s.revoke(l2->id));
}

inline void election_order(StoreHarness& h) {
  auto& s = h.store();
  auto& o = h.other();
  auto name = h.prefix("election") + "sched";
  auto l1 = s.grant(60);
  auto l2 = o.grant(60);
  REQUIRE(l1);
  REQUIRE(l2);
  // "No leader" is an answer, given at once (EtcdStore once took it for an unavailable member
  // and retried for its whole budget).
  auto asked = std::chrono::steady_clock::now();
  CHECK_FALSE(s.leader(name));
  CHECK(std::chrono::steady_clock::now() - asked < 2s);
  auto a = s.campaign(name, "node-a", l1->id, 5000ms);
  REQUIRE(a);
  CHECK(a->key.rfind(name + "/", 0) == 0);
  auto lead = o.leader(name);
  REQUIRE(lead);
  CHECK(lead->value == "node-a");

  auto obs = o.observe(name);
  REQUIRE(obs);
  auto first = drain(**obs, 1);
  REQUIRE(first.size() == 1);
  CHECK(first[0].kv.value == "node-a");

  // The second candidate waits (and gives up after its timeout, withdrawing).
  auto timed_out = o.campaign(name, "node-b", l2->id, 300ms);
  CHECK_FALSE(timed_out);
  auto only = s.range(KeyRange::with_prefix(name + "/"));
  REQUIRE(only);
  CHECK(only->kvs.size() == 1);

  std::atomic<bool> b_leads = false;
  cluster::LeaderKey b_key;
  std::thread b([&] {
    auto r = o.campaign(name, "node-b", l2->id, 10000ms);
    if (r) {
      b_key = *r;
      b_leads = true;
    }
  });
  // Wait until b's candidacy is in the store, then check a still leads.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (s.range(KeyRange::with_prefix(name + "/"))->kvs.size() < 2 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  CHECK_FALSE(b_leads.load());
  CHECK(s.leader(name)->value == "node-a");

  REQUIRE(s.proclaim(*a, "node-a v2"));
  auto proclaimed = drain(**obs, 1);
  REQUIRE(proclaimed.size() == 1);
  CHECK(proclaimed[0].kv.value == "node-a v2");

  REQUIRE(s.resign(*a));
  b.join();
  CHECK(b_leads.load());
  CHECK(s.leader(name)->value == "node-b");
  auto next = drain(**obs, 1);
  REQUIRE(next.size() == 1);
  CHECK(next[0].kv.value == "node-b");
  CHECK_FALSE(s.proclaim(*a, "stale"));  // a resigned: no longer leader

  // The leader's lease runs out: nobody leads.
  REQUIRE(o.revoke(l2->id));
  CHECK_FALSE(s.leader(name));
  REQUIRE(s.revoke(l1->id));
}

inline void compaction(StoreHarness& h) {
  auto& s = h.store();
  auto p = h.prefix("compact");
  auto r1 = s.put(p + "a", "1");
  REQUIRE(r1);
  auto r2 = s.put(p + "a", "2");
  REQUIRE(r2);
  REQUIRE(s.compact(*r2));
  auto old = s.watch(KeyRange::exact(p + "a"), *r1);
  bool refused = !old;
  if (old) refused = !(*old)->next(2000ms);  // etcd says so on the stream
  CHECK(refused);
  auto from_r2 = s.watch(KeyRange::exact(p + "a"), *r2);
  REQUIRE(from_r2);
  auto ev = drain(**from_r2, 1);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kv.value == "2");
}

// One stream over several ranges: the history of each from a revision, a live write to either
// at once, nothing of a range not asked for; cancel() from another thread ends a wait that has
// no timeout.
inline void watch_several(StoreHarness& h) {
  auto& s = h.store();
  auto p = h.prefix("several");
  auto r1 = s.put(p + "a/1", "1");
  REQUIRE(r1);
  REQUIRE(s.put(p + "b/1", "2"));
  REQUIRE(s.put(p + "c/1", "not watched"));
  auto w = s.watch_ranges({KeyRange::with_prefix(p + "a/"), KeyRange::with_prefix(p + "b/")},
                          *r1);
  REQUIRE(w);
  auto past = drain(**w, 2);
  REQUIRE(past.size() == 2);
  // Each range in revision order; etcd's watchers (one per range) do not order them together.
  std::set<std::string> keys = {past[0].kv.key, past[1].kv.key};
  CHECK(keys == std::set<std::string>{p + "a/1", p + "b/1"});
  for (const char* key : {"b/2", "c/2", "a/2"}) {
    REQUIRE(h.other().put(p + key, "live"));
    if (std::string(key) == "c/2") continue;
    auto t0 = std::chrono::steady_clock::now();
    auto live = (*w)->next(5000ms);
    REQUIRE(live);
    CHECK(std::chrono::steady_clock::now() - t0 < 2000ms);
    REQUIRE(live->size() == 1);
    CHECK(live->at(0).kv.key == p + key);  // c/2, between them, never shows
  }

  std::atomic<bool> returned{false};
  std::thread reader([&] {
    auto r = (*w)->next(cluster::kNoTimeout);
    CHECK_FALSE(r);  // cancelled, not an empty answer after a day
    returned = true;
  });
  std::this_thread::sleep_for(100ms);  // let it wait
  auto t0 = std::chrono::steady_clock::now();
  (*w)->cancel();
  reader.join();
  CHECK(returned);
  CHECK(std::chrono::steady_clock::now() - t0 < 1000ms);
}

}  // namespace conformance

// Every scenario, for a TEST_CASE per store.
#define STACK_STORE_CONFORMANCE(HARNESS_EXPR, SUITE)                                      \
  TEST_CASE(SUITE " store keys and revisions") {                                          \
    auto h = HARNESS_EXPR;                                                                \
    if (!h) return;                                                                       \
    ::stack::test::conformance::kv_and_revisions(*h);                                     \
  }                                                                                       \
  TEST_CASE(SUITE " store txn compares") {                                                \
    auto h = HARNESS_EXPR;                                                                \
    if (!h) return;                                                                       \
    ::stack::test::conformance::txn_compares(*h);                                         \
  }                                                                                       \
  TEST_CASE(SUITE " store watch from a revision with history") {                          \
    auto h = HARNESS_EXPR;                                                                \
    if (!h) return;                                                                       \
    ::stack::test::conformance::watch_history(*h);                                        \
  }                                                                                       \
  TEST_CASE(SUITE " store lease expiry deletes its keys") {                               \
    auto h = HARNESS_EXPR;                                                                \
    if (!h) return;                                                                       \
    ::stack::test::conformance::lease_expiry(*h);                                         \
  }                                                                                       \
  TEST_CASE(SUITE " store election order") {                                              \
    auto h = HARNESS_EXPR;                                                                \
    if (!h) return;                                                                       \
    ::stack::test::conformance::election_order(*h);                                       \
  }                                                                                       \
  TEST_CASE(SUITE " store one watch over several ranges, cancelled from another thread") {  \
    auto h = HARNESS_EXPR;                                                                \
    if (!h) return;                                                                       \
    ::stack::test::conformance::watch_several(*h);                                        \
  }                                                                                       \
  TEST_CASE(SUITE " store compaction") {                                                  \
    auto h = HARNESS_EXPR;                                                                \
    if (!h) return;                                                                       \
    ::stack::test::conformance::compaction(*h);                                           \
  }

}  // namespace stack::test
