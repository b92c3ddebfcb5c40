// Resolving the node's identity for `stackd --cluster` and the first registration. The
// default address is the default route's source (netlink); the default name is the hostname.
#include "cmd/cluster_join.h"

#include <unistd.h>

#include <ctime>

#include "cluster/etcd_store.h"
#include "cluster/node_agent.h"
#include "common/daemon_config.h"
#include "net/netlink.h"

namespace stack::cmd {

namespace {

Result<std::string> node_name(const ClusterFlags& flags) {
  if (!flags.node_name.empty()) return flags.node_name;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return fail_errno("gethostname");
  if (auto ok = check_node_name(host); !ok)
    return fail("the hostname cannot be the node's name (" + ok.error().message +
                "): give --node-name");
  return std::string(host);
}

Result<std::string> advertise(const ClusterFlags& flags) {
  if (!flags.advertise.empty()) return flags.advertise;
  auto nl = net::make_libnl_netlink();
  if (!nl) return fail(nl.error().wrap("find this node's address"));
  auto src = (*nl)->default_route_source();
  if (!src) return fail(src.error().wrap("find this node's address"));
  if (!*src)
    return fail("find this node's address: there is no IPv4 default route to take it from; "
                "give --advertise ADDR");
  return (*src)->str();
}

// Short deadlines: a keepalive (every TTL/3) must be answered well within the TTL, and while
// etcd is away the API's node queries should say so in seconds, not hang.
Result<std::shared_ptr<cluster::Store>> make_store(const ClusterFlags& flags) {
  cluster::EtcdOptions o;
  o.endpoints = flags.urls;
  o.ca_file = flags.ca;
  o.cert_file = flags.cert;
  o.key_file = flags.key;
  o.timeout = std::chrono::milliseconds(3000);
  o.attempt_timeout = std::chrono::milliseconds(1000);
  auto store = cluster::EtcdStore::open(o);
  if (!store) return fail(store.error());
  return std::shared_ptr<cluster::Store>(std::move(*store));
}

}  // namespace

Result<std::unique_ptr<cluster::NodeAgent>> join_cluster(const ClusterFlags& flags,
                                                         const std::filesystem::path& state_dir) {
  auto name = node_name(flags);
  if (!name) return fail(name.error());
  auto address = advertise(flags);
  if (!address) return fail(address.error());
  auto id = cluster::ensure_daemon_id((state_dir / "cluster-daemon-id").string());
  if (!id) return fail(id.error());
  auto store = make_store(flags);
  if (!store) return fail(store.error().wrap("connect to etcd"));
  cluster::AgentOptions options;
  auto capacity = cluster::observe_capacity();
  options.record = {*name,
                    *address,
                    {},
                    capacity.cpus,
                    capacity.memory_bytes,
                    STACK_VERSION,
                    cluster::iso_utc(std::time(nullptr)),
                    *id};
  auto agent = std::make_unique<cluster::NodeAgent>(std::move(*store), std::move(options));
  if (auto joined = agent->join(); !joined) return fail(joined.error());
  return agent;
}

}  // namespace stack::cmd
