// Simulated hosts for the cluster tests (issue 18): a fabric namespace holding the underlay
// bridge, joined to the three-member etcd's bridge (tests/support/etcd_fixture), and one
// namespace per host on it, each running its own daemon (--root/--run-root of a StackEnv).
// Everything is removed on destruction, pass or fail. The one fixture of the overlay, mesh and
// hosts tests (tests/cluster/ only); a host that is only a client runs no daemon.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "e2e/stack_env.h"
#include "support/etcd_fixture.h"

namespace stack::test {

// Namespaces stkch<i>-<pid> on the bridge fab0 of namespace stkcf-<pid>, at .21, .22... of the
// etcd members' /24; the fabric reaches the members through a veth on ETCD's bridge.
struct Hosts {
  std::string fabric, uplink;
  std::vector<std::string> ns, addr;
  Hosts(const EtcdCluster& etcd, int n);
  ~Hosts();
  Hosts(const Hosts&) = delete;
  Hosts& operator=(const Hosts&) = delete;
};

// (Re)starts ENV's daemon in namespace NETNS, joined to ETCD as NODE advertising ADDRESS; waits
// until its node is ready.
void cluster_daemon(StackEnv& env, const std::string& netns, const EtcdCluster& etcd,
                    const std::string& node, const std::string& address);

// etcdctl get --prefix PREFIX (every member's endpoint): key -> value.
std::map<std::string, std::string> etcd_prefix(const EtcdCluster& etcd, const std::string& prefix);

// sh -c CMD in NETNS: its stdout.
std::string sh_in(const std::string& netns, const std::string& cmd);

// `stack exec ARGV` until its success is OK or TIMEOUT passes.
RunResult exec_until(StackEnv& env, const std::vector<std::string>& argv, bool ok,
                     std::chrono::milliseconds timeout);

long ms_since(std::chrono::steady_clock::time_point t0);

// Polls PRED every 100 ms until it holds (true) or TIMEOUT passes (false).
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

}  // namespace stack::test
