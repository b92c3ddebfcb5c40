// Firewall benchmark: how long one atomic replacement of an instance's tables takes (render +
// libnftables transaction) as containers grow, with and without their anti-spoofing entries;
// and the small transaction a container's start or exit makes instead.
// Runs in a private network namespace (unshared at start, gone with the process): the host's
// ruleset is never touched. Run as root: ./bench/bench_firewall [RUNS]   (default 50)
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "net/firewall.h"
#include "net/naming.h"

using Clock = std::chrono::steady_clock;
using namespace stack;
using namespace stack::net;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// CONTAINERS spread over 3 networks, one published port every 5 containers; with ENDPOINTS,
// each container's port in the anti-spoofing set.
FirewallModel model(int containers, bool endpoints) {
  FirewallModel m;
  m.table = "stack-bench000";
  for (uint32_t n = 0; n < 3; n++)
    m.networks.push_back({std::string("stk-bench00").append(std::to_string(n)),
                          Cidr{Ipv4{(10u << 24) | (89u << 16) | (n << 8)}, 24}, n == 2});
  for (int i = 0; i < containers; i++) {
    uint32_t net = static_cast<uint32_t>(i % 3);
    Ipv4 ip{(10u << 24) | (89u << 16) | (net << 8) | static_cast<uint32_t>(2 + i / 3)};
    if (endpoints)
      m.endpoints.push_back({veth_name("bench", std::string("c").append(std::to_string(i)), "n", 1),
                             container_mac(ip), ip});
    if (i % 5 == 0)
      m.ports.push_back({std::nullopt, static_cast<uint16_t>(20000 + i), 0, Proto::kTcp, ip, 80, 0});
  }
  return m;
}

struct Figures {
  double median = 0, p90 = 0;
};

Figures measure(Firewall& fw, const FirewallModel& m, int runs) {
  std::vector<double> t;
  for (int i = 0; i < runs; i++) {
    auto t0 = Clock::now();
    if (auto r = fw.apply(m); !r) {
      std::fprintf(stderr, "apply: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    t.push_back(ms_since(t0));
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[t.size() * 9 / 10]};
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 50;
  if (::unshare(CLONE_NEWNET) != 0) {
    std::perror("unshare(CLONE_NEWNET) (run as root)");
    return 1;
  }
  auto nft = make_libnftables();
  auto nl = make_libnl_netlink();
  if (!nft || !nl) {
    std::fprintf(stderr, "nftables or netlink unavailable\n");
    return 1;
  }
  Firewall fw(**nft, **nl);
  std::printf("replacing the instance's tables (render + one nft transaction), %d runs\n", runs);
  std::printf("%-12s %-24s %10s %10s %8s\n", "containers", "anti-spoofing entries", "median ms",
              "p90 ms", "bytes");
  for (int n : {1, 10, 50, 200})
    for (bool with : {false, true}) {
      auto m = model(n, with);
      auto f = measure(fw, m, runs);
      auto text = render_transaction(m).value();
      std::printf("%-12d %-24s %10.2f %10.2f %8zu\n", n, with ? "yes" : "no", f.median, f.p90,
                  text.size());
    }
  // What a container's start and exit do: its port into the sets and out again, beside N.
  std::printf("one container's port into and out of the sets (what a start and an exit do)\n");
  for (int n : {1, 50, 200}) {
    auto m = model(n, true);
    if (!fw.apply(m)) return 1;
    std::vector<FirewallEndpoint> one = {
        {"stkbench00new", container_mac(Ipv4{(10u << 24) | (89u << 16) | 250}),
         Ipv4{(10u << 24) | (89u << 16) | 250}}};
    std::vector<double> in, out;
    for (int i = 0; i < runs; i++) {
      auto t0 = Clock::now();
      if (!fw.change_endpoints(m.table, one, {})) return 1;
      in.push_back(ms_since(t0));
      t0 = Clock::now();
      if (!fw.change_endpoints(m.table, {}, one)) return 1;
      out.push_back(ms_since(t0));
    }
    std::sort(in.begin(), in.end());
    std::sort(out.begin(), out.end());
    std::printf("  beside %-4d in %.2f ms, out %.2f ms (medians)\n", n, in[in.size() / 2],
                out[out.size() / 2]);
  }
  FirewallModel none;
  none.table = "stack-bench000";
  if (auto r = fw.apply(none); !r) return 1;
  return 0;
}
