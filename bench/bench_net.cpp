// Network benchmarks, all inside a private namespace playing the host (removed at the end):
//   attach            one container namespace to a bridge through NetworkManager::attach: IPAM,
//                     veth born in the namespace, hairpin, address, up, default route
//   attach with ip    the same steps with `ip` commands (4 processes), the yardstick
//   netns + veth gone dropping the namespace (its veth goes with it) against `ip link del`
//   TCP throughput    iperf3 between two container namespaces over the bridge, against
//                     iperf3 over loopback in the host namespace (when iperf3 is installed)
// Run as root from the build directory: ./bench/bench_net [RUNS]   (default 50)
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/scope_guard.h"
#include "net/network.h"

using Clock = std::chrono::steady_clock;
using namespace stack;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Runs ARGV, stdout captured (stderr to /dev/null); returns the exit code.
int run(const std::vector<std::string>& argv, std::string* out = nullptr) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    int null = ::open("/dev/null", O_WRONLY);
    dup2(fds[1], 1);
    dup2(null, 2);
    execvp(a[0], a.data());
    _exit(127);
  }
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0)
    if (out) out->append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int sh(const std::string& cmd, std::string* out = nullptr) {
  return run({"/bin/sh", "-c", cmd}, out);
}

// A fresh, anonymous network namespace held by the returned fd (a thread unshares and exits).
UniqueFd new_netns() {
  UniqueFd fd;
  std::thread([&] {
    if (unshare(CLONE_NEWNET) == 0)
      fd.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  }).join();
  return fd;
}

bool have(const char* tool) { return sh(std::string("command -v ") + tool + " >/dev/null") == 0; }

