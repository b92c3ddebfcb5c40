// EtcdStore against real etcd members (tests/support/etcd_fixture.h): the same conformance
// suite as MemoryStore's, TLS with client certificates (and the refusals a wrong certificate
// gets), failover past a dead endpoint, and three members losing their leader.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <thread>

#include "cluster/etcd_store.h"
#include "support/etcd_fixture.h"
#include "support/fixtures.h"
#include "support/store_conformance.h"

using namespace stack;
using namespace stack::cluster;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<EtcdStore> open_store(const std::vector<std::string>& endpoints,
                                      const test::TestPki* pki = nullptr) {
  EtcdOptions o;
  o.endpoints = endpoints;
  if (pki) {
    o.ca_file = pki->ca;
    o.cert_file = pki->client_cert;
    o.key_file = pki->client_key;
  }
  auto s = EtcdStore::open(o);
  REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().message));
  return std::move(*s);
}

class EtcdHarness final : public test::StoreHarness {
 public:
  explicit EtcdHarness(std::unique_ptr<test::EtcdCluster> c)
      : cluster_(std::move(c)),
        a_(open_store(cluster_->endpoints())),
        b_(open_store(cluster_->endpoints())) {}
  Store& store() override { return *a_; }
  Store& other() override { return *b_; }
  void let_expire(LeaseId, std::int64_t ttl, const std::string& key) override {
    // Real time: etcd expires the lease by its own clock, up to a second or so late.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(ttl + 10);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = a_->range(KeyRange::exact(key));
      REQUIRE(r);
      if (r->kvs.empty()) return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL("lease did not expire: " << key);
  }
  std::string prefix(const std::string& scenario) override { return "/t/" + scenario + "/"; }

 private:
  std::unique_ptr<test::EtcdCluster> cluster_;
  std::unique_ptr<EtcdStore> a_, b_;
};

std::unique_ptr<test::EtcdCluster> single_or_skip(bool tls = false) {
  if (auto why = test::etcd_missing(); !why.empty()) {
    test::report_skip(why);
    return nullptr;
  }
  auto c = test::EtcdCluster::single(tls);
  REQUIRE_MESSAGE(c->healthy(), c->log(0));
  return c;
}

std::unique_ptr<EtcdHarness> etcd_harness() {
  auto c = single_or_skip();
  if (!c) return nullptr;
  return std::make_unique<EtcdHarness>(std::move(c));
}

}  // namespace

STACK_STORE_CONFORMANCE(etcd_harness(), "etcd")

TEST_CASE("etcd store over TLS with a client certificate") {
  auto c = single_or_skip(true);
  if (!c) return;
  const auto& pki = c->pki();
  auto s = open_store(c->endpoints(), &pki);
  REQUIRE(s->put("/tls/a", "1"));
  auto w = s->watch(KeyRange::with_prefix("/tls/"), 0);
  REQUIRE(w);
  REQUIRE(s->put("/tls/b", "2"));
  auto ev = test::conformance::drain(**w, 1);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kv.key == "/tls/b");

  // No client certificate: the member refuses the handshake.
  EtcdOptions no_cert;
  no_cert.endpoints = c->endpoints();
  no_cert.ca_file = pki.ca;
  no_cert.timeout = 2000ms;
  auto anon = EtcdStore::open(no_cert);
  REQUIRE(anon);
  auto refused = (*anon)->range(KeyRange::exact("/tls/a"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find(c->endpoints()[0]) != std::string::npos);

  // A client that trusts another CA refuses the member.
  EtcdOptions other = no_cert;
  other.ca_file = pki.other_ca;
  other.cert_file = pki.client_cert;
  other.key_file = pki.client_key;
  auto distrust = EtcdStore::open(other);
  REQUIRE(distrust);
  auto bad = (*distrust)->range(KeyRange::exact("/tls/a"));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("certificate verify failed") != std::string::npos);

  // Files that are not there are named.
  EtcdOptions missing = other;
  missing.ca_file = "/nonexistent/ca.pem";
  auto m = EtcdStore::open(missing);
  REQUIRE_FALSE(m);
  CHECK(m.error().message.find("/nonexistent/ca.pem") != std::string::npos);
}

TEST_CASE("etcd store fails over past an endpoint that does not answer") {
  auto c = single_or_skip();
  if (!c) return;
  // A loopback port nobody listens on (this test's own: bound, then closed).
  auto dead = "http://127.0.0.1:" + std::to_string([] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }());
  auto s = open_store({dead, c->endpoints()[0]});
  REQUIRE(s->put("/fo/a", "1"));
  CHECK(s->range(KeyRange::exact("/fo/a"))->kvs.at(0).value == "1");
  auto w = s->watch(KeyRange::exact("/fo/a"), 1);
  REQUIRE(w);
  CHECK(test::conformance::drain(**w, 1).size() == 1);

  EtcdOptions only_dead;
  only_dead.endpoints = {dead};
  only_dead.timeout = 1000ms;
  auto none = std::move(*EtcdStore::open(only_dead));
  auto r = none->range(KeyRange::exact("/fo/a"));
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find(dead) != std::string::npos);
}

