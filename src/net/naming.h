// Names of everything the network code creates on the host: recognisable ("stk", "stx")
// and bounded (Linux interface names are at most 15 bytes). Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "net/address.h"

namespace stack::net {

inline constexpr size_t kMaxIfName = 15;  // IFNAMSIZ - 1
inline constexpr std::string_view kBridgePrefix = "stk-";
inline constexpr std::string_view kVethPrefix = "stk";  // "stk" + 9 hex: never has a '-'
inline constexpr std::string_view kVxlanPrefix = "stx-";

// FNV-1a 64 over the parts, separated so that ("ab","c") and ("a","bc") differ.
uint64_t name_hash(std::initializer_list<std::string_view> parts);

// "stk-" + 8 hex digits of (instance, project, network). INSTANCE tells apart stack
// instances with different roots on one host ("" for the default one).
std::string bridge_name(std::string_view instance, std::string_view project,
                        std::string_view network);
// "stk" + 9 hex digits of (instance, container, network, generation). GENERATION (the
// container init's PID) makes a restarted container's veth never collide with the previous
// one, which the kernel may still be destroying with its old namespace.
std::string veth_name(std::string_view instance, std::string_view container,
                      std::string_view network, uint64_t generation);
// "stx-" + the VNI in decimal (at most 8 digits).
std::string vxlan_name(uint32_t vni);
// The VNI of an overlay network with no driver_opts.vni: from (project, network) only, so
// every host derives the same one. In [4096, 2^24).
uint32_t derive_vni(std::string_view project, std::string_view network);
// A stable, locally administered unicast MAC for a bridge, so its address does not change
// as ports come and go (the kernel would otherwise take the lowest port's MAC). An overlay's
// bridges share one name on every host: HOST_SALT (the underlay address) keeps their MACs apart
// on the shared L2 segment.
Mac bridge_mac(std::string_view bridge, std::string_view host_salt = "");

// The nftables tables of an instance (both families): "stack" for the default one (INSTANCE
// ""), "stack-<instance>" for another, so that instances never replace each other's rules.
std::string table_name(std::string_view instance);

// True for names this code creates: "stk-*", "stk<hex>", "stx-*".
bool is_stack_link(std::string_view name);

}  // namespace stack::net
