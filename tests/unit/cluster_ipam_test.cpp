// ClusterIpam (src/cluster/ipam.h) on a MemoryStore: subnets agreed cluster-wide, addresses by
// create-if-absent, owners kept apart under concurrency, a retried write that already applied,
// release that never frees another's address. tests/integration/cluster_ipam_test.cpp runs the
// concurrency against real etcd members.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "cluster/ipam.h"
#include "cluster/memory_store.h"

using namespace stack;
using namespace stack::cluster;

namespace {

net::Cidr cidr(const char* text) { return *net::Cidr::parse(text); }
net::Ipv4 ip(const char* text) { return *net::Ipv4::parse(text); }

// A store whose transactions apply twice, as EtcdStore's retry does when a member applied a
// write but its answer was lost: the caller sees the second answer.
class TwiceStore final : public Store {
 public:
  explicit TwiceStore(Store& s) : s_(s) {}
  Result<RangeResult> range(const KeyRange& r) override { return s_.range(r); }
  Result<Revision> put(const std::string& k, const std::string& v, LeaseId l) override {
    return s_.put(k, v, l);
  }
  Result<std::int64_t> erase(const KeyRange& r) override { return s_.erase(r); }
  Result<TxnResult> txn(const std::vector<Compare>& c, const std::vector<TxnOp>& t,
                        const std::vector<TxnOp>& e) override {
    (void)s_.txn(c, t, e);
    return s_.txn(c, t, e);
  }
  Result<void> compact(Revision r) override { return s_.compact(r); }
  Result<Lease> grant(std::int64_t t) override { return s_.grant(t); }
  Result<std::int64_t> keepalive(LeaseId l) override { return s_.keepalive(l); }
  Result<void> revoke(LeaseId l) override { return s_.revoke(l); }
  Result<std::unique_ptr<EventStream>> watch_ranges(const std::vector<KeyRange>& r,
                                                    Revision f) override {
    return s_.watch_ranges(r, f);
  }
  Result<LeaderKey> campaign(const std::string& n, const std::string& v, LeaseId l,
                             std::chrono::milliseconds t) override {
    return s_.campaign(n, v, l, t);
  }
  Result<void> proclaim(const LeaderKey& l, const std::string& v) override {
    return s_.proclaim(l, v);
  }
  Result<KeyValue> leader(const std::string& n) override { return s_.leader(n); }
  Result<void> resign(const LeaderKey& l) override { return s_.resign(l); }
  Result<std::unique_ptr<EventStream>> observe(const std::string& n) override {
    return s_.observe(n);
  }

 private:
  Store& s_;
};

}  // namespace

TEST_CASE("cluster ipam the first subnet recorded is the cluster's") {
  MemoryStore s;
  ClusterIpam a(s), b(s);
  auto first = a.ensure_subnet("web", cidr("10.90.1.0/24"));
  REQUIRE(first);
  CHECK(first->gateway == ip("10.90.1.1"));
  auto same = b.ensure_subnet("web", cidr("10.90.1.0/24"));
  REQUIRE(same);
  CHECK(*same == *first);
  auto other = b.ensure_subnet("web", cidr("10.90.2.0/24"));
  REQUIRE_FALSE(other);
  CHECK(other.error().message ==
        "network web: subnet 10.90.2.0/24 gateway 10.90.2.1 differs from the cluster's "
        "10.90.1.0/24 gateway 10.90.1.1");
  CHECK(b.subnet("web")->subnet == cidr("10.90.1.0/24"));
  CHECK_FALSE(a.ensure_subnet("tiny", cidr("10.90.3.0/31")));
  CHECK_FALSE(a.ensure_subnet("gw", cidr("10.90.4.0/24"), ip("10.90.5.1")));
  auto none = a.subnet("absent");
  REQUIRE_FALSE(none);
  CHECK(none.error().message == "network absent: no subnet recorded in the cluster");
}

TEST_CASE("cluster ipam allocates distinct addresses and the same one again to its owner") {
  MemoryStore s;
  ClusterIpam ipam(s);
  REQUIRE(ipam.ensure_subnet("n", cidr("10.90.1.0/29")));  // 5 usable hosts
  std::set<net::Ipv4> got;
  for (int i = 0; i < 5; ++i) {
    auto a = ipam.allocate("n", "node-a/c" + std::to_string(i));
    REQUIRE_MESSAGE(a.has_value(), (a ? "" : a.error().message));
    CHECK(*a != ip("10.90.1.0"));
    CHECK(*a != ip("10.90.1.1"));  // gateway
    CHECK(*a != ip("10.90.1.7"));  // broadcast
    got.insert(*a);
  }
  CHECK(got.size() == 5);
  CHECK(ipam.allocate("n", "node-a/c3") == *ipam.allocate("n", "node-a/c3"));
  auto full = ipam.allocate("n", "node-b/x");
  REQUIRE_FALSE(full);
  CHECK(full.error().message ==
        "allocate an address on n for node-b/x: no free address in 10.90.1.0/29");
  REQUIRE(ipam.release("n", "node-a/c0"));
  CHECK(ipam.allocate("n", "node-b/x"));
  CHECK(ipam.allocations("n")->size() == 5);
  auto nonet = ipam.allocate("nowhere", "x");
  REQUIRE_FALSE(nonet);
  CHECK(nonet.error().message.find("no subnet recorded") != std::string::npos);
}

