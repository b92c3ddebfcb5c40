// The real Sublinks: RTM_NEWLINK messages built attribute by attribute with libnl's message API
// (libnl 3.7 has no setter for IFLA_IPVLAN_FLAGS). The only other file that includes libnl;
// acts on the namespace of the thread that created it. See rtnetlink(7), ip-link(8).
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "net/check.h"
#include "net/libnl_error.h"
#include "net/sublinks.h"

namespace stack::net {
namespace {

struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
struct LinkFree {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
using SockPtr = std::unique_ptr<nl_sock, SockFree>;
using MsgPtr = std::unique_ptr<nl_msg, MsgFree>;
using LinkPtr = std::unique_ptr<rtnl_link, LinkFree>;

// macvlan_mode as if_link.h numbers it.
std::optional<uint32_t> macvlan_mode(const std::string& m) {
  if (m.empty() || m == "bridge") return MACVLAN_MODE_BRIDGE;
  if (m == "private") return MACVLAN_MODE_PRIVATE;
  if (m == "vepa") return MACVLAN_MODE_VEPA;
  if (m == "passthru") return MACVLAN_MODE_PASSTHRU;
  return std::nullopt;
}

std::optional<uint16_t> ipvlan_mode(const std::string& m) {
  if (m.empty() || m == "l2") return IPVLAN_MODE_L2;
  if (m == "l3") return IPVLAN_MODE_L3;
  if (m == "l3s") return IPVLAN_MODE_L3S;
  return std::nullopt;
}

std::optional<uint16_t> ipvlan_flags(const std::string& f) {
  if (f.empty() || f == "bridge") return 0;
  if (f == "private") return IPVLAN_F_PRIVATE;
  if (f == "vepa") return IPVLAN_F_VEPA;
  return std::nullopt;
}

class LibnlSublinks final : public Sublinks {
 public:
  explicit LibnlSublinks(SockPtr sk) : sk_(std::move(sk)) {}

  Result<void> ensure_dummy(std::string_view name) override {
    auto ctx = "ensure dummy link " + std::string(name);
    auto link = STACK_TRY_CTX(find(name), ctx);
    if (link) {
      const char* kind = rtnl_link_get_type(link.get());
      if (!kind || (std::string(kind) != "dummy" && std::string(kind) != "ifb"))
        return fail(ctx + ": exists and is not a dummy link", EEXIST);
      return set_up(link.get(), ctx);
    }
    // A kernel without CONFIG_DUMMY answers "Unknown device type" (EOPNOTSUPP): an ifb link
    // does as well here, a parent that drops what is sent through it and receives nothing.
    auto r = new_kind(name, "dummy", ctx);
    if (!r && r.error().sys_errno == EOPNOTSUPP) r = new_kind(name, "ifb", ctx);
    return r;
  }

  Result<bool> ensure_vlan(std::string_view name, std::string_view base, int id,
                           std::string_view alias) override {
    auto ctx = "ensure vlan link " + std::string(name);
    auto link = STACK_TRY_CTX(find(name), ctx);
    if (link) {
      const char* a = rtnl_link_get_ifalias(link.get());
      bool ours = a != nullptr && std::string_view(a) == alias;
      if (ours) NET_CHECK(set_up(link.get(), ctx), ctx);
      return ours;
    }
    auto parent = STACK_TRY_CTX(find(base), ctx);
    if (!parent) return fail(ctx + ": no parent link " + std::string(base), ENODEV);
    auto msg = STACK_TRY_CTX(new_link(name, rtnl_link_get_ifindex(parent.get()), true), ctx);
    nla_put_string(msg.get(), IFLA_IFALIAS, std::string(alias).c_str());
    nlattr* info = nla_nest_start(msg.get(), IFLA_LINKINFO);
    nla_put_string(msg.get(), IFLA_INFO_KIND, "vlan");
    nlattr* data = nla_nest_start(msg.get(), IFLA_INFO_DATA);
    nla_put_u16(msg.get(), IFLA_VLAN_ID, static_cast<uint16_t>(id));
    nla_nest_end(msg.get(), data);
    nla_nest_end(msg.get(), info);
    if (auto r = send(msg, ctx); !r) return fail(r.error());
    return true;
  }

  Result<std::optional<std::string>> alias_of(std::string_view name) override {
    auto link = STACK_TRY_CTX(find(name), "link " + std::string(name));
    if (!link) return std::optional<std::string>();
    const char* a = rtnl_link_get_ifalias(link.get());
    return std::optional<std::string>(a ? a : "");
  }

