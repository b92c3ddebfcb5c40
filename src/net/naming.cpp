// Hash-derived interface names; see naming.h for the formats and why they look that way.
#include "net/naming.h"

#include <cstdio>

namespace stack::net {
namespace {

std::string hex(uint64_t v, int digits) {
  std::string s(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; i--, v >>= 4)
    s[static_cast<size_t>(i)] = "0123456789abcdef"[v & 15];
  return s;
}

}  // namespace

uint64_t name_hash(std::initializer_list<std::string_view> parts) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (auto part : parts) {
    for (unsigned char c : part) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
    h ^= 0xff;  // separator: not a byte of any name
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string bridge_name(std::string_view instance, std::string_view project,
                        std::string_view network) {
  return std::string(kBridgePrefix) + hex(name_hash({instance, project, network}), 8);
}

std::string veth_name(std::string_view instance, std::string_view container,
                      std::string_view network, uint64_t generation) {
  auto gen = std::to_string(generation);
  return std::string(kVethPrefix) + hex(name_hash({instance, container, network, gen}), 9);
}

std::string vxlan_name(uint32_t vni) { return std::string(kVxlanPrefix) + std::to_string(vni); }

uint32_t derive_vni(std::string_view project, std::string_view network) {
  uint64_t h = name_hash({"vni", project, network});
  return 4096 + static_cast<uint32_t>(h % ((1u << 24) - 4096));
}

Mac bridge_mac(std::string_view bridge, std::string_view host_salt) {
  uint64_t h = name_hash({"mac", bridge, host_salt});
  Mac m;
  m.bytes = {0x02,
             0x5c,
             static_cast<uint8_t>(h >> 24),
             static_cast<uint8_t>(h >> 16),
             static_cast<uint8_t>(h >> 8),
             static_cast<uint8_t>(h)};
  return m;
}

std::string table_name(std::string_view instance) {
  return instance.empty() ? std::string("stack") : "stack-" + std::string(instance);
}

bool is_stack_link(std::string_view name) {
  if (name.starts_with(kBridgePrefix) || name.starts_with(kVxlanPrefix)) return true;
  if (!name.starts_with(kVethPrefix) || name.size() != kVethPrefix.size() + 9) return false;
  for (char c : name.substr(kVethPrefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace stack::net
