// NetworkManager's macvlan and ipvlan networks (docker's drivers of those names): the parent
// (a dummy link stack makes when none is given, the 802.1q link "IFACE.VLAN" made when missing),
// the containers' children born in their namespaces, and the DNS shim.
//
// Why a shim: the host cannot reach a macvlan/ipvlan child through the parent (the kernel
// hands the parent's own traffic to the wire, never to its children), so the embedded DNS
// cannot listen on the parent or on a bridge. Each such network gets one more child of the
// same parent on the host, "stk-<hash8>-s", holding an address of the subnet that IPAM
// reserves for it (owner kShimOwner); the DNS server listens there and the containers'
// resolv.conf points there. Children in bridge mode (macvlan) or of one port (ipvlan, whose
// mode is the port's) reach each other inside the kernel, so no frame leaves the host for a
// lookup. Docker answers on 127.0.0.11 in each container's namespace instead; a DNAT there
// towards the host would still need a path to the host, which is what the shim is. A macvlan
// child in private or vepa mode cannot reach the shim (the kernel forbids it, or the switch
// must hairpin): the reconciler warns at up. The shim also gives the host a route to the
// containers (docker's documented workaround). Acts on the manager's namespace.
#include <algorithm>

#include "common/log.h"
#include "net/check.h"
#include "net/naming.h"
#include "net/network.h"

namespace stack::net {
namespace {

// "eth0.50" -> ("eth0", 50); no VLAN -> (name, 0).
std::pair<std::string, int> split_vlan(const std::string& parent) {
  auto dot = parent.rfind('.');
  if (dot == std::string::npos || dot + 1 == parent.size()) return {parent, 0};
  std::string id = parent.substr(dot + 1);
  if (!std::all_of(id.begin(), id.end(), ::isdigit) || id.size() > 4) return {parent, 0};
  return {parent.substr(0, dot), std::atoi(id.c_str())};
}

const char* kind_of(const NetworkInfo& info) {
  return info.spec.driver == Driver::kMacvlan ? "macvlan" : "ipvlan";
}

}  // namespace

Result<void> NetworkManager::ensure_sublinks(const NetworkInfo& info) {
  if (!sublinks_) return fail(std::string(kind_of(info)) + " networks are not available here");
  if (info.spec.parent.empty()) {
    NET_CHECK(sublinks_->ensure_dummy(info.parent), "dummy parent");
  } else if (auto [base, id] = split_vlan(info.parent); id > 0) {
    auto ours =
        sublinks_->ensure_vlan(info.parent, base, id, "stack:" + table_name(options_.instance));
    if (!ours) return fail(ours.error().wrap("parent"));
  } else {
    auto link = STACK_TRY_CTX(kernel_.get_link(info.parent), "parent");
    if (!link) return fail("parent " + info.parent + ": no such link", ENODEV);
  }
  auto shim = STACK_TRY_CTX(kernel_.get_link(info.shim), "DNS shim");
  if (shim && shim->kind != kind_of(info)) {
    // Not ours as we make it (a leftover of another kind): made again.
    NET_CHECK(kernel_.delete_link(info.shim), "stale DNS shim");
    shim.reset();
  }
  if (!shim) {
    SublinkConfig c{info.shim, info.parent, kind_of(info), info.spec.mode, info.spec.flag};
    // The shim must reach the containers' children: a macvlan one in bridge mode whatever
    // theirs (only bridge-mode children are switched locally); an ipvlan one in the port's mode
    // (ipvlan's mode belongs to the parent's port: a child of another mode would change it).
    if (info.spec.driver == Driver::kMacvlan) c.mode = "bridge";
    c.mtu = info.mtu;
    if (info.spec.driver == Driver::kMacvlan) c.mac = container_mac(*info.shim_address);
    NET_CHECK(sublinks_->create_sublink(c), "DNS shim");
  }
  InterfaceConfig iface{-1, info.shim, Cidr{*info.shim_address, info.addressing.subnet.prefix},
                        info.mtu, std::nullopt};
  NET_CHECK(kernel_.configure_interface(iface), "DNS shim");
  return {};
}

Result<void> NetworkManager::remove_sublinks(const NetworkInfo& info) {
  auto gone = [&](const std::string& link) -> Result<void> {
    auto r = kernel_.delete_link(link);
    if (!r && r.error().sys_errno != ENODEV) return fail(r.error());
    return {};
  };
  NET_CHECK(gone(info.shim), "DNS shim");
  // The parent goes only when stack made it and no other network of this instance uses it.
  for (const auto& [name, other] : networks_)
    if (other.sublinks() && other.parent == info.parent) return {};
  if (info.spec.parent.empty()) return gone(info.parent);
  if (split_vlan(info.parent).second == 0) return {};
  auto alias = STACK_TRY_CTX(sublinks_ ? sublinks_->alias_of(info.parent)
                                       : Result<std::optional<std::string>>(std::nullopt),
                             "parent");
  if (alias && *alias == "stack:" + table_name(options_.instance)) return gone(info.parent);
  return {};
}

Result<void> NetworkManager::make_sublink_port(const NetworkInfo& info, const Endpoint& ep,
                                               int netns_fd) {
  if (!sublinks_) return fail(std::string(kind_of(info)) + " networks are not available here");
  SublinkConfig c{ep.ifname, info.parent, kind_of(info), info.spec.mode, info.spec.flag, netns_fd};
  c.mac = ep.mac;
  c.mtu = ep.mtu;
  NET_CHECK(sublinks_->create_sublink(c), "interface");
  InterfaceConfig iface{netns_fd, ep.ifname, ep.address, ep.mtu, std::nullopt};
  if (ep.default_route) iface.gateway = ep.gateway;
  iface.extra = ep.extra;
  return kernel_.configure_interface(iface);
}

Result<bool> NetworkManager::sublinks_missing(const NetworkInfo& info) {
  // The parent only has to exist: a user's parent that is down is the user's to bring up.
  auto parent = STACK_TRY_CTX(kernel_.get_link(info.parent), "observe networks");
  auto shim = STACK_TRY_CTX(kernel_.get_link(info.shim), "observe networks");
  return !parent || !shim || !shim->up;
}

}  // namespace stack::net
