// The daemon's networking, on the loop thread. See networking.h.
#include "reconciler/networking.h"

#include <spdlog/fmt/ranges.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <algorithm>

#include "common/files.h"
#include "common/log.h"
#include "net/dns/dns_server.h"
#include "net/naming.h"
#include "net/network.h"
#include "reconciler/cluster_ingress.h"
#include "reconciler/cluster_overlay.h"

#include <spdlog/spdlog.h>

namespace stack::reconciler {

namespace {

namespace asio = boost::asio;

// IPAM's allocations in the state store: each call is one transaction there.
class StoreAddresses final : public net::AddressStore {
 public:
  explicit StoreAddresses(state::Store& store) : store_(store) {}
  Result<std::vector<net::Allocation>> load(std::string_view network) override {
    auto rows = store_.list_allocations(network);
    if (!rows) return fail(rows.error());
    std::vector<net::Allocation> out;
    for (const auto& r : *rows) {
      auto ip = net::Ipv4::parse(r.address);
      if (!ip) return fail(ip.error().wrap("state: allocation of " + r.owner + " on " + r.network));
      out.push_back({r.network, r.owner, *ip});
    }
    return out;
  }
  Result<void> save(const net::Allocation& a) override {
    return store_.put_allocation({a.network, a.owner, a.address.str()});
  }
  Result<void> erase(std::string_view network, std::string_view owner) override {
    return store_.erase_allocation(network, owner);
  }