TEST_CASE("cluster ipam static addresses") {
  MemoryStore s;
  ClusterIpam ipam(s);
  REQUIRE(ipam.ensure_subnet("n", cidr("10.90.1.0/24")));
  CHECK(ipam.allocate("n", "a", ip("10.90.1.50")) == ip("10.90.1.50"));
  auto taken = ipam.allocate("n", "b", ip("10.90.1.50"));
  REQUIRE_FALSE(taken);
  CHECK(taken.error().message ==
        "allocate an address on n for b: 10.90.1.50 is held by another container");
  CHECK_FALSE(ipam.allocate("n", "b", ip("10.90.2.5")));
  CHECK_FALSE(ipam.allocate("n", "b", ip("10.90.1.1")));    // the gateway
  CHECK_FALSE(ipam.allocate("n", "b", ip("10.90.1.255")));  // broadcast
  CHECK(ipam.allocations("n")->size() == 1);
}

TEST_CASE("cluster ipam a write applied twice still gives its owner one address") {
  MemoryStore s;
  TwiceStore twice(s);
  ClusterIpam ipam(twice);
  REQUIRE(ipam.ensure_subnet("n", cidr("10.90.1.0/24")));
  auto a = ipam.allocate("n", "node-a/web-1");
  REQUIRE_MESSAGE(a.has_value(), (a ? "" : a.error().message));
  auto all = ipam.allocations("n");
  REQUIRE(all->size() == 1);
  CHECK(all->at(0).address == *a);
}

TEST_CASE("cluster ipam release never frees an address another owner holds") {
  MemoryStore s;
  ClusterIpam ipam(s);
  REQUIRE(ipam.ensure_subnet("n", cidr("10.90.1.0/24")));
  auto a = ipam.allocate("n", "old");
  REQUIRE(a);
  // The address was released and given to "new" by then (another node's doing).
  auto key = keys::ipam_addr("n", a->str());
  REQUIRE(s.txn({Compare::value_is(key, Compare::Op::Equal, "old")},
                {TxnOp::put(key, "new")}, {}));
  REQUIRE(ipam.release("n", "old"));
  auto all = ipam.allocations("n");
  REQUIRE(all->size() == 1);
  CHECK(all->at(0).owner == "new");
}

TEST_CASE("cluster ipam 200 concurrent allocations from 8 clients are distinct") {
  MemoryStore s;
  REQUIRE(ClusterIpam(s).ensure_subnet("n", cidr("10.90.0.0/24")));
  std::vector<std::vector<net::Ipv4>> got(8);
  std::vector<std::string> errors(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      ClusterIpam ipam(s);
      for (int i = 0; i < 25; ++i) {
        auto a = ipam.allocate("n", "node-" + std::to_string(t) + "/c" + std::to_string(i));
        if (!a) {
          errors[t] = a.error().message;
          return;
        }
        got[t].push_back(*a);
      }
    });
  for (auto& th : threads) th.join();
  std::set<net::Ipv4> all;
  for (int t = 0; t < 8; ++t) {
    CHECK_MESSAGE(errors[t].empty(), errors[t]);
    all.insert(got[t].begin(), got[t].end());
  }
  CHECK(all.size() == 200);
  CHECK(ClusterIpam(s).allocations("n")->size() == 200);
}

TEST_CASE("cluster ipam an address held under a lease goes with it, and moves to a new lease") {
  auto t = std::make_shared<std::atomic<std::int64_t>>(0);
  auto start = std::chrono::steady_clock::now();
  MemoryStore s([t, start] { return start + std::chrono::seconds(t->load()); });
  ClusterIpam ipam(s);
  REQUIRE(ipam.ensure_subnet("ov", cidr("10.90.0.0/24")));
  auto old_lease = s.grant(10);
  auto new_lease = s.grant(30);
  REQUIRE(old_lease);
  REQUIRE(new_lease);
  auto a = ipam.allocate("ov", "n1/a", std::nullopt, old_lease->id);
  auto b = ipam.allocate("ov", "n2/b", std::nullopt, old_lease->id);
  REQUIRE(a);
  REQUIRE(b);
  // n1 registered again: its address moves under its new lease, the same one.
  auto again = ipam.allocate("ov", "n1/a", std::nullopt, new_lease->id);
  REQUIRE(again);
  CHECK(*again == *a);
  *t += 11;
  s.expire_leases();
  auto left = ipam.allocations("ov");
  REQUIRE(left);
  REQUIRE(left->size() == 1);
  CHECK(left->at(0).owner == "n1/a");
  CHECK(left->at(0).address == *a);
}
