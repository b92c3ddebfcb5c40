// The real Netlink, through libnl-3: the only file that includes libnl. Acts on the network
// namespace of the thread that created it; reaches into a container's namespace through a
// socket opened there by a short-lived thread (setns affects only the calling thread).
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <thread>

#include "common/unique_fd.h"
#include "net/check.h"
#include "net/libnl_error.h"
#include "net/netlink.h"

namespace stack::net {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using SockPtr = std::unique_ptr<nl_sock, Deleter<nl_sock, nl_socket_free>>;
using LinkPtr = std::unique_ptr<rtnl_link, Deleter<rtnl_link, rtnl_link_put>>;
using AddrPtr = std::unique_ptr<nl_addr, Deleter<nl_addr, nl_addr_put>>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, Deleter<rtnl_addr, rtnl_addr_put>>;
using RoutePtr = std::unique_ptr<rtnl_route, Deleter<rtnl_route, rtnl_route_put>>;
using NeighPtr = std::unique_ptr<rtnl_neigh, Deleter<rtnl_neigh, rtnl_neigh_put>>;
using CachePtr = std::unique_ptr<nl_cache, Deleter<nl_cache, nl_cache_free>>;
using MsgPtr = std::unique_ptr<nl_msg, Deleter<nl_msg, nlmsg_free>>;

AddrPtr inet_addr(Ipv4 ip, int prefix) {
  uint32_t be = ip.network_order();
  AddrPtr a(nl_addr_build(AF_INET, &be, sizeof be));
  nl_addr_set_prefixlen(a.get(), prefix);
  return a;
}

AddrPtr inet6_addr(const Ipv6& ip, int prefix) {
  AddrPtr a(nl_addr_build(AF_INET6, ip.bytes.data(), ip.bytes.size()));
  nl_addr_set_prefixlen(a.get(), prefix);
  return a;
}

AddrPtr ll_addr(const Mac& mac) { return AddrPtr(nl_addr_build(AF_LLC, mac.bytes.data(), 6)); }

Result<SockPtr> open_socket() {
  SockPtr sk(nl_socket_alloc());
  if (!sk) return fail("netlink socket: out of memory", ENOMEM);
  if (int err = nl_connect(sk.get(), NETLINK_ROUTE); err < 0)
    return fail(nl_error("netlink connect", err));
  return sk;
}

// A rtnetlink socket bound to the namespace NETNS_FD: sockets stay in the namespace they were
// created in, so a thread enters it, opens the socket, and exits; the caller uses it from here.
Result<SockPtr> open_socket_in(int netns_fd) {
  if (netns_fd < 0) return open_socket();
  Result<SockPtr> out = fail("not run");
  std::thread t([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      out = fail_errno("setns");
      return;
    }
    out = open_socket();
  });
  t.join();
  return out;
}

Result<LinkPtr> find_link(nl_sock* sk, std::string_view name) {
  rtnl_link* link = nullptr;
  std::string n(name);
  if (int err = rtnl_link_get_kernel(sk, 0, n.c_str(), &link); err < 0) {
    return fail(nl_error("link " + n, err));
  }
  return LinkPtr(link);
}

// The link, or nullptr when there is none.
Result<LinkPtr> try_find_link(nl_sock* sk, std::string_view name) {
  auto r = find_link(sk, name);
  if (!r && r.error().sys_errno == ENODEV) return LinkPtr();
  return r;
}

LinkInfo describe(rtnl_link* link, nl_sock* sk, nl_cache* cache) {
  LinkInfo info;
  info.name = rtnl_link_get_name(link);
  if (const char* kind = rtnl_link_get_type(link)) info.kind = kind;
  info.mtu = static_cast<int>(rtnl_link_get_mtu(link));
  info.up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
  if (nl_addr* ll = rtnl_link_get_addr(link); ll && nl_addr_get_len(ll) == 6)
    std::memcpy(info.mac.bytes.data(), nl_addr_get_binary_addr(ll), 6);
  if (int master = rtnl_link_get_master(link); master > 0) {
    char buf[IFNAMSIZ] = {};
    if (cache) {
      if (rtnl_link_i2name(cache, master, buf, sizeof buf)) info.master = buf;
    } else {
      rtnl_link* m = nullptr;
      if (rtnl_link_get_kernel(sk, master, nullptr, &m) == 0) {
        info.master = rtnl_link_get_name(m);
        rtnl_link_put(m);
      }
    }
  }
  return info;
}

