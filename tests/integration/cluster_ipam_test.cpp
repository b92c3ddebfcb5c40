// Cluster IPAM against a real etcd member: 200 allocations at once from three clients, as
// threads each with its own EtcdStore, as threads sharing one, and as three processes
// (tests/support/cluster_ipam_client.cpp), give 200 distinct addresses.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <sstream>
#include <thread>

#include "cluster/etcd_store.h"
#include "cluster/ipam.h"
#include "support/etcd_fixture.h"
#include "support/fixtures.h"

using namespace stack;
using namespace stack::cluster;

namespace {

std::unique_ptr<EtcdStore> open_store(const std::string& endpoint) {
  EtcdOptions o;
  o.endpoints = {endpoint};
  auto s = EtcdStore::open(o);
  REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().message));
  return std::move(*s);
}

}  // namespace

TEST_CASE("cluster ipam 200 allocations from three clients on etcd are distinct") {
  if (auto why = test::etcd_missing(); !why.empty()) {
    test::report_skip(why);
    return;
  }
  auto c = test::EtcdCluster::single();
  REQUIRE_MESSAGE(c->healthy(), c->log(0));
  const auto ep = c->endpoints()[0];
  auto admin = open_store(ep);
  ClusterIpam setup(*admin);
  REQUIRE(setup.ensure_subnet("threads", *net::Cidr::parse("10.90.0.0/24")));
  REQUIRE(setup.ensure_subnet("procs", *net::Cidr::parse("10.90.1.0/24")));

  SUBCASE("threads") {
    const int counts[3] = {67, 67, 66};
    std::vector<std::vector<net::Ipv4>> got(3);
    std::vector<std::string> errors(3);
    std::vector<std::thread> threads;
    int total_conflicts = 0;
    std::mutex mu;
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&, t] {
        auto store = open_store(ep);
        ClusterIpam ipam(*store);
        for (int i = 0; i < counts[t]; ++i) {
          auto a = ipam.allocate("threads", "node-" + std::to_string(t) + "/c" + std::to_string(i));
          if (!a) {
            errors[t] = a.error().message;
            return;
          }
          got[t].push_back(*a);
        }
        std::lock_guard lock(mu);
        total_conflicts += ipam.conflicts();
      });
    for (auto& th : threads) th.join();
    std::set<net::Ipv4> all;
    for (int t = 0; t < 3; ++t) {
      CHECK_MESSAGE(errors[t].empty(), errors[t]);
      all.insert(got[t].begin(), got[t].end());
    }
    CHECK(all.size() == 200);
    CHECK(setup.allocations("threads")->size() == 200);
    MESSAGE("conflicts retried: " << total_conflicts);
  }

  SUBCASE("threads sharing one store") {
    // EtcdStore is thread-safe: its connection pool is shared by every caller.
    std::vector<std::vector<net::Ipv4>> got(4);
    std::vector<std::string> errors(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        ClusterIpam ipam(*admin);
        for (int i = 0; i < 50; ++i) {
          auto a = ipam.allocate("threads", "shared-" + std::to_string(t) + "/c" + std::to_string(i));
          if (!a) {
            errors[t] = a.error().message;
            return;
          }
          got[t].push_back(*a);
        }
      });
    for (auto& th : threads) th.join();
    std::set<net::Ipv4> all;
    for (int t = 0; t < 4; ++t) {
      CHECK_MESSAGE(errors[t].empty(), errors[t]);
      all.insert(got[t].begin(), got[t].end());
    }
    CHECK(all.size() == 200);
  }

  SUBCASE("processes") {
    struct Child {
      pid_t pid;
      FILE* out;
    };
    std::vector<Child> children;
    const char* counts[3] = {"67", "67", "66"};
    for (int p = 0; p < 3; ++p) {
      int fds[2];
      REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
      std::string prefix = "proc-" + std::to_string(p) + "/c";
      pid_t pid = ::fork();
      if (pid == 0) {
        ::dup2(fds[1], 1);
        ::close(fds[0]);
        ::close(fds[1]);
        ::execl(STACK_CLUSTER_IPAM_CLIENT, "cluster_ipam_client", ep.c_str(), "procs",
                prefix.c_str(), counts[p], nullptr);
        ::_exit(127);
      }
      ::close(fds[1]);
      children.push_back({pid, ::fdopen(fds[0], "r")});
    }
    std::set<std::string> all;
    size_t lines = 0;
    for (auto& ch : children) {
      char buf[64];
      while (std::fgets(buf, sizeof buf, ch.out)) {
        all.insert(buf);
        ++lines;
      }
      std::fclose(ch.out);
      int status = 0;
      ::waitpid(ch.pid, &status, 0);
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
    CHECK(lines == 200);
    CHECK(all.size() == 200);
    CHECK(setup.allocations("procs")->size() == 200);
  }
}
