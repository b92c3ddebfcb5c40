// The links a macvlan or ipvlan network is made of (docker's drivers of those names): the
// children of a parent link, born where they are used (a container's namespace, or the host
// for the DNS shim), the 802.1q sub-interface a parent "IFACE.VLAN" names, and the dummy parent
// of a network without one. Acts on the namespace it was created in. Deletion: Netlink.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/address.h"

namespace stack::net {

// A macvlan or ipvlan link on PARENT (a link of this namespace), named NAME where it is born.
struct SublinkConfig {
  std::string name;    // "eth0" in a container, "stk-1a2b3c4d-s" for the host's shim
  std::string parent;  // "eth0", "eth0.50", "stk-1a2b3c4d-p"
  std::string kind;    // "macvlan" | "ipvlan"
  std::string mode;    // macvlan: bridge|private|vepa; ipvlan: l2|l3|l3s
  std::string flag;    // ipvlan: bridge|private|vepa ("" : bridge)
  int netns_fd = -1;   // born in that namespace (IFLA_NET_NS_FD); -1: this one
  std::optional<Mac> mac = std::nullopt;  // macvlan only: an ipvlan child has its parent's
  int mtu = 0;                            // 0: the parent's
};

class Sublinks {
 public:
  virtual ~Sublinks() = default;
  // A dummy link NAME (an ifb one on a kernel without dummy), made if missing, up. Idempotent.
  [[nodiscard]] virtual Result<void> ensure_dummy(std::string_view name) = 0;
  // NAME ("eth0.50"): the 802.1q link of VLAN ID on BASE. Made if missing (marked with ALIAS,
  // kernel-held: ifalias) and up. Returns whether stack made it: its alias is ALIAS; a link the
  // user made is used as it is.
  [[nodiscard]] virtual Result<bool> ensure_vlan(std::string_view name, std::string_view base,
                                                 int id, std::string_view alias) = 0;
  // NAME's ifalias; nullopt when there is no such link.
  [[nodiscard]] virtual Result<std::optional<std::string>> alias_of(std::string_view name) = 0;
  // Fails with EEXIST when NAME is there, ENODEV when the parent is not.
  [[nodiscard]] virtual Result<void> create_sublink(const SublinkConfig& config) = 0;
};

// The real one, through libnl-3's message API, on the calling thread's namespace.
[[nodiscard]] Result<std::unique_ptr<Sublinks>> make_libnl_sublinks();

}  // namespace stack::net
