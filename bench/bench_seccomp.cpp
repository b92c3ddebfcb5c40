// The seccomp compiler: the first compile in a process, a cold compile of the default profile
// (median of 50), a cache hit (median of 100,000, default and a full-size JSON profile), the
// program's instruction count, and what the filter adds to a syscall in a process that runs it
// (libseccomp's linear list and binary tree). Prints the figures; no root needed.
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/seccomp.h"
#include "engine/seccomp_profile.h"

namespace {

using stack::engine::SeccompSpec;
namespace seccomp = stack::engine::seccomp;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kDockerCaps = 0xa80425fbULL;

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

struct Stats {
  double median, p99, max;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[v.size() * 99 / 100], v.back()};
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_seccomp: %s\n", what.c_str());
  std::exit(1);
}

template <class T>
T must(stack::Result<T> r) {
  if (!r) die(r.error().message);
  return std::move(*r);
}

Stats cache_hits(const SeccompSpec& spec) {
  must(stack::engine::seccomp_program(spec));  // warm
  std::vector<double> us;
  for (int i = 0; i < 100000; ++i) {
    auto t0 = Clock::now();
    auto p = stack::engine::seccomp_program(spec);
    us.push_back(us_since(t0));
    if (!p || !*p) die("cache hit failed");
  }
  return stats(us);
}

// ns per call of syscall NR(A0) in a child that installed PROGRAM (none when null), the best
// of several runs.
double ns_per_call(const std::string* program, long nr, long a0) {
  int p[2];
  if (::pipe(p) != 0) die("pipe");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (program) {
      sock_fprog f{static_cast<unsigned short>(program->size() / sizeof(sock_filter)),
                   reinterpret_cast<sock_filter*>(const_cast<char*>(program->data()))};
      if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f) != 0) ::_exit(1);
    }
    // The fastest of 15 runs: on a shared machine, the run least disturbed by other work.
    constexpr int kCalls = 100000;
    double ns = 1e9;
    for (int run = 0; run < 15; ++run) {
      auto t0 = Clock::now();
      for (int i = 0; i < kCalls; ++i) ::syscall(nr, a0);
      ns = std::min(ns, us_since(t0) * 1000 / kCalls);
    }
    (void)!::write(p[1], &ns, sizeof ns);
    ::_exit(0);
  }
  double ns = -1;
  (void)!::read(p[0], &ns, sizeof ns);
  ::waitpid(pid, nullptr, 0);
  ::close(p[0]);
  ::close(p[1]);
  return ns;
}

}  // namespace

int main() {
  SeccompSpec spec{SeccompSpec::Mode::kDefault, "", kDockerCaps};
  auto t0 = Clock::now();
  auto first = must(stack::engine::seccomp_program(spec));
  double first_us = us_since(t0);

  auto host = must(seccomp::current_host());
  std::vector<double> cold;
  for (int i = 0; i < 50; ++i) {
    auto t = Clock::now();
    must(seccomp::compile(seccomp::default_profile(), kDockerCaps, host));
    cold.push_back(us_since(t));
  }
  Stats c = stats(cold);

  std::string json = seccomp::to_docker_json(seccomp::default_profile());
  std::vector<double> cold_json;
  for (int i = 0; i < 20; ++i) {
    auto t = Clock::now();
    auto profile = must(seccomp::parse_profile(json, "bench"));
    must(seccomp::compile(profile, kDockerCaps, host));
    cold_json.push_back(us_since(t));
  }

  Stats hit = cache_hits(spec);
  Stats hit_json = cache_hits(SeccompSpec{SeccompSpec::Mode::kProfile, json, kDockerCaps});

  auto insns = [](const std::string& p) { return p.size() / sizeof(sock_filter); };
  auto admin = must(seccomp::compile(seccomp::default_profile(),
                                     kDockerCaps | (uint64_t{1} << CAP_SYS_ADMIN), host));
  auto linear = must(seccomp::compile(seccomp::default_profile(), kDockerCaps, host, 1));

  std::printf("first program in the process:   %8.0f us (libseccomp set-up included)\n", first_us);
  std::printf("cold compile, default profile:  %8.0f us median, %.0f us max (50 runs)\n", c.median,
              c.max);
  std::printf("cold parse+compile, its JSON:   %8.0f us median (%zu bytes, 20 runs)\n",
              stats(cold_json).median, json.size());
  std::printf("cache hit, default:             %8.2f us median, %.2f us p99, %.1f us max\n",
              hit.median, hit.p99, hit.max);
  std::printf("cache hit, JSON profile:        %8.2f us median, %.2f us p99, %.1f us max\n",
              hit_json.median, hit_json.p99, hit_json.max);
  std::printf(
      "instructions: %zu (Docker's capabilities), %zu (+CAP_SYS_ADMIN), %zu (linear list)\n",
      insns(*first), insns(admin), insns(linear));

  struct Call {
    const char* name;
    long nr, a0;
  } calls[] = {
      {"getpid (the kernel's action cache)", SYS_getpid, 0},
      {"personality query (argument rule)", SYS_personality, 0xffffffffL},
      {"kexec_load (refused)", SYS_kexec_load, 0},
  };
  std::printf("ns per syscall (fastest run):        none    tree  linear\n");
  for (const auto& call : calls)
    std::printf("  %-34s %6.0f  %6.0f  %6.0f\n", call.name, ns_per_call(nullptr, call.nr, call.a0),
                ns_per_call(first.get(), call.nr, call.a0), ns_per_call(&linear, call.nr, call.a0));
  return 0;
}