double iperf_gbits(const std::string& server_ns, const std::string& client_ns,
                   const std::string& ip) {
  auto prefix = [](const std::string& ns) {
    return ns.empty() ? std::string() : "ip netns exec " + ns + " ";
  };
  pid_t server = fork();
  if (server == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl("/bin/sh", "sh", "-c", ("exec " + prefix(server_ns) + "iperf3 -s -1 -B " + ip).c_str(),
          nullptr);
    _exit(127);
  }
  // One client, once the server listens (its own /proc/PID/net/tcp shows its namespace's
  // sockets; 5201 is 0x1451, 0A is LISTEN). Retrying clients against a `-1` server used it up
  // with a failed attempt, and the next got nothing: the 0.0 Gbit/s once printed.
  auto listening = [&] {
    std::ifstream tcp("/proc/" + std::to_string(server) + "/net/tcp");
    for (std::string line; std::getline(tcp, line);)
      if (line.find(":1451 00000000:0000 0A") != std::string::npos) return true;
    return false;
  };
  for (int i = 0; i < 5000 && !listening(); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::string out;
  sh(prefix(client_ns) + "iperf3 -J -t 3 -c " + ip, &out);
  kill(server, SIGTERM);
  waitpid(server, nullptr, 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  auto bps = j.is_discarded()
                 ? nullptr
                 : j.value("/end/sum_received/bits_per_second"_json_pointer, nlohmann::json());
  if (!bps.is_number()) {
    std::fprintf(
        stderr, "bench_net: iperf3 to %s failed: %s\n", ip.c_str(),
        j.is_discarded() ? out.c_str() : j.value("error", std::string("no result")).c_str());
    return 0;
  }
  return bps.get<double>() / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 50;
  if (geteuid() != 0) {
    std::fprintf(stderr, "bench_net: run as root\n");
    return 2;
  }
  const std::string tag = "stk-bench-" + std::to_string(getpid());
  const std::string host = tag + "-host";
  if (sh("ip netns add " + host) != 0) return 1;
  std::vector<std::string> named = {host};
  ScopeGuard cleanup([&] {
    for (auto it = named.rbegin(); it != named.rend(); ++it)
      sh("ip netns del " + *it + " 2>/dev/null");
  });
  UniqueFd saved(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  UniqueFd host_fd(::open(("/run/netns/" + host).c_str(), O_RDONLY | O_CLOEXEC));
  if (setns(host_fd.get(), CLONE_NEWNET) != 0) return 1;
  sh("ip link set lo up");

  auto nl = net::make_libnl_netlink().value();
  auto nft = net::make_libnftables().value();
  net::Firewall fw(*nft, *nl);
  net::MemoryAddressStore store;
  net::StaticPeers peers;
  net::NetworkManager mgr(*nl, fw, store, peers, {});
  net::NetworkSpec spec;
  spec.project = "bench";
  spec.name = "default";
  spec.subnet = net::Cidr::parse("10.99.0.0/16").value();
  auto info = mgr.ensure_network(spec);
  if (!info) {
    std::fprintf(stderr, "bench_net: %s\n", info.error().message.c_str());
    return 1;
  }

  // 1. attach through the library.
  std::vector<double> lib;
  for (int i = 0; i <= runs; i++) {
    auto ns = new_netns();
    auto name = "bench-c" + std::to_string(i);
    auto t0 = Clock::now();
    auto eps = mgr.attach(name, ns.get(), 1, {{"bench_default"}});
    double t = ms_since(t0);
    if (!eps) {
      std::fprintf(stderr, "bench_net: %s\n", eps.error().message.c_str());
      return 1;
    }
    if (i > 0) lib.push_back(t);  // the first one warms caches
    (void)mgr.detach(name);
  }  // each namespace (and its veth) goes when its fd closes

  // 2. the same with ip commands, into named namespaces made beforehand.
  std::vector<double> tool;
  std::vector<double> del_veth;
  for (int i = 0; i <= runs; i++) {
    auto ns = tag + "-ip" + std::to_string(i);
    sh("ip netns add " + ns);
    named.push_back(ns);
    auto veth = "stkbench" + std::to_string(i);
    auto addr = "10.99.200." + std::to_string(i + 2) + "/16";
    auto t0 = Clock::now();
    int rc = sh("ip link add " + veth + " mtu 1500 master " + info->bridge +
                " up type veth peer name eth0 netns " + ns);
    rc |= sh("ip link set " + veth + " type bridge_slave hairpin on");
    rc |= sh("ip -n " + ns + " addr add " + addr + " dev eth0");
    rc |= sh("ip -n " + ns + " link set eth0 up");
    rc |= sh("ip -n " + ns + " route add default via " + info->addressing.gateway.str());
    double t = ms_since(t0);
    if (rc != 0) {
      std::fprintf(stderr, "bench_net: ip commands failed\n");
      return 1;
    }
    if (i > 0) tool.push_back(t);
    if (i > 0 && i <= 10) {  // deleting a veth explicitly, what the library never does
      t0 = Clock::now();
      (void)nl->delete_link(veth);
      del_veth.push_back(ms_since(t0));
    }
  }
  std::vector<double> drop_ns;
  for (int i = 0; i < std::min(runs, 10); i++) {
    auto ns = new_netns();
    (void)mgr.attach("bench-drop", ns.get(), 1, {{"bench_default"}});
    (void)mgr.detach("bench-drop");
    auto t0 = Clock::now();
    ns.reset();
    drop_ns.push_back(ms_since(t0));
  }

  std::printf("attach one container to a bridge (median of %d):\n", runs);
  std::printf("  stack (libnl, veth born in the netns)   %7.3f ms\n", median(lib));
  std::printf("  ip commands (5 processes)               %7.3f ms  (%.0fx)\n", median(tool),
              median(tool) / std::max(median(lib), 1e-6));
  std::printf("teardown of one attachment (median of %zu):\n", drop_ns.size());
  std::printf("  drop the container's netns              %7.3f ms\n", median(drop_ns));
  std::printf("  delete the veth explicitly              %7.3f ms\n", median(del_veth));

  // 3. throughput.
  if (!have("iperf3")) {
    std::printf("TCP throughput: iperf3 not installed, skipped\n");
  } else {
    std::string a = tag + "-a", b = tag + "-b";
    sh("ip netns add " + a);
    named.push_back(a);
    sh("ip netns add " + b);
    named.push_back(b);
    UniqueFd fa(::open(("/run/netns/" + a).c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd fb(::open(("/run/netns/" + b).c_str(), O_RDONLY | O_CLOEXEC));
    auto ea = mgr.attach(a, fa.get(), 1, {{"bench_default"}});
    auto eb = mgr.attach(b, fb.get(), 1, {{"bench_default"}});
    if (ea && eb) {
      double bridge = iperf_gbits(a, b, ea->front().address.address.str());
      double loop = iperf_gbits("", "", "127.0.0.1");
      std::printf("TCP throughput, iperf3 -t 3:\n");
      std::printf("  container to container over the bridge  %6.1f Gbit/s\n", bridge);
      std::printf("  host loopback                           %6.1f Gbit/s  (bridge = %.0f%%)\n",
                  loop, loop > 0 ? 100 * bridge / loop : 0);
    }
    (void)mgr.detach(a);
    (void)mgr.detach(b);
  }
  (void)mgr.remove_network("bench_default");
  if (setns(saved.get(), CLONE_NEWNET) != 0) return 1;
  return 0;
}
