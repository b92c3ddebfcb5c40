// Subnet choice, overlap checks and per-network address allocation; see ipam.h. No I/O beyond
// the AddressStore it is given.
#include "net/ipam.h"

#include <algorithm>

#include "net/check.h"

namespace stack::net {
namespace {

std::string describe(const Cidr& c, std::string_view network) {
  return c.str() + " of network " + std::string(network);
}

// The usable addresses for containers: the range (or the subnet) minus network and broadcast.
std::pair<uint32_t, uint32_t> host_span(const NetworkAddressing& a) {
  const Cidr& from = a.ip_range ? *a.ip_range : a.subnet;
  uint32_t lo = std::max(from.first().value, a.subnet.first().value + 1);
  uint32_t hi = std::min(from.last().value, a.subnet.last().value - 1);
  return {lo, hi};
}

bool reserved(const NetworkAddressing& a, Ipv4 ip) {
  return std::any_of(a.reserved.begin(), a.reserved.end(),
                     [&](const auto& r) { return r.second == ip; });
}

}  // namespace

Result<NetworkAddressing> plan_addressing(const AddressingRequest& req, const SubnetPool& pool,
                                          const std::vector<Cidr>& taken) {
  auto ctx = "addressing of network " + req.network;
  NetworkAddressing out;
  out.network = req.network;
  if (req.subnet) {
    if (req.subnet->address != req.subnet->first())
      return fail(ctx + ": subnet " + req.subnet->str() + " has host bits set (did you mean " +
                  req.subnet->network().str() + "?)");
    out.subnet = *req.subnet;
  } else {
    if (pool.size < pool.pool.prefix || pool.size > 30)
      return fail(ctx + ": subnet pool " + pool.pool.str() + " cannot be split into /" +
                  std::to_string(pool.size));
    uint64_t count = uint64_t{1} << (pool.size - pool.pool.prefix);
    uint64_t step = uint64_t{1} << (32 - pool.size);
    bool found = false;
    for (uint64_t i = 0; i < count && !found; i++) {
      Cidr candidate{Ipv4{static_cast<uint32_t>(pool.pool.first().value + i * step)}, pool.size};
      found = std::none_of(taken.begin(), taken.end(),
                           [&](const Cidr& t) { return t.overlaps(candidate); });
      if (found) out.subnet = candidate;
    }
    if (!found) return fail(ctx + ": every subnet of the pool " + pool.pool.str() + " is in use");
  }
  if (out.subnet.prefix > 30)
    return fail(ctx + ": subnet " + out.subnet.str() + " is too small (at most /30)");
  if (req.ip_range) {
    if (!out.subnet.contains(*req.ip_range))
      return fail(ctx + ": ip_range " + req.ip_range->str() + " is not inside subnet " +
                  out.subnet.str());
    out.ip_range = req.ip_range->network();
  }
  if (req.gateway) {
    if (!out.subnet.contains(*req.gateway) || *req.gateway == out.subnet.first() ||
        *req.gateway == out.subnet.last())
      return fail(ctx + ": gateway " + req.gateway->str() + " is not a host address of subnet " +
                  out.subnet.str());
    out.gateway = *req.gateway;
  } else {
    out.gateway = Ipv4{out.subnet.first().value + 1};
  }
  for (const auto& [name, ip] : req.reserved)
    if (!out.subnet.contains(ip))
      return fail(ctx + ": aux address " + name + " " + ip.str() + " is not in subnet " +
                  out.subnet.str());
  out.reserved = req.reserved;
  auto [lo, hi] = host_span(out);
  if (lo > hi)
    return fail(ctx + ": no usable address in " +
                (out.ip_range ? out.ip_range->str() : out.subnet.str()));
  return out;
}

Result<void> check_overlaps(const std::vector<NetworkAddressing>& networks) {
  for (size_t i = 0; i < networks.size(); i++)
    for (size_t j = i + 1; j < networks.size(); j++)
      if (networks[i].subnet.overlaps(networks[j].subnet))
        return fail("subnet " + describe(networks[i].subnet, networks[i].network) + " overlaps " +
                    describe(networks[j].subnet, networks[j].network));
  return {};
}

Result<std::vector<Allocation>> MemoryAddressStore::load(std::string_view network) {
  std::vector<Allocation> out;
  for (const auto& a : rows_)
    if (a.network == network) out.push_back(a);
  return out;
}

Result<void> MemoryAddressStore::save(const Allocation& allocation) {
  rows_.push_back(allocation);
  return {};
}

Result<void> MemoryAddressStore::erase(std::string_view network, std::string_view owner) {
  std::erase_if(rows_,
                [&](const Allocation& a) { return a.network == network && a.owner == owner; });
  return {};
}

Result<void> Ipam::add_network(const NetworkAddressing& addressing) {
  auto ctx = "add network " + addressing.network;
  if (auto* existing = get(addressing.network)) {
    if (existing->addressing.subnet != addressing.subnet)
      return fail(ctx + ": already known with subnet " + existing->addressing.subnet.str());
    existing->addressing = addressing;
    return {};
  }
  for (const auto& [name, net] : nets_)
    if (net.addressing.subnet.overlaps(addressing.subnet))
      return fail("subnet " + describe(addressing.subnet, addressing.network) + " overlaps " +
                  describe(net.addressing.subnet, name));
  Net net{addressing, {}, {}, 0};
  auto rows = STACK_TRY_CTX(store_.load(addressing.network), ctx);
  for (const auto& row : rows) {
    if (!addressing.subnet.contains(row.address)) continue;  // the subnet changed: stale row
    net.by_owner[row.owner] = row.address;
    net.used.insert(row.address);
    net.next = std::max(net.next, row.address.value + 1);
  }
  nets_.emplace(addressing.network, std::move(net));
  return {};
}

Result<void> Ipam::remove_network(std::string_view network) {
  auto it = nets_.find(network);
  if (it == nets_.end()) return {};
  for (const auto& [owner, ip] : it->second.by_owner)
    NET_CHECK(store_.erase(network, owner), "remove network " + std::string(network));
  nets_.erase(it);
  return {};
}

const NetworkAddressing* Ipam::find(std::string_view network) const {
  auto it = nets_.find(network);
  return it == nets_.end() ? nullptr : &it->second.addressing;
}

std::vector<Cidr> Ipam::subnets() const {
  std::vector<Cidr> out;
  for (const auto& [name, net] : nets_) out.push_back(net.addressing.subnet);
  return out;
}

Ipam::Net* Ipam::get(std::string_view network) {
  auto it = nets_.find(network);
  return it == nets_.end() ? nullptr : &it->second;
}

Result<Ipv4> Ipam::allocate(std::string_view network, std::string_view owner,
                            std::optional<Ipv4> static_address) {
  auto ctx = "allocate an address on " + std::string(network) + " for " + std::string(owner);
  Net* net = get(network);
  if (!net) return fail(ctx + ": unknown network");
  const auto& a = net->addressing;
  if (auto held = net->by_owner.find(owner); held != net->by_owner.end()) {
    if (!static_address || *static_address == held->second) return held->second;
    NET_CHECK(release(network, owner), ctx);  // ipv4_address changed: give the old one back
  }
  Ipv4 chosen;
  if (static_address) {
    if (!a.subnet.contains(*static_address) || *static_address == a.subnet.first() ||
        *static_address == a.subnet.last())
      return fail(ctx + ": " + static_address->str() + " is not a host address of subnet " +
                  a.subnet.str());
    if (*static_address == a.gateway)
      return fail(ctx + ": " + static_address->str() + " is the gateway");
    for (const auto& [name, ip] : a.reserved)
      if (ip == *static_address)
        return fail(ctx + ": " + ip.str() + " is kept out of the pool (aux_addresses " + name + ")",
                    EADDRINUSE);
    if (net->used.count(*static_address))
      return fail(ctx + ": " + static_address->str() + " is in use", EADDRINUSE);
    chosen = *static_address;
  } else {
    auto [lo, hi] = host_span(a);
    uint64_t span = uint64_t{hi} - lo + 1;
    uint32_t start = (net->next >= lo && net->next <= hi) ? net->next : lo;
    bool found = false;
    for (uint64_t i = 0; i < span && !found; i++) {
      Ipv4 ip{static_cast<uint32_t>(lo + (start - lo + i) % span)};
      if (ip != a.gateway && !net->used.count(ip) && !reserved(a, ip)) {
        chosen = ip;
        found = true;
      }
    }
    if (!found)
      return fail(
          ctx + ": no free address left in " + (a.ip_range ? a.ip_range->str() : a.subnet.str()),
          ENOSPC);
  }
  NET_CHECK(store_.save(Allocation{std::string(network), std::string(owner), chosen}), ctx);
  net->by_owner[std::string(owner)] = chosen;
  net->used.insert(chosen);
  if (!static_address) net->next = chosen.value + 1;
  return chosen;
}

Result<void> Ipam::release(std::string_view network, std::string_view owner) {
  Net* net = get(network);
  if (!net) return {};
  auto it = net->by_owner.find(owner);
  if (it == net->by_owner.end()) return {};
  NET_CHECK(store_.erase(network, owner), "release address of " + std::string(owner));
  net->used.erase(it->second);
  net->by_owner.erase(it);
  return {};
}

std::optional<Ipv4> Ipam::address_of(std::string_view network, std::string_view owner) const {
  auto it = nets_.find(network);
  if (it == nets_.end()) return std::nullopt;
  auto o = it->second.by_owner.find(owner);
  if (o == it->second.by_owner.end()) return std::nullopt;
  return o->second;
}

namespace {
uint64_t fnv1a(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}
}  // namespace

Cidr6 ula_pool(std::string_view instance) {
  uint64_t h = fnv1a(std::string("stack-ula:") + std::string(instance));
  Cidr6 pool{{}, 48};
  pool.address.bytes[0] = 0xfd;
  for (int i = 1; i < 6; i++) pool.address.bytes[i] = static_cast<uint8_t>(h >> (8 * (i - 1)));
  return pool;
}

Result<Addressing6> plan_ipv6(std::string_view network, int v4_prefix,
                              const std::optional<Cidr6>& subnet,
                              const std::optional<Ipv6>& gateway, const Cidr6& pool,
                              const std::vector<Cidr6>& taken) {
  Addressing6 out;
  if (subnet) {
    out.subnet = subnet->network();
    // Every IPv4 host address has its image in the IPv6 subnet (see Addressing6).
    int widest = 128 - (32 - v4_prefix);
    if (out.subnet.prefix > widest)
      return fail("IPv6 subnet " + subnet->str() + " is smaller than the IPv4 subnet (/" +
                  std::to_string(v4_prefix) + "): give a /" + std::to_string(widest) +
                  " or larger");
    for (const auto& t : taken)
      if (out.subnet.overlaps(t))
        return fail("IPv6 subnet " + out.subnet.str() + " overlaps " + t.str() +
                    " of another network");
  } else {
    if (pool.prefix > 64) return fail("IPv6 pool " + pool.str() + " has no /64 in it");
    uint64_t count = pool.prefix == 0 ? 0 : (uint64_t{1} << std::min(64 - pool.prefix, 16));
    uint64_t start = fnv1a(network) % count;
    bool found = false;
    for (uint64_t i = 0; i < count && !found; i++) {
      Cidr6 c{pool.network().at(0), 64};
      // The /64 index sits in bytes 6-7 (below a /48 pool's prefix).
      uint64_t index = (start + i) % count;
      c.address.bytes[6] |= static_cast<uint8_t>(index >> 8);
      c.address.bytes[7] |= static_cast<uint8_t>(index);
      found = std::none_of(taken.begin(), taken.end(), [&](auto& t) { return c.overlaps(t); });
      if (found) out.subnet = c;
    }
    if (!found) return fail("IPv6 pool " + pool.str() + " is exhausted");
  }
  out.gateway = gateway ? *gateway : out.subnet.at(1);
  if (!out.subnet.contains(out.gateway))
    return fail("IPv6 gateway " + out.gateway.str() + " is outside the subnet " +
                out.subnet.str());
  if (out.gateway == out.subnet.address)
    return fail("IPv6 gateway " + out.gateway.str() + " is the subnet's own address");
  return out;
}

void reserve_images(const std::map<std::string, Ipv6>& reserved6, const Cidr6& subnet6,
                    NetworkAddressing& a) {
  const uint64_t hosts = uint64_t{1} << (32 - a.subnet.prefix);
  for (const auto& [name, ip] : reserved6) {
    auto offset = subnet6.offset_of(ip);
    if (!offset || *offset == 0 || *offset >= hosts - 1) continue;  // no IPv4 host's image
    a.reserved[name + " (IPv6)"] =
        Ipv4{a.subnet.first().value + static_cast<uint32_t>(*offset)};
  }
}

Result<Ipv6> ipv6_address_for(const Addressing6& v6, const Cidr& v4_subnet, Ipv4 v4,
                              const std::optional<Ipv6>& static_address) {
  Ipv6 ip = static_address ? *static_address
                           : v6.subnet.at(v4.value - v4_subnet.network().address.value);
  if (!v6.subnet.contains(ip))
    return fail("IPv6 address " + ip.str() + " is outside the subnet " + v6.subnet.str());
  for (const auto& [name, kept] : v6.reserved)
    if (ip == kept)
      return fail("IPv6 address " + ip.str() + " is kept out of the pool (aux_addresses " + name +
                  ")", EADDRINUSE);
  if (ip == v6.subnet.address || ip == v6.gateway)
    return fail("IPv6 address " + ip.str() + " is the " +
                (ip == v6.gateway ? "network's gateway" : "subnet's own address") +
                (static_address ? "" : " (the IPv6 gateway is the image of this IPv4 address)"));
  return ip;
}

}  // namespace stack::net