 private:
  state::Store& store_;
};

// Where a network's embedded DNS listens, and its containers' resolv.conf points: the gateway,
// the IPv6 one on an IPv6-only network (its containers have no IPv4 to reach the other with).
// On a macvlan or ipvlan network: its shim's address (net/network_sublinks.cpp says why).
std::string dns_address(const net::NetworkInfo& info) {
  if (info.shim_address) return info.shim_address->str();
  if (!info.spec.enable_ipv4 && info.v6) return info.v6->gateway.str();
  return info.addressing.gateway.str();
}

}  // namespace

Networking::Networking(asio::io_context& io, state::Store& store, const Paths& paths)
    : io_(io),
      store_(store),
      instance_(paths.instance()),
      addresses_(std::make_unique<StoreAddresses>(store)),
      peers_(std::make_unique<net::StaticPeers>()),
      registry_(std::make_unique<net::dns::DnsRegistry>()) {}

Networking::~Networking() {
  for (auto& [name, server] : dns_) server->stop();
}

Result<void> Networking::open() {
  auto nl = net::make_libnl_netlink();
  if (!nl) return fail(nl.error().wrap("networking: netlink"));
  netlink_ = std::move(*nl);
  auto nft = net::make_libnftables();
  if (!nft) return fail(nft.error().wrap("networking: nftables"));
  nft_ = std::move(*nft);
  firewall_ = std::make_unique<net::Firewall>(*nft_, *netlink_);
  auto sub = net::make_libnl_sublinks();
  if (!sub) return fail(sub.error().wrap("networking: netlink"));
  sublinks_ = std::move(*sub);
  net::NetworkOptions options;
  options.instance = instance_;
  manager_ =
      std::make_unique<net::NetworkManager>(*netlink_, *firewall_, *addresses_, *peers_, options);
  manager_->use_sublinks(*sublinks_);
  return {};
}

Result<void> Networking::ensure(const model::NetworkConfig& n) {
  if (!manager_) return {};
  const std::string ctx = "network " + n.name;
  const std::string& project = n.project;
  net::NetworkSpec spec;
  spec.project = project;
  spec.name = n.key;
  if (n.name != project + "_" + n.key) spec.host_name = n.name;  // `name:` in the file
  if (n.driver == "overlay") spec.driver = net::Driver::kOverlay;
  else if (n.driver == "macvlan") spec.driver = net::Driver::kMacvlan;
  else if (n.driver == "ipvlan") spec.driver = net::Driver::kIpvlan;
  else if (n.driver != "bridge" && !n.driver.empty())
    return fail(ctx + ": driver " + n.driver + " is not supported");
  spec.internal = n.internal;
  spec.enable_ipv6 = n.enable_ipv6;
  spec.enable_ipv4 = n.enable_ipv4;
  // The IPv4 entry of ipam.config and the IPv6 one (spec/network_fields.cpp allows one of
  // each, IPv6 with enable_ipv6).
  auto is_v6 = [](const model::IpamPool& p) {
    return p.subnet.find(':') != std::string::npos || p.gateway.find(':') != std::string::npos;
  };
  auto v4 = std::find_if(n.ipam.begin(), n.ipam.end(), [&](auto& p) { return !is_v6(p); });
  auto v6 = std::find_if(n.ipam.begin(), n.ipam.end(), is_v6);
  if (v4 != n.ipam.end()) {
    const auto& p = *v4;
    if (!p.subnet.empty()) spec.subnet = STACK_TRY_CTX(net::Cidr::parse(p.subnet), ctx + ": subnet");
    if (!p.ip_range.empty())
      spec.ip_range = STACK_TRY_CTX(net::Cidr::parse(p.ip_range), ctx + ": ip_range");
    if (!p.gateway.empty())
      spec.gateway = STACK_TRY_CTX(net::Ipv4::parse(p.gateway), ctx + ": gateway");
    for (const auto& [name, ip] : p.aux_addresses)
      spec.reserved[name] = STACK_TRY_CTX(net::Ipv4::parse(ip), ctx + ": aux address " + name);
  }
  if (v6 != n.ipam.end()) {
    if (!n.enable_ipv6) return fail(ctx + ": an IPv6 subnet needs enable_ipv6: true");
    if (!v6->subnet.empty())
      spec.subnet6 = STACK_TRY_CTX(net::Cidr6::parse(v6->subnet), ctx + ": IPv6 subnet");
    if (!v6->gateway.empty())
      spec.gateway6 = STACK_TRY_CTX(net::Ipv6::parse(v6->gateway), ctx + ": IPv6 gateway");
    for (const auto& [name, ip] : v6->aux_addresses)
      spec.reserved6[name] = STACK_TRY_CTX(net::Ipv6::parse(ip), ctx + ": aux address " + name);
  }
  auto opt = [&](const char* key) -> const std::string* {
    auto it = n.driver_opts.find(key);
    return it == n.driver_opts.end() ? nullptr : &it->second;
  };
  if (auto* mtu = opt("mtu")) spec.mtu = std::atoi(mtu->c_str());
  if (spec.driver == net::Driver::kMacvlan || spec.driver == net::Driver::kIpvlan) {
    if (auto* parent = opt("parent")) spec.parent = *parent;
    if (auto* mode = opt(spec.driver == net::Driver::kMacvlan ? "macvlan_mode" : "ipvlan_mode"))
      spec.mode = *mode;
    if (auto* flag = opt("ipvlan_flag")) spec.flag = *flag;
  }
  const bool in_cluster = cluster_ && ClusterOverlay::is_cluster_network(n);
  if (in_cluster) {
    // The cluster's subnet (prepare read it from the store; a restarted daemon keeps the one
    // it stored), its own underlay, no peers: the endpoints come from the store.
    spec.cluster = true;
    if (!opt("local") && cluster_->underlay()) spec.underlay = cluster_->underlay();
    if (auto s = cluster_->subnet(n.name)) {
      spec.subnet = s->subnet;
      spec.gateway = s->gateway;
    }
    // Addresses come from the cluster's IPAM, which has no ip_range, nor aux_addresses
    // (check_supported refuses them on a cluster network).
    spec.ip_range.reset();
    spec.reserved.clear();
  }
  if (spec.driver == net::Driver::kOverlay) {
    if (auto* vni = opt("vni")) spec.vni = static_cast<uint32_t>(std::strtoul(vni->c_str(), nullptr, 10));
    if (auto* local = opt("local"))
      spec.underlay = STACK_TRY_CTX(net::Ipv4::parse(*local), ctx + ": driver_opts.local");
    std::vector<net::Ipv4> peers;
    if (auto* list = opt("peers"))
      peers = STACK_TRY_CTX(net::StaticPeers::parse(*list), ctx + ": driver_opts.peers");
    peers_->set(spec.full_name(), std::move(peers));
  }
  std::string full = spec.full_name();
  // The subnet chosen the first time is kept: after a daemon restart the pool would skip it,
  // its own bridge's route making it look taken.
  auto stored = store_.get_network(full);
  if (!stored) return fail(stored.error());
  if (*stored && !spec.subnet) {
    spec.subnet = STACK_TRY_CTX(net::Cidr::parse((*stored)->subnet), ctx + ": stored subnet");
    if (!spec.gateway)
      spec.gateway = STACK_TRY_CTX(net::Ipv4::parse((*stored)->gateway), ctx + ": stored gateway");
  }
  auto info = manager_->ensure_network(spec);
  if (!info) return fail(info.error());
  state::NetworkRecord rec{full, info->addressing.subnet.str(), info->addressing.gateway.str(),
                           project, n.config_hash};
  // A network named in the file (name:) may be another project's: it stays that project's
  // (it removes it on down; see remove_network's callers), as it was made.
  if (*stored && !(*stored)->project.empty() && (*stored)->project != project) {
    rec.project = (*stored)->project;
    rec.config_hash = (*stored)->config_hash;
  }
  if (!*stored || (*stored)->subnet != rec.subnet || (*stored)->gateway != rec.gateway ||
      (*stored)->project != rec.project || (*stored)->config_hash != rec.config_hash)
    if (auto r = store_.put_network(rec); !r) return fail(r.error());
  projects_[full] = rec.project;
  if (in_cluster) cluster_->watch(full);
  if (!dns_.count(full) && !(in_cluster && full == kIngressNetwork)) {  // ingress: no names
    net::dns::DnsServerOptions o;
    o.address = dns_address(*info);
    o.port = 53;
    if (auto conf = net::dns::read_resolv_conf()) o.upstreams = net::dns::upstreams_from(*conf);
    auto server = std::make_unique<net::dns::DnsServer>(io_, *registry_, o);
    if (auto r = server->start(); !r)
      log::get("net")->warn("network {}: no DNS server: {}", full, r.error().message);
    else
      dns_[full] = std::move(server);
  }
  return {};
}

std::string Networking::parent_user(const std::string& parent, const std::string& except) const {
  return manager_ ? manager_->parent_user(parent, except) : "";
}

std::string Networking::driver_of(const std::string& name) const {
  const net::NetworkInfo* info = manager_ ? manager_->find(name) : nullptr;
  if (info == nullptr) return "bridge";
  switch (info->spec.driver) {
    case net::Driver::kOverlay: return "overlay";
    case net::Driver::kMacvlan: return "macvlan";
    case net::Driver::kIpvlan: return "ipvlan";
    case net::Driver::kBridge: break;
  }
  return "bridge";
}

Result<void> Networking::remove_network(const std::string& name) {
  if (!manager_) return {};
  if (auto it = dns_.find(name); it != dns_.end()) {
    it->second->stop();
    dns_.erase(it);
  }
  projects_.erase(name);
  // Known to the manager only when this daemon made or re-learned it; the record goes anyway.
  if (manager_->find(name))
    if (auto r = manager_->remove_network(name); !r) return fail(r.error());
  if (cluster_) cluster_->unwatch(name);
  return store_.remove_network(name);
}

Result<void> Networking::hand_over(const std::string& name, const std::string& project) {
  if (projects_.count(name)) projects_[name] = project;
  auto rec = store_.get_network(name);
  if (!rec) return fail(rec.error());
  if (!*rec) return {};
  (*rec)->project = project;
  return store_.put_network(**rec);
}

Result<void> Networking::remove_project(const std::string& project) {
  if (!manager_) return {};
  std::vector<std::string> names;
  for (const auto& [net, p] : projects_)
    if (p == project) names.push_back(net);
  if (auto stored = store_.list_networks(project))
    for (const auto& n : *stored) names.push_back(n.name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  Result<void> result;
  for (const auto& name : names)
    if (auto r = remove_network(name); !r && result) result = fail(r.error());
  return result;
}

std::string Networking::resolv_conf(const RuntimeRecord& rt) const {
  if (rt.network_mode == "host") {
    auto text = read_file("/etc/resolv.conf");
    if (!text) return {};
    if (rt.dns.empty() && rt.dns_search.empty() && rt.dns_opt.empty()) return *text;
    return net::dns::render_host_resolv_conf(net::dns::parse_resolv_conf(*text), rt.dns,
                                             rt.dns_search, rt.dns_opt);
  }
  if (rt.network_mode != "bridge" || rt.networks.empty() || !manager_) return {};
  const auto* info = manager_->find(rt.networks.front().network);
  if (!info) return {};
  return net::dns::render_container_resolv_conf(dns_address(*info), rt.dns_search, rt.dns_opt);
}

bool Networking::attaches(const RuntimeRecord& rt) const {
  return rt.network_mode == "bridge" && !rt.networks.empty() && manager_;
}

namespace {

Result<std::vector<net::EndpointRequest>> requests_of(const RuntimeRecord& rt) {
  std::vector<net::EndpointRequest> requests;
  for (const auto& j : rt.networks) {
    net::EndpointRequest req{j.network};
    if (!j.ipv4_address.empty())
      req.ipv4_address = STACK_TRY_CTX(net::Ipv4::parse(j.ipv4_address), "ipv4_address");
    if (!j.mac_address.empty())
      req.mac = STACK_TRY_CTX(net::Mac::parse(j.mac_address), "mac_address");
    if (!j.ipv6_address.empty())
      req.ipv6_address = STACK_TRY_CTX(net::Ipv6::parse(j.ipv6_address), "ipv6_address");
    req.ifname = j.interface_name;
    req.gw_priority = j.gw_priority;
    for (const auto& ip : j.link_local_ips) {
      // A bare address is taken with its link-local network's prefix (169.254.0.0/16,
      // fe80::/64, as RFC 3927 and 4291 define them), any other with its host prefix.
      bool v6 = ip.find(':') != std::string::npos;
      std::string text = ip;
      if (text.find('/') == std::string::npos)
        text += v6 ? (text.rfind("fe80:", 0) == 0 ? "/64" : "/128")
                   : (text.rfind("169.254.", 0) == 0 ? "/16" : "/32");
      if (v6)
        req.link_local_ips6.push_back(STACK_TRY_CTX(net::Cidr6::parse(text), "link_local_ips"));
      else
        req.link_local_ips.push_back(STACK_TRY_CTX(net::Cidr::parse(text), "link_local_ips"));
    }
    requests.push_back(std::move(req));
  }
  return requests;
}

ino_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

Result<void> Networking::attach(const RuntimeRecord& rt, pid_t pid, int netns) {
  const auto& name = rt.spec.name;
  if (!attaches(rt)) return {};
  if (netns < 0) return fail("attach " + name + ": no network namespace of its own");
  auto requests = requests_of(rt);
  if (!requests) return fail(requests.error());
  if (cluster_)  // the cluster's address (reserved before the start), as a static one here
    for (auto& req : *requests)
      if (auto ip = cluster_->reserved(name, req.network)) req.ipv4_address = *ip;
  auto eps = manager_->attach(name, netns, static_cast<uint64_t>(pid), *requests);
  if (!eps) return fail(eps.error());
  netns_[name] = {pid, inode_of(netns)};
  // /etc/hosts is bind-mounted already: rewritten in place (same inode) with our address.
  std::string hosts = rt.spec.hosts;
  std::string names = rt.spec.hostname + (rt.spec.hostname != name ? " " + name : std::string());
  const auto* first = eps->empty() ? nullptr : manager_->find(eps->front().network);
  if (first && first->spec.enable_ipv4)
    hosts += eps->front().address.address.str() + "\t" + names + "\n";
  if (!eps->empty() && eps->front().address6)
    hosts += eps->front().address6->address.str() + "\t" + names + "\n";
  if (auto r = write_file(rt.spec.dir / "hosts", hosts); !r) return fail(r.error());
  return {};
}

Result<std::string> Networking::build_resolv_conf() {
  if (!manager_) return fail("build network: no network manager");
  if (!manager_->find(kBuildNetwork)) {
    model::NetworkConfig c;
    c.project = "_stack";
    c.key = "build";
    c.name = kBuildNetwork;
    c.config_hash = "build";
    if (auto r = ensure(c); !r) return fail(r.error().wrap("build network"));
  }
  const auto* info = manager_->find(kBuildNetwork);
  if (!info) return fail("build network: not made");
  return net::dns::render_container_resolv_conf(info->addressing.gateway.str(), {}, {});
}

Result<void> Networking::attach_build(const std::string& container, int netns, pid_t pid) {
  if (auto r = build_resolv_conf(); !r) return fail(r.error());
  auto eps = manager_->attach(container, netns, static_cast<uint64_t>(pid),
                              {net::EndpointRequest{kBuildNetwork}});
  if (!eps) return fail(eps.error().wrap("attach " + container + " to the build network"));
  return {};
}

void Networking::detach_build(const std::string& container) { gone(container); }

Result<void> Networking::remove_build_network() {
  if (!manager_) return {};
  if (!manager_->find(kBuildNetwork))
    if (auto stored = store_.get_network(kBuildNetwork); !stored || !*stored) return {};
  return remove_network(kBuildNetwork);
}

void Networking::started(const RuntimeRecord& rt, bool adopted, bool serve) {
  if (rt.network_mode != "bridge" || !manager_ || !serve) return;
  register_names(rt, adopted);
  if (cluster_) {
    std::vector<ClusterOverlay::Attached> eps;
    for (const auto& e : manager_->endpoints(rt.spec.name))
      if (cluster_->is_cluster(e.network)) eps.push_back({e.network, e.address.address, e.mac});
    cluster_->attached(rt, eps);
  }
  // Only macvlan/ipvlan networks: no port is published (as docker; the loader warned at up).
  bool bridged = std::any_of(rt.networks.begin(), rt.networks.end(), [&](const auto& j) {
    const net::NetworkInfo* info = manager_->find(j.network);
    return info == nullptr || !info->sublinks();
  });
  if (auto ports = port_mappings(rt); !ports.empty() && bridged)
    if (auto r = manager_->publish(rt.spec.name, std::move(ports)); !r)
      log::get("net")->error("publish ports of {}: {}", rt.spec.name, r.error().message);
}

void Networking::register_names(const RuntimeRecord& rt, bool adopted) {
  auto log = log::get("net");
  const auto& name = rt.spec.name;
  auto eps = manager_->endpoints(name);
  for (const auto& j : rt.networks) {
    if (cluster_ && j.network == kIngressNetwork) continue;  // the routing mesh's: no names on it
    std::optional<net::Ipv4> address;
    std::optional<net::Ipv6> address6;
    for (const auto& e : eps)
      if (e.network == j.network) {
        address = e.address.address;
        if (e.address6) address6 = e.address6->address;
      }
    if (!address && adopted)
      if (auto rows = store_.list_allocations(j.network))
        for (const auto& r : *rows)
          if (r.owner == name)
            if (auto ip = net::Ipv4::parse(r.address)) address = *ip;
    if (!address) continue;
    net::dns::Endpoint e;
    e.network = j.network;
    e.container = name;
    e.address = net::dns::Ipv4{address->value};
    if (address6) e.address6 = net::dns::Ipv6{address6->bytes};
    if (const auto* info = manager_->find(j.network)) e.has_ipv4 = info->spec.enable_ipv4;
    e.service = rt.service;
    if (rt.spec.hostname != name) e.hostname = rt.spec.hostname;
    e.aliases = j.aliases;
    for (const auto& [alias, target] : rt.links) e.links.push_back({alias, target});
    for (const auto& d : rt.dns) e.upstreams.push_back({d, 53});
    if (auto r = registry_->add(e); !r)
      log->warn("dns: register {} on {}: {}", name, j.network, r.error().message);
    else
      names_[name].push_back(e);
  }
}

std::vector<net::PortMapping> Networking::port_mappings(const RuntimeRecord& rt) {
  std::vector<net::PortMapping> ports;
  for (const auto& p : rt.ports) {
    net::PortMapping m;
    // "::" : every local IPv6 address, and no IPv4 one (as docker takes "[::]:8080:80").
    if (!p.host_ip.empty() && p.host_ip != "0.0.0.0") {
      if (auto ip = net::Ipv4::parse(p.host_ip)) m.host_ip = *ip;
      else if (auto ip6 = net::Ipv6::parse(p.host_ip)) m.host_ip6 = *ip6;
    }
    m.host_port = static_cast<uint16_t>(p.host_port);
    m.host_port_end = static_cast<uint16_t>(p.host_port_end);
    m.proto = p.protocol == "udp"    ? net::Proto::kUdp
              : p.protocol == "sctp" ? net::Proto::kSctp
                                     : net::Proto::kTcp;
    m.container_port = static_cast<uint16_t>(p.container_port);
    if (p.host_port_end)
      m.container_port_end = static_cast<uint16_t>(p.container_port + p.host_port_end - p.host_port);
    ports.push_back(m);
  }
  return ports;
}

Result<void> Networking::rename(const std::string& from, const std::string& to) {
  if (!manager_) return {};
  if (auto r = manager_->rename(from, to); !r) return r;
  if (cluster_) cluster_->renamed(from, to);
  if (auto node = netns_.extract(from); !node.empty()) {
    node.key() = to;
    netns_.insert(std::move(node));
  }
  // Its DNS names stay its own (the service name, its aliases), under its new container name.
  auto entries = names_.extract(from);
  registry_->remove_container(from);
  if (!entries.empty()) {
    for (auto e : entries.mapped()) {
      e.container = to;
      if (auto r = registry_->add(e); r) names_[to].push_back(e);
    }
  }
  return {};
}

Result<void> Networking::switch_traffic(const std::string& from, const RuntimeRecord& to) {
  if (!manager_ || to.network_mode != "bridge") return {};
  // Published ports first, in one firewall transaction; then the names: the new container
  // answers for the service from now on, the old one for nothing.
  if (auto r = manager_->switch_ports(from, to.spec.name, port_mappings(to)); !r) return r;
  registry_->remove_container(from);
  names_.erase(from);
  register_names(to, false);
  return {};
}

void Networking::adopt(const RuntimeRecord& rt, pid_t pid) {
  if (rt.network_mode == "bridge" && !rt.networks.empty() && manager_) {
    auto log = log::get("net");
    const auto& name = rt.spec.name;
    auto fd = net::open_netns(pid);
    auto requests = requests_of(rt);
    if (!fd || !requests) {
      log->error("adopt {}: {}", name, (!fd ? fd.error() : requests.error()).message);
    } else if (auto eps = manager_->adopt(name, fd->get(), static_cast<uint64_t>(pid), *requests);
               !eps) {
      log->error("{}", eps.error().message);
    } else {
      netns_[name] = {pid, inode_of(fd->get())};
      // Its bridge may have been deleted and made again while no daemon ran.
      if (auto r = manager_->reattach(name, fd->get()); !r)
        log->error("{}", r.error().message);
      else if (!r->empty())
        log->info("drift: re-attached container name={} networks={}", name, fmt::join(*r, ","));
    }
  }
  started(rt, true);
}

void Networking::hold_firewall() {
  if (manager_) manager_->hold_firewall();
}

Result<void> Networking::release_firewall() {
  if (!manager_) return {};
  return manager_->release_firewall();
}

Result<UniqueFd> Networking::netns_of(const std::string& container) const {
  auto it = netns_.find(container);
  if (it == netns_.end()) return fail("no network namespace known for " + container);
  auto fd = net::open_netns(it->second.pid);
  if (!fd) return fail(fd.error());
  if (inode_of(fd->get()) != it->second.inode)
    return fail("the network namespace of " + container + " is gone (PID " +
                std::to_string(it->second.pid) + " is another process)");
  return fd;
}

std::vector<Networking::Reattached> Networking::reattach_detached() {
  std::vector<Reattached> out;
  if (!manager_) return out;
  auto log = log::get("net");
  auto detached = manager_->observe_detached();
  if (!detached) {
    log->warn("observe ports: {}", detached.error().message);
    return out;
  }
  for (const auto& name : *detached) {
    auto fd = netns_of(name);
    if (!fd) {
      log->warn("re-attach {}: {}", name, fd.error().message);
      continue;
    }
    auto r = manager_->reattach(name, fd->get());
    if (!r) log->error("{}", r.error().message);
    else if (!r->empty()) out.push_back({name, *r});
  }
  return out;
}

void Networking::gone(const std::string& container) {
  if (!manager_) return;
  if (cluster_) cluster_->gone(container);
  registry_->remove_container(container);
  names_.erase(container);
  netns_.erase(container);
  if (auto r = manager_->detach(container); !r)
    log::get("net")->warn("detach {}: {}", container, r.error().message);
}

Result<void> Networking::set_mesh(std::vector<net::MeshPort> mesh) {
  if (!manager_) return {};
  return manager_->set_mesh(std::move(mesh));
}

std::optional<Networking::Bridge> Networking::bridge_of(const std::string& network) const {
  const auto* info = manager_ ? manager_->find(network) : nullptr;
  if (!info) return std::nullopt;
  auto salt = info->spec.underlay ? info->spec.underlay->str() : std::string();
  return Bridge{info->bridge, net::bridge_mac(info->bridge, salt)};
}

Result<void> Networking::add_remote(const std::string& network, const RemoteEndpoint& ep) {
  if (!manager_) return {};
  if (auto r = manager_->add_remote(network, ep.ip, ep.mac, ep.underlay); !r) return r;
  // A node's own address, or the routing mesh's network: no name.
  if (ep.container.empty() || network == kIngressNetwork) return {};
  net::dns::Endpoint e;
  e.network = network;
  e.container = ep.key;  // unique here; its container name is one of its aliases
  e.address = net::dns::Ipv4{ep.ip.value};
  e.service = ep.service;
  e.aliases = ep.aliases;
  e.aliases.push_back(ep.container);
  if (auto r = registry_->add(e); !r) return fail(r.error().wrap("overlay " + network));
  return {};
}

Result<void> Networking::remove_remote(const std::string& network, const RemoteEndpoint& ep) {
  if (!manager_) return {};
  registry_->remove(network, ep.key);
  return manager_->remove_remote(network, ep.ip, ep.mac, ep.underlay);
}

Result<PortAnswer> Networking::port(const RuntimeRecord& rt, int private_port,
                                    const std::string& protocol) const {
  for (const auto& p : rt.ports) {
    if (p.protocol != protocol) continue;
    int last = p.host_port_end ? p.container_port + p.host_port_end - p.host_port : p.container_port;
    if (private_port < p.container_port || private_port > last) continue;
    return PortAnswer{p.host_ip.empty() ? "0.0.0.0" : p.host_ip,
                      p.host_port + (private_port - p.container_port)};
  }
  return fail("no public port for " + std::to_string(private_port) + "/" + protocol + " of " +
              rt.spec.name);
}

Result<void> Networking::repair(const std::string& network) {
  const auto* info = manager_ ? manager_->find(network) : nullptr;
  if (!info) return fail("no network " + network);
  net::NetworkSpec spec = info->spec;
  auto r = manager_->ensure_network(spec);
  if (!r) return fail(r.error());
  return {};
}

std::vector<std::string> Networking::missing() {
  if (!manager_) return {};
  auto m = manager_->observe_missing();
  if (!m) {
    log::get("net")->warn("observe networks: {}", m.error().message);
    return {};
  }
  return *m;
}

}  // namespace stack::reconciler