  Result<void> create_sublink(const SublinkConfig& c) override {
    auto ctx = "create " + c.kind + " link " + c.name + " on " + c.parent;
    auto parent = STACK_TRY_CTX(find(c.parent), ctx);
    if (!parent) return fail(ctx + ": no parent link " + c.parent, ENODEV);
    // Born in the container's namespace, down: it comes up with its address there
    // (Netlink::configure_interface), as a veth's peer does.
    auto msg = STACK_TRY_CTX(new_link(c.name, rtnl_link_get_ifindex(parent.get()), false), ctx);
    if (c.netns_fd >= 0) nla_put_u32(msg.get(), IFLA_NET_NS_FD, static_cast<uint32_t>(c.netns_fd));
    if (c.mtu > 0) nla_put_u32(msg.get(), IFLA_MTU, static_cast<uint32_t>(c.mtu));
    nlattr* info = nla_nest_start(msg.get(), IFLA_LINKINFO);
    nla_put_string(msg.get(), IFLA_INFO_KIND, c.kind.c_str());
    nlattr* data = nla_nest_start(msg.get(), IFLA_INFO_DATA);
    if (c.kind == "macvlan") {
      auto mode = macvlan_mode(c.mode);
      if (!mode) return fail(ctx + ": unknown macvlan mode " + c.mode, EINVAL);
      nla_put_u32(msg.get(), IFLA_MACVLAN_MODE, *mode);
    } else if (c.kind == "ipvlan") {
      auto mode = ipvlan_mode(c.mode);
      auto flags = ipvlan_flags(c.flag);
      if (!mode || !flags) return fail(ctx + ": unknown ipvlan mode or flag", EINVAL);
      nla_put_u16(msg.get(), IFLA_IPVLAN_MODE, *mode);
      nla_put_u16(msg.get(), IFLA_IPVLAN_FLAGS, *flags);
    } else {
      return fail(ctx + ": not a macvlan or ipvlan kind", EINVAL);
    }
    nla_nest_end(msg.get(), data);
    nla_nest_end(msg.get(), info);
    // IFLA_ADDRESS after IFLA_LINKINFO is fine: attributes are unordered.
    if (c.mac && c.kind == "macvlan") nla_put(msg.get(), IFLA_ADDRESS, 6, c.mac->bytes.data());
    return send(msg, ctx);
  }

 private:
  Result<LinkPtr> find(std::string_view name) {
    rtnl_link* link = nullptr;
    std::string n(name);
    int err = rtnl_link_get_kernel(sk_.get(), 0, n.c_str(), &link);
    if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return LinkPtr();
    if (err < 0) return fail(nl_error("link " + n, err));
    return LinkPtr(link);
  }

  Result<void> set_up(rtnl_link* link, const std::string& ctx) {
    if (rtnl_link_get_flags(link) & IFF_UP) return {};
    LinkPtr change(rtnl_link_alloc());
    rtnl_link_set_flags(change.get(), IFF_UP);
    if (int err = rtnl_link_change(sk_.get(), link, change.get(), 0); err < 0)
      return fail(nl_error(ctx + ": up", err));
    return {};
  }

  Result<void> new_kind(std::string_view name, const char* kind, const std::string& ctx) {
    auto msg = STACK_TRY_CTX(new_link(name, 0, true), ctx);
    nlattr* info = nla_nest_start(msg.get(), IFLA_LINKINFO);
    nla_put_string(msg.get(), IFLA_INFO_KIND, kind);
    nla_nest_end(msg.get(), info);
    return send(msg, ctx);
  }

  // RTM_NEWLINK NAME (fails if present), on the link PARENT (an ifindex, 0: none).
  Result<MsgPtr> new_link(std::string_view name, int parent, bool up) {
    MsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL));
    if (!msg) return fail("netlink message: out of memory", ENOMEM);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    if (up) {
      ifi.ifi_flags = IFF_UP;
      ifi.ifi_change = IFF_UP;
    }
    if (nlmsg_append(msg.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0)
      return fail("netlink message: out of memory", ENOMEM);
    nla_put_string(msg.get(), IFLA_IFNAME, std::string(name).c_str());
    if (parent > 0) nla_put_u32(msg.get(), IFLA_LINK, static_cast<uint32_t>(parent));
    return msg;
  }

  Result<void> send(const MsgPtr& msg, const std::string& ctx) {
    if (int err = nl_send_auto(sk_.get(), msg.get()); err < 0) return fail(nl_error(ctx, err));
    if (int err = nl_wait_for_ack(sk_.get()); err < 0) return fail(nl_error(ctx, err));
    return {};
  }

  SockPtr sk_;
};

}  // namespace

Result<std::unique_ptr<Sublinks>> make_libnl_sublinks() {
  SockPtr sk(nl_socket_alloc());
  if (!sk) return fail("netlink socket: out of memory", ENOMEM);
  if (int err = nl_connect(sk.get(), NETLINK_ROUTE); err < 0)
    return fail(nl_error("netlink connect", err));
  return std::unique_ptr<Sublinks>(new LibnlSublinks(std::move(sk)));
}

}  // namespace stack::net