TEST_CASE("etcd store bad endpoints are refused with the reason") {
  for (const char* bad : {"127.0.0.1:2379", "http://127.0.0.1", "ftp://x:1", "http://h:12a"}) {
    EtcdOptions o;
    o.endpoints = {bad};
    auto s = EtcdStore::open(o);
    REQUIRE_FALSE(s);
    CHECK(s.error().message.find(bad) != std::string::npos);
  }
}

TEST_CASE("etcd three members lose their leader and keep every write") {
  STACK_REQUIRE_ROOT();
  if (auto why = test::etcd_missing(); !why.empty()) {
    test::report_skip(why);
    return;
  }
  auto c = test::EtcdCluster::three();
  REQUIRE_MESSAGE(c->healthy(), c->log(0) << c->log(1) << c->log(2));
  auto s = open_store(c->endpoints());
  auto w = s->watch(KeyRange::with_prefix("/ha/"), 0);
  REQUIRE(w);
  for (int i = 0; i < 50; ++i) REQUIRE(s->put("/ha/" + std::to_string(i), "before"));

  int lead = -1;
  for (int tries = 0; tries < 50 && lead < 0; ++tries) {
    lead = c->leader();
    if (lead < 0) std::this_thread::sleep_for(100ms);
  }
  REQUIRE(lead >= 0);
  c->kill(lead);

  // Writes go on (a new leader within the store's timeout, failover past the dead member).
  for (int i = 50; i < 100; ++i) {
    auto r = s->put("/ha/" + std::to_string(i), "after");
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  }
  auto all = s->range(KeyRange::with_prefix("/ha/"));
  REQUIRE(all);
  CHECK(all->kvs.size() == 100);
  // The watch moved to a survivor and lost nothing either.
  auto ev = test::conformance::drain(**w, 100, 20000ms);
  std::set<std::string> seen;
  for (const auto& e : ev) seen.insert(e.kv.key);
  CHECK(seen.size() == 100);
  CHECK(ev.size() == 100);
}

TEST_CASE("etcd a watch on a member cut off without a word moves to another member") {
  // The member's host vanishes (no FIN, no RST: its namespace drops every packet): the idle
  // watch must not wait on it forever. TCP keepalive ends the connection; the watch resumes
  // on a survivor and the next write reaches it.
  STACK_REQUIRE_ROOT();
  if (auto why = test::etcd_missing(); !why.empty()) {
    test::report_skip(why);
    return;
  }
  auto c = test::EtcdCluster::three();
  REQUIRE_MESSAGE(c->healthy(), c->log(0) << c->log(1) << c->log(2));
  auto watcher = open_store(c->endpoints());  // member 0 first: the watch's connection
  auto w = watcher->watch(KeyRange::with_prefix("/cut/"), 0);
  REQUIRE(w);
  REQUIRE(watcher->put("/cut/before", "1"));
  REQUIRE(test::conformance::drain(**w, 1, 5000ms).size() == 1);

  const std::string ns = c->members()[0].netns;
  REQUIRE_FALSE(ns.empty());
  auto nft = [&](const std::string& script) {
    return test::run({"/usr/sbin/ip", "netns", "exec", ns, "/usr/sbin/nft", script}).code;
  };
  REQUIRE(nft("add table inet stack_test_cut") == 0);
  REQUIRE(nft("add chain inet stack_test_cut in { type filter hook input priority -300; "
              "policy drop; }") == 0);
  REQUIRE(nft("add chain inet stack_test_cut out { type filter hook output priority -300; "
              "policy drop; }") == 0);
  auto writer = open_store({c->endpoints()[1], c->endpoints()[2]});
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(writer->put("/cut/after", "2"));
  // The lost connection is said once (an error from next(), on which the cluster's watchers
  // read again); the same stream then resumes on a survivor.
  std::vector<Event> ev;
  int errors = 0;
  while (ev.empty() && std::chrono::steady_clock::now() - t0 < 40s) {
    auto r = (*w)->next(500ms);
    if (!r) errors++;
    else ev.insert(ev.end(), r->begin(), r->end());
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - t0);
  MESSAGE("a watch on a silent member moved and delivered after " << took.count() << " ms ("
          << errors << " errors said)");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kv.key == "/cut/after");
  (void)nft("delete table inet stack_test_cut");  // the namespace goes with the cluster anyway
}

TEST_CASE("etcd store gone and back: calls fail within their budget, then work again") {
  auto c = single_or_skip();
  if (!c) return;
  EtcdOptions o;
  o.endpoints = c->endpoints();
  o.timeout = 1500ms;
  auto s = std::move(*EtcdStore::open(o));
  REQUIRE(s->put("/back/a", "1"));
  auto w = s->watch(KeyRange::with_prefix("/back/"), 0);
  REQUIRE(w);

  c->kill(0);
  auto t0 = std::chrono::steady_clock::now();
  auto down = s->put("/back/b", "2");
  CHECK_FALSE(down);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  auto stream_down = (*w)->next(500ms);
  CHECK_FALSE(stream_down);  // the member is gone: said, not hidden

  REQUIRE_MESSAGE(c->restart(0), c->log(0));
  auto r = s->range(KeyRange::exact("/back/a"));
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  CHECK(r->kvs.at(0).value == "1");
  REQUIRE(s->put("/back/c", "3"));
  // The same watch reconnects and resumes: the write made after the restart arrives.
  auto ev = test::conformance::drain(**w, 1, 10000ms);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kv.key == "/back/c");
}