// MTU, master and up on an existing link, changed only where they differ.
Result<void> converge_link(nl_sock* sk, rtnl_link* link, int mtu, int master) {
  LinkPtr change(rtnl_link_alloc());
  bool changed = false;
  if (mtu > 0 && rtnl_link_get_mtu(link) != static_cast<unsigned>(mtu)) {
    rtnl_link_set_mtu(change.get(), static_cast<unsigned>(mtu));
    changed = true;
  }
  if (master > 0 && rtnl_link_get_master(link) != master) {
    rtnl_link_set_master(change.get(), master);
    changed = true;
  }
  if (!(rtnl_link_get_flags(link) & IFF_UP)) {
    rtnl_link_set_flags(change.get(), IFF_UP);
    changed = true;
  }
  if (!changed) return {};
  if (int err = rtnl_link_change(sk, link, change.get(), 0); err < 0)
    return fail(nl_error(std::string("change link ") + rtnl_link_get_name(link), err));
  return {};
}

Result<void> add_address(nl_sock* sk, int ifindex, const Cidr& cidr) {
  RtAddrPtr addr(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  auto local = inet_addr(cidr.address, cidr.prefix);
  if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0)
    return fail(nl_error("address", err));
  int err = rtnl_addr_add(sk, addr.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (err < 0 && err != -NLE_EXIST) return fail(nl_error("add address " + cidr.str(), err));
  return {};
}

// IFA_F_NODAD: the addresses are stack's own choice in its own subnet; with DAD they would be
// "tentative" for about a second (bind and connect fail with EADDRNOTAVAIL meanwhile).
Result<void> add_address6(nl_sock* sk, int ifindex, const Cidr6& cidr) {
  RtAddrPtr addr(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  auto local = inet6_addr(cidr.address, cidr.prefix);
  if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0)
    return fail(nl_error("address", err));
  rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  int err = rtnl_addr_add(sk, addr.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (err < 0 && err != -NLE_EXIST) return fail(nl_error("add address " + cidr.str(), err));
  return {};
}

// IFLA_BRPORT_MODE (hairpin) is a bridge-port attribute: RTM_SETLINK with family AF_BRIDGE
// and IFLA_PROTINFO. It cannot ride on the RTM_NEWLINK that creates the port.
Result<void> set_hairpin(nl_sock* sk, int ifindex) {
  MsgPtr msg(nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK));
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  ifi.ifi_index = ifindex;
  if (nlmsg_append(msg.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) return fail("hairpin: message");
  nlattr* nest = nla_nest_start(msg.get(), IFLA_PROTINFO | NLA_F_NESTED);
  nla_put_u8(msg.get(), IFLA_BRPORT_MODE, 1);
  nla_nest_end(msg.get(), nest);
  int err = nl_send_sync(sk, msg.release());  // frees the message
  if (err < 0) return fail(nl_error("set hairpin", err));
  return {};
}

Result<void> write_sysctl(std::string_view key, std::string_view value) {
  std::string path = "/proc/sys/" + std::string(key);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("set sysctl " + path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return fail_errno("set sysctl " + path);
  return {};
}

// /proc/net/ipv6_route (of the calling thread's namespace): "DEST PLEN SRC SPLEN NEXTHOP METRIC
// REFCNT USE FLAGS DEVICE", addresses in 32 hex digits.
Result<std::vector<std::string>> read_ipv6_default_devices() {
  std::ifstream in("/proc/net/ipv6_route");
  if (!in) return fail_errno("read /proc/net/ipv6_route");
  std::vector<std::string> out;
  std::string dest, plen, src, splen, hop, metric, refcnt, use, flags, dev;
  while (in >> dest >> plen >> src >> splen >> hop >> metric >> refcnt >> use >> flags >> dev)
    if (plen == "00" && dest == std::string(32, '0') && dev != "lo") out.push_back(dev);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<std::string> read_sysctl(std::string_view key) {
  std::string path = "/proc/sys/" + std::string(key);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("read sysctl " + path);
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n < 0) return fail_errno("read sysctl " + path);
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class LibnlNetlink final : public Netlink {
 public:
  LibnlNetlink(SockPtr sk, UniqueFd netns, ino_t ino)
      : sk_(std::move(sk)), netns_(std::move(netns)), netns_ino_(ino) {}

  Result<void> ensure_bridge(const BridgeConfig& c) override {
    auto ctx = "ensure bridge " + c.name;
    auto existing = STACK_TRY_CTX(try_find_link(sk_.get(), c.name), ctx);
    if (!existing) {
      LinkPtr link(rtnl_link_alloc());
      rtnl_link_set_name(link.get(), c.name.c_str());
      if (int err = rtnl_link_set_type(link.get(), "bridge"); err < 0)
        return fail(nl_error(ctx, err));
      rtnl_link_set_mtu(link.get(), static_cast<unsigned>(c.mtu));
      if (c.mac) rtnl_link_set_addr(link.get(), ll_addr(*c.mac).get());
      rtnl_link_set_flags(link.get(), IFF_UP);
      int err = rtnl_link_add(sk_.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL);
      if (err < 0 && err != -NLE_EXIST) return fail(nl_error(ctx, err));
      existing = STACK_TRY_CTX(find_link(sk_.get(), c.name), ctx);
    } else if (const char* kind = rtnl_link_get_type(existing.get());
               !kind || std::strcmp(kind, "bridge") != 0) {
      return fail(ctx + ": a link of that name exists and is not a bridge", EEXIST);
    }
    NET_CHECK(converge_link(sk_.get(), existing.get(), c.mtu, 0), ctx);
    if (c.address4)
      NET_CHECK(add_address(sk_.get(), rtnl_link_get_ifindex(existing.get()), c.gateway), ctx);
    if (c.gateway6)
      NET_CHECK(add_address6(sk_.get(), rtnl_link_get_ifindex(existing.get()), *c.gateway6), ctx);
    return {};
  }

  Result<void> delete_link(std::string_view name) override {
    LinkPtr link(rtnl_link_alloc());
    std::string n(name);
    rtnl_link_set_name(link.get(), n.c_str());
    if (int err = rtnl_link_delete(sk_.get(), link.get()); err < 0)
      return fail(nl_error("delete link " + n, err));
    return {};
  }

  Result<std::optional<LinkInfo>> get_link(std::string_view name) override {
    auto link = STACK_TRY_CTX(try_find_link(sk_.get(), name), "get link");
    if (!link) return std::optional<LinkInfo>();
    return std::optional<LinkInfo>(describe(link.get(), sk_.get(), nullptr));
  }

  Result<std::optional<LinkInfo>> get_link_in(int netns_fd, std::string_view name) override {
    auto ctx = "get link " + std::string(name) + " in container namespace";
    auto sk = STACK_TRY_CTX(open_socket_in(netns_fd), ctx);
    auto link = STACK_TRY_CTX(try_find_link(sk.get(), name), ctx);
    if (!link) return std::optional<LinkInfo>();
    return std::optional<LinkInfo>(describe(link.get(), sk.get(), nullptr));
  }

  Result<std::vector<LinkInfo>> list_links(std::string_view prefix) override {
    nl_cache* raw = nullptr;
    if (int err = rtnl_link_alloc_cache(sk_.get(), AF_UNSPEC, &raw); err < 0)
      return fail(nl_error("list links", err));
    CachePtr cache(raw);
    std::vector<LinkInfo> out;
    for (nl_object* o = nl_cache_get_first(raw); o; o = nl_cache_get_next(o)) {
      auto* link = reinterpret_cast<rtnl_link*>(o);
      std::string_view name = rtnl_link_get_name(link);
      if (name.starts_with(prefix)) out.push_back(describe(link, sk_.get(), raw));
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
    return out;
  }

  Result<void> create_veth(const VethConfig& c) override {
    auto ctx = "create veth " + c.host_name;
    auto bridge = STACK_TRY_CTX(find_link(sk_.get(), c.bridge), ctx);
    LinkPtr veth(rtnl_link_veth_alloc());
    if (!veth) return fail(ctx + ": out of memory", ENOMEM);
    rtnl_link_set_name(veth.get(), c.host_name.c_str());
    rtnl_link_set_mtu(veth.get(), static_cast<unsigned>(c.mtu));
    rtnl_link_set_master(veth.get(), rtnl_link_get_ifindex(bridge.get()));
    rtnl_link_set_flags(veth.get(), IFF_UP);
    LinkPtr peer(rtnl_link_veth_get_peer(veth.get()));  // takes a reference
    rtnl_link_set_name(peer.get(), c.peer_name.c_str());
    rtnl_link_set_mtu(peer.get(), static_cast<unsigned>(c.mtu));
    if (c.peer_mac) rtnl_link_set_addr(peer.get(), ll_addr(*c.peer_mac).get());
    // Not IFF_UP on the peer: the kernel (6.x) answers ENOTCONN when asked to open the peer
    // before the pair is linked. configure_interface brings it up from inside.
    rtnl_link_set_ns_fd(peer.get(), c.netns_fd);
    if (int err = rtnl_link_add(sk_.get(), veth.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
      return fail(nl_error(ctx, err));
    auto created = STACK_TRY_CTX(find_link(sk_.get(), c.host_name), ctx);
    NET_CHECK(set_hairpin(sk_.get(), rtnl_link_get_ifindex(created.get())), ctx);
    return {};
  }

  Result<void> ensure_port(std::string_view link, std::string_view bridge) override {
    auto ctx = "attach " + std::string(link) + " to " + std::string(bridge);
    auto port = STACK_TRY_CTX(find_link(sk_.get(), link), ctx);
    auto br = STACK_TRY_CTX(find_link(sk_.get(), bridge), ctx);
    int master = rtnl_link_get_ifindex(br.get());
    bool enslaved = rtnl_link_get_master(port.get()) == master;
    NET_CHECK(converge_link(sk_.get(), port.get(), 0, master), ctx);
    // Hairpin is a property of the port, lost with the old bridge.
    if (!enslaved) NET_CHECK(set_hairpin(sk_.get(), rtnl_link_get_ifindex(port.get())), ctx);
    return {};
  }

  Result<void> configure_interface(const InterfaceConfig& c) override {
    auto ctx = "configure " + c.name + " in container namespace";
    auto sk = STACK_TRY_CTX(open_socket_in(c.netns_fd), ctx);
    auto link = STACK_TRY_CTX(find_link(sk.get(), c.name), ctx);
    int ifindex = rtnl_link_get_ifindex(link.get());
    NET_CHECK(converge_link(sk.get(), link.get(), c.mtu, 0), ctx);
    if (c.address4) NET_CHECK(add_address(sk.get(), ifindex, c.address), ctx);
    if (c.address4 && c.gateway) {
      RoutePtr route(rtnl_route_alloc());
      rtnl_route_set_family(route.get(), AF_INET);
      rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
      rtnl_route_set_dst(route.get(), inet_addr(Ipv4{0}, 0).get());
      rtnl_nexthop* nh = rtnl_route_nh_alloc();
      rtnl_route_nh_set_ifindex(nh, ifindex);
      rtnl_route_nh_set_gateway(nh, inet_addr(*c.gateway, 32).get());
      rtnl_route_add_nexthop(route.get(), nh);  // the route owns it now
      int err = rtnl_route_add(sk.get(), route.get(), NLM_F_CREATE | NLM_F_EXCL);
      if (err < 0 && err != -NLE_EXIST)
        return fail(nl_error(ctx + ": default route via " + c.gateway->str(), err));
    }
    if (c.address6) NET_CHECK(add_address6(sk.get(), ifindex, *c.address6), ctx);
    for (const auto& a : c.extra) NET_CHECK(add_address(sk.get(), ifindex, a), ctx);
    for (const auto& a : c.extra6) NET_CHECK(add_address6(sk.get(), ifindex, a), ctx);
    if (c.gateway6) {
      RoutePtr route(rtnl_route_alloc());
      rtnl_route_set_family(route.get(), AF_INET6);
      rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
      rtnl_route_set_dst(route.get(), inet6_addr(Ipv6{}, 0).get());
      rtnl_nexthop* nh = rtnl_route_nh_alloc();
      rtnl_route_nh_set_ifindex(nh, ifindex);
      rtnl_route_nh_set_gateway(nh, inet6_addr(*c.gateway6, 128).get());
      rtnl_route_add_nexthop(route.get(), nh);
      int err = rtnl_route_add(sk.get(), route.get(), NLM_F_CREATE | NLM_F_EXCL);
      if (err < 0 && err != -NLE_EXIST)
        return fail(nl_error(ctx + ": IPv6 default route via " + c.gateway6->str(), err));
    }
    return {};
  }

  Result<void> ensure_vxlan(const VxlanConfig& c) override {
    auto ctx = "ensure vxlan " + c.name;
    auto bridge = STACK_TRY_CTX(find_link(sk_.get(), c.bridge), ctx);
    int master = rtnl_link_get_ifindex(bridge.get());
    auto existing = STACK_TRY_CTX(try_find_link(sk_.get(), c.name), ctx);
    if (existing) {
      if (!rtnl_link_is_vxlan(existing.get()))
        return fail(ctx + ": a link of that name exists and is not a vxlan device", EEXIST);
      return converge_link(sk_.get(), existing.get(), c.mtu, master).map_error([&](Error e) {
        return e.wrap(ctx);
      });
    }
    LinkPtr link(rtnl_link_vxlan_alloc());
    rtnl_link_set_name(link.get(), c.name.c_str());
    rtnl_link_vxlan_set_id(link.get(), c.vni);
    rtnl_link_vxlan_set_port(link.get(), c.port);
    rtnl_link_vxlan_set_local(link.get(), inet_addr(c.local, 32).get());
    rtnl_link_vxlan_disable_learning(link.get());
    if (c.proxy) rtnl_link_vxlan_enable_proxy(link.get());
    rtnl_link_set_mtu(link.get(), static_cast<unsigned>(c.mtu));
    rtnl_link_set_master(link.get(), master);
    rtnl_link_set_flags(link.get(), IFF_UP);
    if (int err = rtnl_link_add(sk_.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
      return fail(nl_error(ctx, err));
    return {};
  }

  Result<void> append_fdb(std::string_view device, const Mac& mac, Ipv4 remote) override {
    auto ctx = "append fdb " + mac.str() + " dst " + remote.str() + " on " + std::string(device);
    auto link = STACK_TRY_CTX(find_link(sk_.get(), device), ctx);
    NeighPtr n(rtnl_neigh_alloc());
    rtnl_neigh_set_ifindex(n.get(), rtnl_link_get_ifindex(link.get()));
    rtnl_neigh_set_dst(n.get(), inet_addr(remote, 32).get());  // before the family: libnl checks it
    rtnl_neigh_set_family(n.get(), AF_BRIDGE);
    rtnl_neigh_set_lladdr(n.get(), ll_addr(mac).get());
    rtnl_neigh_set_flags(n.get(), NTF_SELF);
    rtnl_neigh_set_state(n.get(), NUD_PERMANENT | NUD_NOARP);
    int err = rtnl_neigh_add(sk_.get(), n.get(), NLM_F_CREATE | NLM_F_APPEND);
    if (err < 0 && err != -NLE_EXIST) return fail(nl_error(ctx, err));
    return {};
  }

  Result<std::vector<Ipv4>> list_fdb_remotes(std::string_view device) override;

  Result<void> delete_fdb(std::string_view device, const Mac& mac, Ipv4 remote) override {
    auto ctx = "delete fdb " + mac.str() + " dst " + remote.str() + " on " + std::string(device);
    auto link = STACK_TRY_CTX(find_link(sk_.get(), device), ctx);
    NeighPtr n(rtnl_neigh_alloc());
    rtnl_neigh_set_ifindex(n.get(), rtnl_link_get_ifindex(link.get()));
    rtnl_neigh_set_dst(n.get(), inet_addr(remote, 32).get());
    rtnl_neigh_set_family(n.get(), AF_BRIDGE);
    rtnl_neigh_set_lladdr(n.get(), ll_addr(mac).get());
    rtnl_neigh_set_flags(n.get(), NTF_SELF);
    int err = rtnl_neigh_delete(sk_.get(), n.get(), 0);
    if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR) return fail(nl_error(ctx, err));
    return {};
  }

  Result<void> delete_neighbour(std::string_view device, Ipv4 ip) override {
    auto ctx = "delete neighbour " + ip.str() + " on " + std::string(device);
    auto link = STACK_TRY_CTX(find_link(sk_.get(), device), ctx);
    NeighPtr n(rtnl_neigh_alloc());
    rtnl_neigh_set_ifindex(n.get(), rtnl_link_get_ifindex(link.get()));
    rtnl_neigh_set_dst(n.get(), inet_addr(ip, 32).get());
    int err = rtnl_neigh_delete(sk_.get(), n.get(), 0);
    if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR) return fail(nl_error(ctx, err));
    return {};
  }

  Result<void> add_neighbour(int netns_fd, std::string_view device, Ipv4 ip,
                             const Mac& mac) override {
    auto ctx = "add neighbour " + ip.str() + " lladdr " + mac.str() + " on " + std::string(device);
    auto sk = STACK_TRY_CTX(open_socket_in(netns_fd), ctx);
    auto link = STACK_TRY_CTX(find_link(sk.get(), device), ctx);
    NeighPtr n(rtnl_neigh_alloc());
    rtnl_neigh_set_ifindex(n.get(), rtnl_link_get_ifindex(link.get()));
    rtnl_neigh_set_dst(n.get(), inet_addr(ip, 32).get());
    rtnl_neigh_set_lladdr(n.get(), ll_addr(mac).get());
    rtnl_neigh_set_state(n.get(), NUD_PERMANENT);
    if (int err = rtnl_neigh_add(sk.get(), n.get(), NLM_F_CREATE | NLM_F_REPLACE); err < 0)
      return fail(nl_error(ctx, err));
    return {};
  }

  Result<std::vector<Cidr>> list_routed_subnets() override;

  // /proc/sys/net belongs to the namespace of the thread that opens it: when the caller's
  // thread is elsewhere, a short-lived thread enters ours to do it.
  Result<void> set_sysctl(std::string_view key, std::string_view value) override {
    return in_own_netns<void>([&] { return write_sysctl(key, value); });
  }

  Result<std::string> get_sysctl(std::string_view key) override {
    return in_own_netns<std::string>([&] { return read_sysctl(key); });
  }
  Result<std::vector<std::string>> ipv6_default_route_devices() override {
    return in_own_netns<std::vector<std::string>>([&] { return read_ipv6_default_devices(); });
  }
  Result<std::optional<Ipv4>> default_route_source() override;

 private:
  template <class T, class F>
  Result<T> in_own_netns(F&& f) {
    struct stat st {};
    if (::stat("/proc/thread-self/ns/net", &st) == 0 && st.st_ino == netns_ino_) return f();
    Result<T> out = fail("not run");
    std::thread t([&] {
      if (::setns(netns_.get(), CLONE_NEWNET) != 0) {
        out = fail_errno("setns");
        return;
      }
      out = f();
    });
    t.join();
    return out;
  }

  SockPtr sk_;
  UniqueFd netns_;  // the namespace this object acts on
  ino_t netns_ino_ = 0;
};

struct FdbDump {
  int ifindex;
  std::vector<Ipv4> remotes;
};

// One RTM_NEWNEIGH of an AF_BRIDGE dump: keep the all-zeros entries of our device.
int on_fdb_entry(nl_msg* msg, void* arg) {
  auto* dump = static_cast<FdbDump*>(arg);
  nlmsghdr* h = nlmsg_hdr(msg);
  if (h->nlmsg_type != RTM_NEWNEIGH) return NL_OK;
  auto* ndm = static_cast<ndmsg*>(nlmsg_data(h));
  if (ndm->ndm_ifindex != dump->ifindex) return NL_OK;
  nlattr* tb[NDA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(ndmsg), tb, NDA_MAX, nullptr) < 0) return NL_OK;
  if (!tb[NDA_LLADDR] || !tb[NDA_DST] || nla_len(tb[NDA_DST]) != 4 || nla_len(tb[NDA_LLADDR]) != 6)
    return NL_OK;
  Mac mac;
  std::memcpy(mac.bytes.data(), nla_data(tb[NDA_LLADDR]), 6);
  if (!mac.is_zero()) return NL_OK;
  uint32_t be = 0;
  std::memcpy(&be, nla_data(tb[NDA_DST]), 4);
  dump->remotes.push_back(Ipv4::from_network_order(be));
  return NL_OK;
}

Result<std::vector<Ipv4>> LibnlNetlink::list_fdb_remotes(std::string_view device) {
  auto ctx = "list fdb of " + std::string(device);
  auto link = STACK_TRY_CTX(find_link(sk_.get(), device), ctx);
  FdbDump dump{rtnl_link_get_ifindex(link.get()), {}};
  // A separate socket: the callback is per socket and must not stay on sk_.
  auto sk = STACK_TRY_CTX(open_socket(), ctx);
  ndmsg ndm{};
  ndm.ndm_family = AF_BRIDGE;
  if (int err = nl_send_simple(sk.get(), RTM_GETNEIGH, NLM_F_DUMP, &ndm, sizeof ndm); err < 0)
    return fail(nl_error(ctx, err));
  nl_socket_modify_cb(sk.get(), NL_CB_VALID, NL_CB_CUSTOM, on_fdb_entry, &dump);
  if (int err = nl_recvmsgs_default(sk.get()); err < 0) return fail(nl_error(ctx, err));
  std::sort(dump.remotes.begin(), dump.remotes.end());
  return dump.remotes;
}

Result<std::vector<Cidr>> LibnlNetlink::list_routed_subnets() {
  std::vector<Cidr> out;
  nl_cache* raw = nullptr;
  if (int err = rtnl_addr_alloc_cache(sk_.get(), &raw); err < 0)
    return fail(nl_error("list addresses", err));
  CachePtr addrs(raw);
  for (nl_object* o = nl_cache_get_first(raw); o; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    nl_addr* local = rtnl_addr_get_local(a);
    if (rtnl_addr_get_family(a) != AF_INET || !local || nl_addr_get_len(local) != 4) continue;
    uint32_t be = 0;
    std::memcpy(&be, nl_addr_get_binary_addr(local), 4);
    out.push_back(Cidr{Ipv4::from_network_order(be), rtnl_addr_get_prefixlen(a)}.network());
  }
  raw = nullptr;
  if (int err = rtnl_route_alloc_cache(sk_.get(), AF_INET, 0, &raw); err < 0)
    return fail(nl_error("list routes", err));
  CachePtr routes(raw);
  for (nl_object* o = nl_cache_get_first(raw); o; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    nl_addr* dst = rtnl_route_get_dst(r);
    if (rtnl_route_get_table(r) == RT_TABLE_LOCAL || !dst || nl_addr_get_len(dst) != 4) continue;
    int prefix = static_cast<int>(nl_addr_get_prefixlen(dst));
    if (prefix == 0) continue;  // the default route covers everything: not a conflict
    uint32_t be = 0;
    std::memcpy(&be, nl_addr_get_binary_addr(dst), 4);
    out.push_back(Cidr{Ipv4::from_network_order(be), prefix}.network());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// The RTA_PREFSRC of an RTM_GETROUTE reply.
int on_route_get(nl_msg* msg, void* arg) {
  nlmsghdr* h = nlmsg_hdr(msg);
  if (h->nlmsg_type != RTM_NEWROUTE) return NL_OK;
  nlattr* tb[RTA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(rtmsg), tb, RTA_MAX, nullptr) < 0) return NL_OK;
  if (tb[RTA_PREFSRC] && nla_len(tb[RTA_PREFSRC]) == 4) {
    uint32_t be = 0;
    std::memcpy(&be, nla_data(tb[RTA_PREFSRC]), 4);
    *static_cast<std::optional<Ipv4>*>(arg) = Ipv4::from_network_order(be);
  }
  return NL_OK;
}

Result<std::optional<Ipv4>> LibnlNetlink::default_route_source() {
  nl_cache* raw = nullptr;
  if (int err = rtnl_route_alloc_cache(sk_.get(), AF_INET, 0, &raw); err < 0)
    return fail(nl_error("list routes", err));
  CachePtr routes(raw);
  rtnl_route* best = nullptr;
  for (nl_object* o = nl_cache_get_first(raw); o; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    nl_addr* dst = rtnl_route_get_dst(r);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || (dst && nl_addr_get_prefixlen(dst) != 0))
      continue;
    if (!best || rtnl_route_get_priority(r) < rtnl_route_get_priority(best)) best = r;
  }
  if (!best) return std::optional<Ipv4>{};
  if (nl_addr* src = rtnl_route_get_pref_src(best); src && nl_addr_get_len(src) == 4) {
    uint32_t be = 0;
    std::memcpy(&be, nl_addr_get_binary_addr(src), 4);
    return std::optional<Ipv4>{Ipv4::from_network_order(be)};
  }
  // No preferred source on the route: ask the kernel which it would pick towards the gateway
  // (RTM_GETROUTE, rtnetlink(7)); nothing is sent on the wire.
  rtnl_nexthop* nh = rtnl_route_nexthop_n(best, 0);
  nl_addr* gw = nh ? rtnl_route_nh_get_gateway(nh) : nullptr;
  int oif = nh ? rtnl_route_nh_get_ifindex(nh) : 0;
  uint32_t dst_be = 0;
  if (gw && nl_addr_get_len(gw) == 4) std::memcpy(&dst_be, nl_addr_get_binary_addr(gw), 4);
  auto sk = STACK_TRY_CTX(open_socket(), "route lookup");
  nl_socket_disable_auto_ack(sk.get());  // the reply is the route, or an error
  MsgPtr m(nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_REQUEST));
  rtmsg rtm{};
  rtm.rtm_family = AF_INET;
  rtm.rtm_dst_len = 32;
  if (!m || nlmsg_append(m.get(), &rtm, sizeof rtm, NLMSG_ALIGNTO) < 0 ||
      nla_put_u32(m.get(), RTA_DST, dst_be) < 0 || (oif && nla_put_u32(m.get(), RTA_OIF, oif) < 0))
    return fail("route lookup: out of memory", ENOMEM);
  std::optional<Ipv4> out;
  nl_socket_modify_cb(sk.get(), NL_CB_VALID, NL_CB_CUSTOM, on_route_get, &out);
  if (int err = nl_send_auto(sk.get(), m.get()); err < 0) return fail(nl_error("route lookup", err));
  if (int err = nl_recvmsgs_default(sk.get()); err < 0) return fail(nl_error("route lookup", err));
  return out;
}

}  // namespace

Result<std::unique_ptr<Netlink>> make_libnl_netlink() {
  auto sk = STACK_TRY_CTX(open_socket(), "netlink");
  UniqueFd ns(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!ns || ::fstat(ns.get(), &st) != 0) return fail_errno("netlink: open own network namespace");
  return std::unique_ptr<Netlink>(
      std::make_unique<LibnlNetlink>(std::move(sk), std::move(ns), st.st_ino));
}

}  // namespace stack::net
