// NetworkManager: the order of operations for networks, attachments and ports. The hot path is
// attach (one RTM_NEWLINK with the peer born in the container's namespace, then address and
// route there); teardown deletes nothing per container (see network.h).
#include "net/network.h"

#include <fcntl.h>

#include <set>
#include <utility>
#include <spdlog/spdlog.h>

#include "common/log.h"
#include "common/scope_guard.h"
#include "net/check.h"
#include "net/naming.h"

namespace stack::net {

Result<UniqueFd> open_netns(pid_t pid) {
  auto path = "/proc/" + std::to_string(pid) + "/ns/net";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  return fd;
}

namespace {
// An IPAM owner no container can be (container names have no ':'): the DNS shim's address on
// a macvlan or ipvlan network.
constexpr const char* kShimOwner = "stack:dns";

FirewallEndpoint firewall_endpoint(const Endpoint& ep) {
  return {ep.host_veth, ep.mac, ep.address.address,
          ep.address6 ? std::optional<Ipv6>(ep.address6->address) : std::nullopt};
}
}  // namespace

NetworkManager::NetworkManager(Netlink& kernel, Firewall& firewall, AddressStore& store,
                               OverlayPeers& peers, NetworkOptions options)
    : kernel_(kernel),
      firewall_(firewall),
      ipam_(store),
      peers_(peers),
      options_(std::move(options)) {}

const NetworkInfo* NetworkManager::find(std::string_view full_name) const {
  auto it = networks_.find(full_name);
  return it == networks_.end() ? nullptr : &it->second;
}

std::string NetworkManager::parent_user(std::string_view parent, std::string_view except) const {
  if (parent.empty()) return "";  // stack's own dummy parent: one per network
  for (const auto& [name, info] : networks_)
    if (name != except && info.sublinks() && info.spec.parent == parent) return name;
  return "";
}

Result<NetworkInfo> NetworkManager::ensure_network(const NetworkSpec& spec) {
  auto key = spec.full_name();
  auto ctx = "network " + key;
  NetworkInfo info;
  if (auto* known = find(key)) {
    info = *known;
  } else {
    // Two networks on one parent would share its segment with two IPAMs handing out the same
    // addresses (the kernel takes any number of macvlans on a link): refused as docker does.
    if (spec.driver == Driver::kMacvlan || spec.driver == Driver::kIpvlan)
      if (auto other = parent_user(spec.parent, key); !other.empty())
        return fail(ctx + ": network " + other + " is already using parent interface " +
                    spec.parent);
    if (spec.driver == Driver::kOverlay && !spec.underlay)
      return fail(ctx +
                  ": an overlay network needs this host's underlay address (driver_opts.local)");
    std::vector<Cidr> taken = ipam_.subnets();
    if (!spec.subnet) {
      auto routed = STACK_TRY_CTX(kernel_.list_routed_subnets(), ctx);
      taken.insert(taken.end(), routed.begin(), routed.end());
    }
    AddressingRequest req{key, spec.subnet, spec.ip_range, spec.gateway, spec.reserved};
    info.addressing = STACK_TRY_CTX(plan_addressing(req, options_.pool, taken), ctx);
    if (spec.subnet6) reserve_images(spec.reserved6, *spec.subnet6, info.addressing);
    NET_CHECK(ipam_.add_network(info.addressing), ctx);
    info.spec = spec;
    // A network named in the file (name:) is the same one whichever project makes it.
    const std::string owner = spec.host_name.empty() ? spec.project : "";
    const std::string local = spec.host_name.empty() ? spec.name : spec.host_name;
    info.bridge = bridge_name(options_.instance, owner, local);
    if (spec.driver == Driver::kOverlay) {
      info.vni = spec.vni ? *spec.vni : derive_vni(owner, local);
      info.vxlan = vxlan_name(info.vni);
    }
    if (info.sublinks()) {
      // No bridge: the name only derives the shim's and the dummy parent's (15 bytes at most).
      std::string base = info.bridge;
      info.bridge.clear();
      info.shim = base + "-s";
      info.parent = spec.parent.empty() ? base + "-p" : spec.parent;
      auto shim = ipam_.allocate(key, kShimOwner);
      if (!shim) {
        (void)ipam_.remove_network(key);
        return fail(shim.error().wrap(ctx + ": the DNS shim's address"));
      }
      info.shim_address = *shim;
      if (spec.enable_ipv6) {
        (void)ipam_.remove_network(key);
        return fail(ctx + ": enable_ipv6 on a macvlan or ipvlan network is not supported");
      }
    }
    info.mtu = spec.mtu ? *spec.mtu : (spec.driver == Driver::kOverlay ? 1450 : 1500);
    if (!spec.enable_ipv4 && !spec.enable_ipv6) {
      (void)ipam_.remove_network(key);
      return fail(ctx + ": IPv4 or IPv6 must be enabled");
    }
    if (spec.enable_ipv6) {
      if (spec.driver == Driver::kOverlay) {
        (void)ipam_.remove_network(key);
        return fail(ctx + ": enable_ipv6 on an overlay network is not supported");
      }
      std::vector<Cidr6> taken6;
      for (const auto& [name, other] : networks_)
        if (other.v6) taken6.push_back(other.v6->subnet);
      auto pool = options_.pool6 ? *options_.pool6 : ula_pool(options_.instance);
      auto v6 = plan_ipv6(key, info.addressing.subnet.prefix, spec.subnet6, spec.gateway6, pool,
                          taken6);
      if (!v6) {
        (void)ipam_.remove_network(key);
        return fail(v6.error().wrap(ctx));
      }
      info.v6 = *v6;
      info.v6->reserved = spec.reserved6;
    }
  }
  if (auto r = ensure_links(info); !r) {
    if (!find(key)) {  // a new network that could not be made: nothing of it stays
      (void)ipam_.remove_network(key);
      if (info.sublinks()) (void)remove_sublinks(info);
    }
    return fail(r.error().wrap(ctx));
  }
  bool is_new = !find(key);
  networks_[key] = info;
  if (is_new) {
    if (auto r = apply_firewall(); !r) return fail(r.error().wrap(ctx));
    log::get("net")->info("network ready name={} {} subnet={}{}", key,
                          info.sublinks() ? "parent=" + info.parent + " shim=" + info.shim
                                          : "bridge=" + info.bridge,
                          info.addressing.subnet.str(),
                          info.vxlan.empty() ? "" : " vxlan=" + info.vxlan);
  }
  return info;
}

Result<void> NetworkManager::ensure_links(const NetworkInfo& info) {
  if (info.sublinks()) return ensure_sublinks(info);
  const auto& a = info.addressing;
  auto salt = info.spec.underlay ? info.spec.underlay->str() : std::string();
  BridgeConfig bridge{info.bridge, Cidr{a.gateway, a.subnet.prefix}, info.mtu,
                      bridge_mac(info.bridge, salt)};
  if (info.v6) bridge.gateway6 = Cidr6{info.v6->gateway, info.v6->subnet.prefix};
  bridge.address4 = info.spec.enable_ipv4;
  NET_CHECK(kernel_.ensure_bridge(bridge), "bridge");
  // IPv6 forwarding for what enters through this bridge only (force_forwarding, Linux 6.17):
  // net.ipv6.conf.all.forwarding would turn the whole host into a router and make it ignore
  // router advertisements on its own uplinks.
  if (info.v6 && !info.spec.internal) {
    NET_CHECK(kernel_.set_sysctl("net/ipv6/conf/" + info.bridge + "/force_forwarding", "1"),
              "bridge IPv6 forwarding");
    // NAT66 replies come in through the uplinks and are forwarded from there: forwarding on
    // them too, as net.ipv4.ip_forward is for IPv4 (left on, like it). force_forwarding leaves
    // their accept_ra as it is (all.forwarding would not).
    if (options_.enable_ip_forward) {
      auto uplinks = STACK_TRY_CTX(kernel_.ipv6_default_route_devices(), "IPv6 uplinks");
      for (const auto& dev : uplinks) {
        auto key = "net/ipv6/conf/" + dev + "/force_forwarding";
        auto on = kernel_.get_sysctl(key);
        if (on && *on == "1") continue;
        NET_CHECK(kernel_.set_sysctl(key, "1"), "IPv6 forwarding on " + dev);
        log::get("net")->info("enabled net.ipv6.conf.{}.force_forwarding for NAT66 replies", dev);
      }
    }
  }
  // 127.0.0.1:PORT published ports are DNAT'ed out of this bridge: the kernel must route
  // loopback-sourced packets here (with the masquerade in the nat table).
  NET_CHECK(kernel_.set_sysctl("net/ipv4/conf/" + info.bridge + "/route_localnet", "1"), "bridge");
  if (!info.spec.internal && options_.enable_ip_forward) {
    auto forward = kernel_.get_sysctl("net/ipv4/ip_forward");
    if (!forward || *forward != "1") {
      NET_CHECK(kernel_.set_sysctl("net/ipv4/ip_forward", "1"), "enable forwarding");
      log::get("net")->info("enabled net.ipv4.ip_forward for network traffic");
    }
  }
  if (info.spec.driver != Driver::kOverlay) return {};
  VxlanConfig vx{info.vxlan, info.vni, 4789, *info.spec.underlay, info.bridge, info.mtu};
  vx.proxy = info.spec.cluster;
  NET_CHECK(kernel_.ensure_vxlan(vx), "overlay");
  auto peers = STACK_TRY_CTX(peers_.peers(info.spec.full_name()), "overlay peers");
  auto present = STACK_TRY_CTX(kernel_.list_fdb_remotes(info.vxlan), "overlay");
  for (auto peer : peers) {
    if (peer == *info.spec.underlay) continue;
    if (std::find(present.begin(), present.end(), peer) != present.end()) continue;
    NET_CHECK(kernel_.append_fdb(info.vxlan, Mac{}, peer), "overlay peer " + peer.str());
  }
  return {};
}

Result<void> NetworkManager::remove_network(std::string_view full_name) {
  auto ctx = "remove network " + std::string(full_name);
  auto it = networks_.find(full_name);
  if (it == networks_.end()) return {};
  for (const auto& [container, eps] : endpoints_)
    for (const auto& ep : eps)
      if (ep.network == full_name)
        return fail(ctx + ": container " + container + " is attached to it", EBUSY);
  NetworkInfo info = it->second;
  networks_.erase(it);
  NET_CHECK(apply_firewall(), ctx);
  if (info.sublinks()) NET_CHECK(remove_sublinks(info), ctx);
  for (const auto& link : {info.vxlan, info.bridge}) {
    if (link.empty()) continue;
    auto r = kernel_.delete_link(link);
    if (!r && r.error().sys_errno != ENODEV) return fail(r.error().wrap(ctx));
  }
  NET_CHECK(ipam_.remove_network(full_name), ctx);
  log::get("net")->info("network removed name={} bridge={}", full_name, info.bridge);
  return {};
}

Result<std::vector<Endpoint>> NetworkManager::plan_endpoints(
    std::string_view container, uint64_t generation, const std::vector<EndpointRequest>& requests,
    const std::function<Result<Ipv4>(const EndpointRequest&)>& address) {
  std::vector<Endpoint> out;
  std::set<std::string> names;
  for (const auto& req : requests)
    if (!req.ifname.empty() && !names.insert(req.ifname).second)
      return fail("interface name " + req.ifname + " is asked for twice");
  int route = -1;  // the request whose gateway is the default route
  for (size_t i = 0; i < requests.size(); i++) {
    const auto& req = requests[i];
    auto nctx = "on " + req.network;
    const NetworkInfo* info = find(req.network);
    if (!info) return fail(nctx + ": unknown network");
    auto ip = STACK_TRY_CTX(address(req), nctx);
    if (info->shim_address && ip == *info->shim_address)
      return fail(nctx + ": " + ip.str() + " is the network's DNS shim's address");
    // A default name never takes one a later request chose ("eth1" asked for by the second).
    std::string ifname = req.ifname;
    for (size_t n = i; ifname.empty(); n++)
      if (!names.count("eth" + std::to_string(n))) ifname = "eth" + std::to_string(n);
    names.insert(ifname);
    if (req.ipv6_address && !info->v6)
      return fail(nctx + ": ipv6_address " + req.ipv6_address->str() +
                  " needs enable_ipv6 on the network");
    Endpoint ep{req.network,
                ifname,
                info->sublinks() ? std::string()
                                 : veth_name(options_.instance, container, req.network, generation),
                Cidr{ip, info->addressing.subnet.prefix},
                info->addressing.gateway,
                info->mtu,
                req.mac ? *req.mac : container_mac(ip)};
    if (info->v6) {
      auto ip6 = STACK_TRY_CTX(
          ipv6_address_for(*info->v6, info->addressing.subnet, ip, req.ipv6_address), nctx);
      for (const auto& [other, eps] : endpoints_)
        for (const auto& e : eps)
          if (other != container && e.network == req.network && e.address6 &&
              e.address6->address == ip6)
            return fail(nctx + ": IPv6 address " + ip6.str() + " is in use by " + other);
      ep.address6 = Cidr6{ip6, info->v6->subnet.prefix};
      ep.gateway6 = info->v6->gateway;
    }
    ep.extra = req.link_local_ips;
    ep.extra6 = req.link_local_ips6;
    if (!info->spec.internal && info->spec.enable_ipv4 &&
        (route < 0 || req.gw_priority > requests[route].gw_priority))
      route = static_cast<int>(i);
    out.push_back(std::move(ep));
  }
  if (route >= 0) out[route].default_route = true;
  // IPv6's default route: the IPv4 one's network if it has IPv6, else the first such network.
  int route6 = route >= 0 && out[route].address6 ? route : -1;
  for (size_t i = 0; i < out.size() && route6 < 0; i++)
    if (out[i].address6 && !find(out[i].network)->spec.internal) route6 = static_cast<int>(i);
  if (route6 >= 0) out[route6].default_route6 = true;
  return out;
}

Result<std::vector<Endpoint>> NetworkManager::attach(std::string_view container, int netns_fd,
                                                     uint64_t generation,
                                                     const std::vector<EndpointRequest>& requests) {
  auto ctx = "attach " + std::string(container);
  std::vector<std::string> allocated;
  bool in_model = false;
  ScopeGuard undo([&] {
    for (const auto& n : allocated) (void)ipam_.release(n, container);
    if (!in_model) return;
    endpoints_.erase(std::string(container));
    (void)apply_firewall();
  });
  auto planned = plan_endpoints(container, generation, requests,
                                [&](const EndpointRequest& req) -> Result<Ipv4> {
                                  auto ip = ipam_.allocate(req.network, container, req.ipv4_address);
                                  if (ip) allocated.push_back(req.network);
                                  return ip;
                                });
  if (!planned) return fail(planned.error().wrap(ctx));
  std::vector<Endpoint> out = std::move(*planned);
  // The ports' anti-spoofing rules are in force before the ports exist: no frame of the
  // container's passes unchecked.
  endpoints_[std::string(container)] = out;
  in_model = true;
  NET_CHECK(change_ports(out, {}), ctx);
  for (const auto& ep : out) {
    auto nctx = ctx + " to " + ep.network;
    NET_CHECK(make_port(ep, netns_fd), nctx);
  }
  undo.dismiss();
  return out;
}

Result<void> NetworkManager::make_port(const Endpoint& ep, int netns_fd) {
  const NetworkInfo* info = find(ep.network);
  if (!info) return fail("unknown network");
  if (info->sublinks()) return make_sublink_port(*info, ep, netns_fd);
  VethConfig veth{ep.host_veth, info->bridge, netns_fd, ep.ifname, ep.mtu, ep.mac};
  auto created = kernel_.create_veth(veth);
  if (!created && created.error().sys_errno == EEXIST) {
    // A veth of that name survives from a namespace the kernel has not finished destroying
    // (same container, same generation): the rare slow path.
    NET_CHECK(kernel_.delete_link(ep.host_veth), "remove stale " + ep.host_veth);
    created = kernel_.create_veth(veth);
  }
  if (!created) return fail(created.error());
  InterfaceConfig iface{netns_fd, ep.ifname, ep.address, ep.mtu, std::nullopt};
  if (ep.default_route) iface.gateway = ep.gateway;
  iface.address6 = ep.address6;
  if (ep.default_route6) iface.gateway6 = ep.gateway6;
  iface.extra = ep.extra;
  iface.extra6 = ep.extra6;
  iface.address4 = info->spec.enable_ipv4;
  return kernel_.configure_interface(iface);
}

Result<std::vector<Endpoint>> NetworkManager::adopt(std::string_view container, int netns_fd,
                                                    uint64_t generation,
                                                    const std::vector<EndpointRequest>& requests) {
  auto ctx = "adopt " + std::string(container);
  auto planned = plan_endpoints(container, generation, requests,
                                [&](const EndpointRequest& req) -> Result<Ipv4> {
                                  auto ip = ipam_.address_of(req.network, container);
                                  if (!ip) return fail("no address recorded");
                                  return *ip;
                                });
  if (!planned) return fail(planned.error().wrap(ctx));
  std::vector<Endpoint> out = std::move(*planned);
  // What the interface has is what its frames carry: a container attached before MACs were
  // derived from addresses keeps the kernel's random one.
  if (netns_fd >= 0)
    for (auto& ep : out)
      if (auto link = kernel_.get_link_in(netns_fd, ep.ifname); link && *link)
        ep.mac = (*link)->mac;
  endpoints_[std::string(container)] = out;
  NET_CHECK(apply_firewall(), ctx);
  return out;
}

Result<std::vector<std::string>> NetworkManager::reattach(std::string_view container,
                                                          int netns_fd) {
  auto ctx = "re-attach " + std::string(container);
  std::vector<std::string> repaired;
  for (const auto& ep : endpoints(container)) {
    auto nctx = ctx + " to " + ep.network;
    const NetworkInfo* info = find(ep.network);
    if (!info || info->sublinks()) continue;  // a child lives in the container, not on a bridge
    auto link = STACK_TRY_CTX(kernel_.get_link(ep.host_veth), nctx);
    if (link && link->master == info->bridge && link->up) continue;
    if (link) NET_CHECK(kernel_.ensure_port(ep.host_veth, info->bridge), nctx);
    else NET_CHECK(make_port(ep, netns_fd), nctx);
    repaired.push_back(ep.network);
  }
  return repaired;
}

Result<std::vector<std::string>> NetworkManager::observe_detached() {
  auto links = STACK_TRY_CTX(kernel_.list_links(kVethPrefix), "observe ports");
  std::map<std::string, const LinkInfo*, std::less<>> by_name;
  for (const auto& l : links) by_name[l.name] = &l;
  std::vector<std::string> out;
  for (const auto& [container, eps] : endpoints_)
    for (const auto& ep : eps) {
      const NetworkInfo* info = find(ep.network);
      auto it = by_name.find(ep.host_veth);
      if (info && !info->sublinks() && (it == by_name.end() || it->second->master != info->bridge || !it->second->up)) {
        out.push_back(container);
        break;
      }
    }
  return out;
}

Result<void> NetworkManager::detach(std::string_view container) {
  auto ctx = "detach " + std::string(container);
  for (const auto& [name, info] : networks_) NET_CHECK(ipam_.release(name, container), ctx);
  std::vector<Endpoint> gone;
  if (auto it = endpoints_.find(container); it != endpoints_.end()) {
    gone = std::move(it->second);
    endpoints_.erase(it);
  }
  if (auto it = ports_.find(container); it != ports_.end()) {
    ports_.erase(it);
    NET_CHECK(apply_firewall(), ctx);
  } else if (!gone.empty()) {
    NET_CHECK(change_ports({}, gone), ctx);
  }
  return {};
}

Result<void> NetworkManager::add_remote(std::string_view network, Ipv4 ip, const Mac& mac,
                                        Ipv4 underlay) {
  auto ctx = "remote endpoint " + ip.str() + " on " + std::string(network);
  const NetworkInfo* info = find(network);
  if (!info || info->vxlan.empty()) return fail(ctx + ": not an overlay network here");
  // The FDB entry first: once ARP is answered, frames must already know where to go.
  NET_CHECK(kernel_.append_fdb(info->vxlan, mac, underlay), ctx);
  NET_CHECK(kernel_.add_neighbour(-1, info->vxlan, ip, mac), ctx);
  return {};
}

Result<void> NetworkManager::remove_remote(std::string_view network, Ipv4 ip, const Mac& mac,
                                           Ipv4 underlay) {
  auto ctx = "remove remote endpoint " + ip.str() + " on " + std::string(network);
  const NetworkInfo* info = find(network);
  if (!info || info->vxlan.empty()) return {};  // the network went, and its device with it
  NET_CHECK(kernel_.delete_neighbour(info->vxlan, ip), ctx);
  NET_CHECK(kernel_.delete_fdb(info->vxlan, mac, underlay), ctx);
  return {};
}

std::vector<Endpoint> NetworkManager::endpoints(std::string_view container) const {
  auto it = endpoints_.find(container);
  return it == endpoints_.end() ? std::vector<Endpoint>{} : it->second;
}

Result<void> NetworkManager::publish(std::string_view container, std::vector<PortMapping> ports) {
  auto ctx = "publish ports of " + std::string(container);
  // Its first endpoint; for a container adopted after a daemon restart (no endpoint known in
  // memory), the address the store holds for it on a network that is not internal.
  std::optional<Ipv4> target;
  std::optional<Ipv6> target6;
  std::string via;  // the network the ports lead to
  // Never a macvlan or ipvlan one: docker publishes no port there.
  for (const auto& ep : endpoints(container)) {
    const NetworkInfo* info = find(ep.network);
    if (target || (info && info->sublinks())) continue;
    target = ep.address.address;
    if (ep.address6) target6 = ep.address6->address;
    via = ep.network;
  }
  for (const auto& [name, info] : networks_)
    if (!target && !info.spec.internal && !info.sublinks())
      if ((target = ipam_.address_of(name, container))) via = name;
  for (auto& p : ports) {
    if (p.container_ip.value == 0) {
      if (!target) return fail(ctx + ": not attached to any network");
      p.container_ip = *target;
    }
    if (!p.container_ip6) p.container_ip6 = target6;
    NET_CHECK(ipv6_only_port(via, p), ctx);
    if (p.host_ip6 && !p.container_ip6)
      return fail(ctx + ": port " + std::to_string(p.host_port) + " is published on " +
                  p.host_ip6->str() + " but the container has no IPv6 address (enable_ipv6)");
  }
  auto previous = ports_[std::string(container)];
  ports_[std::string(container)] = std::move(ports);
  if (auto r = apply_firewall(); !r) {
    ports_[std::string(container)] = std::move(previous);
    return fail(r.error().wrap(ctx));
  }
  return {};
}

Result<void> NetworkManager::ipv6_only_port(std::string_view network, PortMapping& p) const {
  const NetworkInfo* info = find(network);
  if (!info || info->spec.enable_ipv4) return {};
  // The container has no IPv4 address: its ports are published on the host's IPv6 addresses
  // only ("::" when no host IP was given), as docker does on an IPv6-only network.
  if (p.host_ip)
    return fail("port " + std::to_string(p.host_port) + " is published on " + p.host_ip->str() +
                " but network " + std::string(network) + " has no IPv4 (enable_ipv4: false)");
  if (!p.host_ip6) p.host_ip6 = Ipv6{};
  return {};
}

Result<void> NetworkManager::rename(std::string_view from, std::string_view to) {
  auto ctx = "rename " + std::string(from) + " to " + std::string(to);
  for (const auto& [name, info] : networks_)
    if (auto ip = ipam_.address_of(name, from)) {
      NET_CHECK(ipam_.release(name, from), ctx);
      NET_CHECK(ipam_.allocate(name, to, *ip), ctx);  // the same address, under the new owner
    }
  for (auto* map : {&endpoints_})
    if (auto node = map->extract(std::string(from)); !node.empty()) {
      node.key() = std::string(to);
      map->insert(std::move(node));
    }
  if (auto node = ports_.extract(std::string(from)); !node.empty()) {
    node.key() = std::string(to);
    ports_.insert(std::move(node));
  }
  return {};
}

Result<void> NetworkManager::switch_ports(std::string_view from, std::string_view to,
                                          std::vector<PortMapping> ports) {
  auto ctx = "move published ports from " + std::string(from) + " to " + std::string(to);
  auto eps = endpoints(to);
  std::optional<Ipv4> target;
  std::optional<Ipv6> target6;
  if (!eps.empty()) target = eps.front().address.address;
  if (!eps.empty() && eps.front().address6) target6 = eps.front().address6->address;
  for (auto& p : ports) {
    if (p.container_ip.value == 0) {
      if (!target) return fail(ctx + ": " + std::string(to) + " is not attached to any network");
      p.container_ip = *target;
    }
    if (!p.container_ip6) p.container_ip6 = target6;
    if (!eps.empty()) NET_CHECK(ipv6_only_port(eps.front().network, p), ctx);
  }
  auto old = ports_.extract(std::string(from));
  ports_[std::string(to)] = std::move(ports);
  if (auto r = apply_firewall(); !r) {
    ports_.erase(std::string(to));
    if (!old.empty()) ports_.insert(std::move(old));
    return fail(r.error().wrap(ctx));
  }
  return {};
}

FirewallModel NetworkManager::firewall_model() const {
  FirewallModel m;
  m.table = table_name(options_.instance);
  // macvlan and ipvlan networks have no bridge: their traffic never crosses the host's
  // forwarding path, and they publish no port.
  for (const auto& [name, info] : networks_)
    if (!info.sublinks()) m.networks.push_back({info.bridge, info.addressing.subnet, info.spec.internal, info.vxlan,
                          info.addressing.gateway,
                          info.v6 ? std::optional<Cidr6>(info.v6->subnet) : std::nullopt});
  for (const auto& [container, ports] : ports_)
    m.ports.insert(m.ports.end(), ports.begin(), ports.end());
  m.mesh = mesh_;
  for (const auto& [container, eps] : endpoints_)
    for (const auto& ep : eps)
      if (!ep.host_veth.empty()) m.endpoints.push_back(firewall_endpoint(ep));
  return m;
}

Result<void> NetworkManager::set_mesh(std::vector<MeshPort> mesh) {
  if (mesh == mesh_) return {};
  auto old = std::exchange(mesh_, std::move(mesh));
  if (auto r = apply_firewall(); !r) {
    mesh_ = std::move(old);
    return fail(r.error().wrap("routing mesh"));
  }
  return {};
}

Result<void> NetworkManager::apply_firewall() {
  if (held_) {
    dirty_ = true;
    return {};
  }
  return firewall_.apply(firewall_model());
}

Result<void> NetworkManager::change_ports(const std::vector<Endpoint>& add,
                                          const std::vector<Endpoint>& remove) {
  if (held_) {
    dirty_ = true;
    return {};
  }
  auto entries = [](const std::vector<Endpoint>& eps) {
    std::vector<FirewallEndpoint> out;
    for (const auto& ep : eps)
      if (!ep.host_veth.empty()) out.push_back(firewall_endpoint(ep));
    return out;
  };
  auto r = firewall_.change_endpoints(table_name(options_.instance), entries(add), entries(remove));
  if (r) return {};
  // The sets were not as the model says (someone changed the tables): all of it, then.
  log::get("net")->warn("{}; applying the whole firewall", r.error().message);
  return apply_firewall();
}

Result<void> NetworkManager::release_firewall() {
  held_ = false;
  if (!dirty_) return {};
  dirty_ = false;
  return apply_firewall();
}

Result<std::vector<std::string>> NetworkManager::observe_missing() {
  std::vector<std::string> out;
  for (const auto& [name, info] : networks_) {
    if (info.sublinks()) {
      if (STACK_TRY_CTX(sublinks_missing(info), "observe networks")) out.push_back(name);
      continue;
    }
    auto bridge = STACK_TRY_CTX(kernel_.get_link(info.bridge), "observe networks");
    bool missing = !bridge;
    if (!info.vxlan.empty()) {
      auto vx = STACK_TRY_CTX(kernel_.get_link(info.vxlan), "observe networks");
      missing = missing || !vx || vx->master != info.bridge;
    }
    if (missing) out.push_back(name);
  }
  return out;
}

}  // namespace stack::net
