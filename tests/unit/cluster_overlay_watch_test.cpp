// OverlayWatch (src/cluster/overlay_watch.h) against MemoryStore: every watched network's
// endpoints on one stream, no wake-up while idle, a change on any network seen at once, a
// network added later listed and watched, the stream rebuilt on each change of the set with
// no event missed or repeated, a prompt stop.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "cluster/memory_store.h"
#include "cluster/overlay_watch.h"

using namespace stack;
using namespace stack::cluster;
using namespace std::chrono_literals;

namespace {

OverlayEndpoint ep(const std::string& node, const std::string& container, int n) {
  char ip[32], mac[32];
  std::snprintf(ip, sizeof ip, "10.90.0.%d", 2 + n % 250);
  std::snprintf(mac, sizeof mac, "02:00:00:00:00:%02x", 2 + n % 250);
  return {node, container, *net::Ipv4::parse(ip), *net::Mac::parse(mac),
          *net::Ipv4::parse("192.0.2.1")};
}

// What the callbacks saw, by network: listings, then "+container" / "-container" per change.
struct Seen {
  std::mutex mu;
  std::map<std::string, int> listings;
  std::map<std::string, std::vector<std::string>> changes;

  OverlayWatch::Callbacks callbacks() {
    return {[this](const std::string& n, const std::vector<OverlayEndpoint>&) {
              std::lock_guard lk(mu);
              listings[n]++;
            },
            [this](const std::string& n, const std::vector<EndpointChange>& cs) {
              std::lock_guard lk(mu);
              for (const auto& c : cs)
                changes[n].push_back(
                    (c.kind == EndpointChange::Kind::Added ? "+" : "-") + c.endpoint.container);
            }};
  }
  int listed(const std::string& n) {
    std::lock_guard lk(mu);
    return listings[n];
  }
  std::vector<std::string> of(const std::string& n) {
    std::lock_guard lk(mu);
    return changes[n];
  }
};

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 5s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return f();
}

}  // namespace

TEST_CASE("cluster overlay watch: one stream for every network, idle without wake-ups, changes at once") {
  MemoryStore mem;
  Seen seen;
  OverlayWatch watch(mem, seen.callbacks(), 20ms);
  watch.start();
  // No network: nothing to wait on, and no wake-up either.
  std::this_thread::sleep_for(100ms);
  CHECK(watch.wakeups() == 0);
  CHECK(watch.streams() == 0);

  REQUIRE(put_endpoint(mem, "ov-a", ep("b", "a-old", 1), 0));
  watch.watch("ov-a");
  watch.watch("ov-b");
  watch.watch("ov-c");
  REQUIRE(eventually([&] {
    return seen.listed("ov-a") == 1 && seen.listed("ov-b") == 1 && seen.listed("ov-c") == 1;
  }));
  REQUIRE(eventually([&] { return watch.streams() >= 1; }));
  // Idle: no wake-up at all (one watch per network in 20-100 ms slices woke it all the time).
  std::this_thread::sleep_for(300ms);
  auto idle = watch.wakeups();
  std::this_thread::sleep_for(300ms);
  CHECK(watch.wakeups() == idle);
  auto streams = watch.streams();

  // A change on any of the networks is seen at once, one wake-up each.
  std::vector<std::chrono::steady_clock::duration> took;
  const std::vector<std::string> nets = {"ov-a", "ov-b", "ov-c"};
  for (int i = 0; i < 9; i++) {
    const auto& n = nets[i % 3];
    auto before = seen.of(n).size();
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(put_endpoint(mem, n, ep("b", "c" + std::to_string(i), i), 0));
    REQUIRE(eventually([&] { return seen.of(n).size() == before + 1; }));
    took.push_back(std::chrono::steady_clock::now() - t0);
  }
  std::sort(took.begin(), took.end());
  CHECK(took[4] < 20ms);
  CHECK(watch.wakeups() == idle + 9);
  CHECK(watch.streams() == streams);  // the same stream throughout
  CHECK(seen.of("ov-a") == std::vector<std::string>{"+c0", "+c3", "+c6"});
  CHECK(seen.listed("ov-a") == 1);  // listed once, then changes only

  // Another network's endpoints wake nothing.
  auto woken = watch.wakeups();
  REQUIRE(put_endpoint(mem, "ov-unwatched", ep("b", "x", 1), 0));
  REQUIRE(put_endpoint(mem, "ov-a", ep("b", "after", 1), 0));
  REQUIRE(eventually([&] { return seen.of("ov-a").size() == 4; }));
  CHECK(watch.wakeups() == woken + 1);

  // A network added later is listed (with what it had) and watched on the same wait.
  REQUIRE(put_endpoint(mem, "ov-d", ep("b", "d-old", 1), 0));
  watch.watch("ov-d");
  REQUIRE(eventually([&] { return seen.listed("ov-d") == 1; }));
  REQUIRE(put_endpoint(mem, "ov-d", ep("b", "d-new", 2), 0));
  REQUIRE(eventually([&] { return seen.of("ov-d").size() == 1; }));
  CHECK(seen.of("ov-d") == std::vector<std::string>{"+d-new"});
  // An unwatched network is no longer reported.
  watch.unwatch("ov-b");
  REQUIRE(eventually([&] { return watch.streams() > streams + 1; }));
  REQUIRE(erase_endpoint(mem, "ov-b", "b", "c1"));
  REQUIRE(erase_endpoint(mem, "ov-c", "b", "c2"));
  REQUIRE(eventually([&] { return seen.of("ov-c").size() == 4; }));
  CHECK(seen.of("ov-b").size() == 3);
  CHECK(seen.of("ov-c").back() == "-c2");

  auto t0 = std::chrono::steady_clock::now();
  watch.stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 50ms);
}

TEST_CASE("cluster overlay watch: rebuilt while a network changes, it misses and repeats nothing") {
  MemoryStore mem;
  Seen seen;
  OverlayWatch watch(mem, seen.callbacks(), 20ms);
  watch.start();
  watch.watch("ov-busy");
  REQUIRE(eventually([&] { return seen.listed("ov-busy") == 1; }));
  // Each put races a rebuild (another network added or removed), so some land between the
  // old stream's end and the new one's start, or are replayed to the new stream.
  std::vector<std::string> want;
  for (int i = 0; i < 60; i++) {
    if (i % 2 == 0) watch.watch("ov-other");
    else watch.unwatch("ov-other");
    REQUIRE(put_endpoint(mem, "ov-busy", ep("b", "e" + std::to_string(i), i), 0));
    want.push_back("+e" + std::to_string(i));
    if (i % 3 == 0) std::this_thread::sleep_for(1ms);
  }
  REQUIRE(eventually([&] { return seen.of("ov-busy").size() >= want.size(); }));
  std::this_thread::sleep_for(50ms);
  CHECK(seen.of("ov-busy") == want);
  CHECK(seen.listed("ov-busy") == 1);  // never listed again: the stream resumed
  CHECK(watch.streams() > 2);
  watch.stop();
}

TEST_CASE("cluster overlay watch: a network made again here is listed again") {
  MemoryStore mem;
  Seen seen;
  OverlayWatch watch(mem, seen.callbacks(), 20ms);
  watch.start();
  REQUIRE(put_endpoint(mem, "ov", ep("b", "x", 1), 0));
  watch.watch("ov");
  REQUIRE(eventually([&] { return seen.listed("ov") == 1; }));
  watch.unwatch("ov");
  watch.watch("ov");
  REQUIRE(eventually([&] { return seen.listed("ov") == 2; }));
  watch.stop();
}
