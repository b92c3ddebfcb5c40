// ClusterOverlay: the store side (ClusterIpam, endpoint records) on the agent's query thread and
// on OverlayWatch's thread (one stream over every network's endpoints); the host side (FDB,
// neighbours, DNS) on the loop. Writes of this node's endpoints go through the agent's queue,
// in order, reading the node's lease when they run: a node that registered again (its old
// lease expired with its keys) writes them all again, told so by the agent.
#include "reconciler/cluster_overlay.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <functional>
#include <mutex>

#include "cluster/ipam.h"
#include "cluster/node_agent.h"
#include "cluster/overlay_watch.h"
#include "cluster/store_peers.h"
#include "common/log.h"
#include "net/naming.h"
#include "reconciler/async.h"
#include "reconciler/networking.h"
#include "reconciler/on_agent.h"

namespace stack::reconciler {


namespace {

std::string owner_of(const std::string& node, const std::string& container) {
  return node + "/" + container;
}

}  // namespace

struct ClusterOverlay::Shared {
  std::mutex mu;
  std::atomic<bool> stopping = false;  // also read by posted work, without the mutex
  // This node's endpoints: network -> container -> record, as last registered.
  std::map<std::string, std::map<std::string, cluster::OverlayEndpoint>> local;
  std::unique_ptr<cluster::OverlayWatch> watch;  // every watched network's endpoints
};

namespace {

// On the agent's query thread: EP (and its address) under the node's current lease. Without
// a lease nothing is written: every endpoint is written once the node has one (on_registered).
void publish(cluster::NodeAgent& agent, const std::string& network,
             const cluster::OverlayEndpoint& ep) {
  auto lease = agent.status().lease;
  if (lease == 0) return;
  cluster::ClusterIpam ipam(agent.store());
  auto log = log::get("cluster");
  if (auto r = ipam.allocate(network, owner_of(ep.node, ep.container), ep.ip, lease); !r)
    log->warn("keep the address of {} on {}: {}", ep.container, network, r.error().message);
  if (auto r = cluster::put_endpoint(agent.store(), network, ep, lease); !r)
    log->warn("{}", r.error().message);
}

void unpublish(cluster::NodeAgent& agent, const std::string& network, const std::string& node,
               const std::string& container) {
  auto log = log::get("cluster");
  if (auto r = cluster::erase_endpoint(agent.store(), network, node, container); !r)
    log->warn("{}", r.error().message);
  cluster::ClusterIpam ipam(agent.store());
  if (auto r = ipam.release(network, owner_of(node, container)); !r)
    log->warn("{}", r.error().message);
}

}  // namespace

ClusterOverlay::ClusterOverlay(asio::io_context& io, cluster::NodeAgent& agent,
                               Networking& networking)
    : io_(io), agent_(agent), networking_(networking), shared_(std::make_shared<Shared>()) {
  if (auto ip = net::Ipv4::parse(agent.address())) underlay_ = *ip;
  auto* io_p = &io_;
  // Posted work reaches this object only while it lives (the loop may outlive it).
  auto alive = std::weak_ptr<Shared>(shared_);
  auto post = [io_p, alive, this](std::function<void(ClusterOverlay&)> f) {
    asio::post(*io_p, [alive, f = std::move(f), this] {
      if (auto s = alive.lock(); s && !s->stopping) f(*this);
    });
  };
  cluster::OverlayWatch::Callbacks callbacks;
  callbacks.listed = [post](const std::string& n, const std::vector<cluster::OverlayEndpoint>& l) {
    post([n, l](ClusterOverlay& self) { self.program(n, l); });
  };
  callbacks.changed = [post](const std::string& n, const std::vector<cluster::EndpointChange>& c) {
    post([n, c](ClusterOverlay& self) { self.change(n, c); });
  };
  shared_->watch = std::make_unique<cluster::OverlayWatch>(agent.store(), std::move(callbacks));
  shared_->watch->start();
  // A new lease (the first, or after the old one expired with our keys): every endpoint of
  // this node written again under it, in the agent's order of writes. The listener may run
  // after this object is gone: it holds only the shared state and the agent.
  auto* agent_p = &agent_;
  agent_.on_registered([alive, agent_p](cluster::LeaseId) {
    agent_p->submit([alive, agent_p] {
      auto shared = alive.lock();
      if (!shared || shared->stopping) return;
      std::map<std::string, std::map<std::string, cluster::OverlayEndpoint>> local;
      {
        std::lock_guard g(shared->mu);
        local = shared->local;
      }
      for (const auto& [network, eps] : local)
        for (const auto& [container, ep] : eps) publish(*agent_p, network, ep);
    });
  });
}

ClusterOverlay::~ClusterOverlay() {
  agent_.on_registered(nullptr);
  shared_->stopping = true;
  shared_->watch->stop();
}

bool ClusterOverlay::is_cluster_network(const model::NetworkConfig& c) {
  return c.driver == "overlay" && !c.driver_opts.count("peers");
}

net::Cidr ClusterOverlay::default_subnet(const std::string& full_name) {
  auto h = net::name_hash({"cluster-overlay", full_name});
  // 10.128.0.0/9: 32768 /24s.
  std::uint32_t index = static_cast<std::uint32_t>(h % 32768);
  return net::Cidr{net::Ipv4{(10u << 24) | (128u << 16) | (index << 8)}, 24};
}

awaitable<Result<void>> ClusterOverlay::prepare(const model::NetworkConfig& config) {
  if (!is_cluster_network(config)) co_return Result<void>{};
  const std::string full = config.name;
  const std::string ctx = "network " + full;
  if (!underlay_)
    co_return fail(ctx + ": this node advertises no IPv4 address (--advertise) for the overlay");
  std::optional<net::Cidr> want;
  std::optional<net::Ipv4> gateway;
  for (const auto& p : config.ipam) {
    if (p.subnet.find(':') != std::string::npos || p.gateway.find(':') != std::string::npos)
      continue;
    if (!p.aux_addresses.empty())  // check_supported refuses them already: a file sent by hand
      co_return fail(ctx + ": aux_addresses on a cluster network are not supported (the "
                           "cluster's IPAM hands out any address of the subnet)");
    if (!p.subnet.empty()) {
      auto c = net::Cidr::parse(p.subnet);
      if (!c) co_return fail(c.error().wrap(ctx + ": subnet"));
      want = *c;
    }
    if (!p.gateway.empty()) {
      auto g = net::Ipv4::parse(p.gateway);
      if (!g) co_return fail(g.error().wrap(ctx + ": gateway"));
      gateway = *g;
    }
    break;
  }
  const net::Cidr proposal = want ? *want : default_subnet(full);
  auto* agent = &agent_;
  std::function<Result<cluster::ClusterSubnet>()> work =
      [agent, full, want, proposal, gateway]() -> Result<cluster::ClusterSubnet> {
    cluster::ClusterIpam ipam(agent->store());
    // Without a subnet of its own, a node takes the one the cluster has (whoever made it).
    if (!want)
      if (auto have = ipam.subnet(full)) return *have;
    return ipam.ensure_subnet(full, proposal, gateway);
  };
  auto got = co_await on_agent(agent_, std::move(work));
  if (!got) co_return fail(got.error().wrap(ctx + ": the cluster's subnet"));
  subnets_[full] = {got->subnet, got->gateway};
  co_return Result<void>{};
}

std::optional<ClusterOverlay::Subnet> ClusterOverlay::subnet(const std::string& full_name) const {
  auto it = subnets_.find(full_name);
  if (it == subnets_.end()) return std::nullopt;
  return it->second;
}

void ClusterOverlay::watch(const std::string& full_name) {
  if (!watched_.insert(full_name).second) return;
  shared_->watch->watch(full_name);
}

void ClusterOverlay::unwatch(const std::string& full_name) {
  if (!watched_.erase(full_name)) return;
  shared_->watch->unwatch(full_name);
  if (auto it = remote_.find(full_name); it != remote_.end()) {
    std::vector<std::string> keys;
    for (const auto& [key, ep] : it->second) keys.push_back(key);
    for (const auto& key : keys) remove_remote(full_name, key);
    remote_.erase(full_name);
  }
  all_.erase(full_name);
  log::get("net")->info("overlay network left this node network={}", full_name);
}

awaitable<Result<void>> ClusterOverlay::reserve(const RuntimeRecord& rt) {
  const std::string name = rt.spec.name;
  std::vector<std::pair<std::string, std::optional<net::Ipv4>>> wants;
  if (rt.network_mode == "bridge")
    for (const auto& j : rt.networks) {
      if (!is_cluster(j.network)) continue;
      std::optional<net::Ipv4> fixed;
      if (!j.ipv4_address.empty()) {
        auto ip = net::Ipv4::parse(j.ipv4_address);
        if (!ip) co_return fail(ip.error().wrap(name + ": ipv4_address"));
        fixed = *ip;
      }
      wants.emplace_back(j.network, fixed);
    }
  if (wants.empty()) co_return Result<void>{};
  auto* agent = &agent_;
  const std::string owner = owner_of(agent_.name(), name);
  std::function<Result<std::vector<net::Ipv4>>()> work =
      [agent, wants, owner]() -> Result<std::vector<net::Ipv4>> {
    auto status = agent->status();
    if (status.lease == 0)
      return fail("this node is not registered in the cluster" +
                  (status.error.empty() ? std::string() : ": " + status.error));
    cluster::ClusterIpam ipam(agent->store());
    std::vector<net::Ipv4> out;
    for (const auto& [network, fixed] : wants) {
      auto ip = ipam.allocate(network, owner, fixed, status.lease);
      if (!ip) {
        for (size_t i = 0; i < out.size(); i++) (void)ipam.release(wants[i].first, owner);
        return fail(ip.error());
      }
      out.push_back(*ip);
    }
    return out;
  };
  auto got = co_await on_agent(agent_, std::move(work));
  if (!got) co_return fail(got.error().wrap("address of " + name + " in the cluster"));
  for (size_t i = 0; i < wants.size(); i++) reserved_[name][wants[i].first] = (*got)[i];
  co_return Result<void>{};
}

std::optional<net::Ipv4> ClusterOverlay::reserved(const std::string& container,
                                                  const std::string& network) const {
  auto c = reserved_.find(container);
  if (c == reserved_.end()) return std::nullopt;
  auto n = c->second.find(network);
  if (n == c->second.end()) return std::nullopt;
  return n->second;
}

void ClusterOverlay::attached(const RuntimeRecord& rt, const std::vector<Attached>& eps) {
  if (eps.empty() || !underlay_) return;
  std::vector<std::pair<std::string, cluster::OverlayEndpoint>> regs;
  for (const auto& a : eps) {
    if (!is_cluster(a.network)) continue;
    cluster::OverlayEndpoint ep{agent_.name(), rt.spec.name, a.ip, a.mac, *underlay_};
    ep.service = rt.service;
    ep.project = rt.project;
    // Until its first probe: the routing mesh sends it nothing yet.
    if (!rt.health.argv.empty()) ep.health = "starting";
    for (const auto& j : rt.networks)
      if (j.network == a.network) ep.aliases = j.aliases;
    regs.emplace_back(a.network, std::move(ep));
  }
  if (regs.empty()) return;
  {
    std::lock_guard lk(shared_->mu);
    for (const auto& [network, ep] : regs) shared_->local[network][ep.container] = ep;
  }
  auto* agent = &agent_;
  agent_.submit([agent, regs] {
    for (const auto& [network, ep] : regs) publish(*agent, network, ep);
  });
}

void ClusterOverlay::gone(const std::string& container) {
  std::set<std::string> networks;
  if (auto it = reserved_.find(container); it != reserved_.end()) {
    for (const auto& [n, ip] : it->second) networks.insert(n);
    reserved_.erase(it);
  }
  {
    std::lock_guard lk(shared_->mu);
    for (auto& [n, eps] : shared_->local)
      if (eps.erase(container)) networks.insert(n);
  }
  if (networks.empty()) return;
  auto* agent = &agent_;
  std::string node = agent_.name();
  agent_.submit([agent, networks, node, container] {
    for (const auto& n : networks) unpublish(*agent, n, node, container);
  });
}

void ClusterOverlay::renamed(const std::string& from, const std::string& to) {
  if (auto node = reserved_.extract(from); !node.empty()) {
    node.key() = to;
    reserved_.insert(std::move(node));
  }
  std::vector<std::pair<std::string, cluster::OverlayEndpoint>> moved;
  {
    std::lock_guard lk(shared_->mu);
    for (auto& [n, eps] : shared_->local)
      if (auto node = eps.extract(from); !node.empty()) {
        node.mapped().container = to;
        moved.emplace_back(n, node.mapped());
        eps[to] = node.mapped();
      }
  }
  if (moved.empty()) return;
  auto* agent = &agent_;
  std::string self = agent_.name();
  agent_.submit([agent, moved, self, from] {
    for (const auto& [n, ep] : moved) {
      unpublish(*agent, n, self, from);
      publish(*agent, n, ep);
    }
  });
}

void ClusterOverlay::health(const std::string& container, const std::string& status) {
  std::vector<std::pair<std::string, cluster::OverlayEndpoint>> regs;
  {
    std::lock_guard lk(shared_->mu);
    for (auto& [n, eps] : shared_->local)
      if (auto it = eps.find(container); it != eps.end() && it->second.health != status) {
        it->second.health = status;
        regs.emplace_back(n, it->second);
      }
  }
  if (regs.empty()) return;
  auto* agent = &agent_;
  agent_.submit([agent, regs] {
    for (const auto& [network, ep] : regs) publish(*agent, network, ep);
  });
}

awaitable<Result<net::Ipv4>> ClusterOverlay::host_address(const std::string& network,
                                                          const net::Mac& mac) {
  if (!underlay_)
    co_return fail("network " + network + ": this node advertises no IPv4 address (--advertise)");
  {
    std::lock_guard lk(shared_->mu);
    auto n = shared_->local.find(network);
    if (n != shared_->local.end())
      if (auto it = n->second.find(kHostEndpoint); it != n->second.end() && it->second.mac == mac)
        co_return it->second.ip;
  }
  auto* agent = &agent_;
  const std::string owner = owner_of(agent_.name(), kHostEndpoint);
  std::function<Result<net::Ipv4>()> work = [agent, network, owner]() -> Result<net::Ipv4> {
    auto status = agent->status();
    if (status.lease == 0) return fail("this node is not registered in the cluster");
    cluster::ClusterIpam ipam(agent->store());
    return ipam.allocate(network, owner, std::nullopt, status.lease);
  };
  auto ip = co_await on_agent(agent_, std::move(work));
  if (!ip) co_return fail(ip.error().wrap("this node's address on " + network));
  cluster::OverlayEndpoint ep{agent_.name(), kHostEndpoint, *ip, mac, *underlay_};
  {
    std::lock_guard lk(shared_->mu);
    shared_->local[network][kHostEndpoint] = ep;
  }
  agent_.submit([agent, network, ep] { publish(*agent, network, ep); });
  co_return *ip;
}

void ClusterOverlay::release_host_address(const std::string& network) {
  {
    std::lock_guard lk(shared_->mu);
    auto n = shared_->local.find(network);
    if (n == shared_->local.end() || !n->second.erase(kHostEndpoint)) return;
  }
  auto* agent = &agent_;
  agent_.submit([agent, network, node = agent_.name()] {
    unpublish(*agent, network, node, kHostEndpoint);
  });
}

const std::map<std::string, cluster::OverlayEndpoint>& ClusterOverlay::endpoints(
    const std::string& network) const {
  static const std::map<std::string, cluster::OverlayEndpoint> none;
  auto it = all_.find(network);
  return it == all_.end() ? none : it->second;
}

namespace {
// Whether A and B are programmed alike (the health a record carries is the mesh's only).
bool same_wiring(cluster::OverlayEndpoint a, const cluster::OverlayEndpoint& b) {
  a.health = b.health;
  return a == b;
}
}  // namespace

void ClusterOverlay::program(const std::string& network,
                             const std::vector<cluster::OverlayEndpoint>& listing) {
  if (!watched_.count(network)) return;  // posted before the network left this node
  auto& all = all_[network];
  all.clear();
  for (const auto& ep : listing) all[owner_of(ep.node, ep.container)] = ep;
  auto& have = remote_[network];
  std::set<std::string> keep;
  for (const auto& ep : listing) {
    if (ep.node == agent_.name()) continue;
    auto key = owner_of(ep.node, ep.container);
    keep.insert(key);
    if (auto it = have.find(key); it != have.end() && same_wiring(*it->second, ep)) continue;
    add_remote(network, ep);
  }
  std::vector<std::string> stale;
  for (const auto& [key, ep] : have)
    if (!keep.count(key)) stale.push_back(key);
  for (const auto& key : stale) remove_remote(network, key);
  if (listener_) listener_(network);
}

void ClusterOverlay::change(const std::string& network,
                            const std::vector<cluster::EndpointChange>& changes) {
  if (!watched_.count(network)) return;  // posted before the network left this node
  auto& all = all_[network];
  for (const auto& c : changes) {
    auto key = owner_of(c.endpoint.node, c.endpoint.container);
    if (c.kind == cluster::EndpointChange::Kind::Removed) all.erase(key);
    else all[key] = c.endpoint;
    if (c.endpoint.node == agent_.name()) continue;
    if (c.kind == cluster::EndpointChange::Kind::Removed) {
      remove_remote(network, key);
      continue;
    }
    auto& have = remote_[network];
    if (auto it = have.find(key); it != have.end() && same_wiring(*it->second, c.endpoint)) {
      *it->second = c.endpoint;
      continue;
    }
    add_remote(network, c.endpoint);
  }
  if (listener_) listener_(network);
}

namespace {
Networking::RemoteEndpoint remote_of(const cluster::OverlayEndpoint& ep) {
  Networking::RemoteEndpoint r;
  r.key = owner_of(ep.node, ep.container);
  // A node's own address (host_address) has no name in the DNS.
  r.container = ep.container == ClusterOverlay::kHostEndpoint ? "" : ep.container;
  r.service = ep.service;
  r.aliases = ep.aliases;
  r.ip = ep.ip;
  r.mac = ep.mac;
  r.underlay = ep.underlay;
  return r;
}
}  // namespace

void ClusterOverlay::add_remote(const std::string& network, const cluster::OverlayEndpoint& ep) {
  auto& have = remote_[network];
  auto key = owner_of(ep.node, ep.container);
  if (have.count(key)) remove_remote(network, key);  // changed: the old entries go first
  if (auto r = networking_.add_remote(network, remote_of(ep)); !r)
    log::get("net")->warn("{}", r.error().message);
  else
    log::get("net")->info("overlay endpoint added network={} endpoint={} ip={} underlay={}",
                          network, key, ep.ip.str(), ep.underlay.str());
  have[key] = std::make_unique<cluster::OverlayEndpoint>(ep);
}

void ClusterOverlay::remove_remote(const std::string& network, const std::string& key) {
  auto& have = remote_[network];
  auto it = have.find(key);
  if (it == have.end()) return;
  if (auto r = networking_.remove_remote(network, remote_of(*it->second)); !r)
    log::get("net")->warn("{}", r.error().message);
  else
    log::get("net")->info("overlay endpoint removed network={} endpoint={} ip={}", network, key,
                          it->second->ip.str());
  have.erase(it);
}

}  // namespace stack::reconciler
