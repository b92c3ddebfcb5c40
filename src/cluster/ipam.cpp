// ClusterIpam: subnets as JSON under /stack/ipam/<network>/subnet, addresses as keys created by
// transactions that compare create_revision == 0. A lost race (or a retried write whose answer
// was lost) shows in the else branch as the key's owner: ours means done, another's means retry.
#include "cluster/ipam.h"

#include <random>
#include <set>

#include <nlohmann/json.hpp>

namespace stack::cluster {

using json = nlohmann::json;

namespace {

constexpr int kMaxAttempts = 200;

Result<ClusterSubnet> decode_subnet(const std::string& network, const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("subnet") || !j["subnet"].is_string() ||
      !j.contains("gateway") || !j["gateway"].is_string())
    return fail("network " + network + ": unreadable subnet record: " + text);
  auto subnet = STACK_TRY_CTX(net::Cidr::parse(j["subnet"].get<std::string>()),
                              "network " + network + ": subnet record");
  auto gateway = STACK_TRY_CTX(net::Ipv4::parse(j["gateway"].get<std::string>()),
                               "network " + network + ": subnet record");
  return ClusterSubnet{subnet, gateway};
}

std::string encode_subnet(const ClusterSubnet& s) {
  return json{{"subnet", s.subnet.str()}, {"gateway", s.gateway.str()}}.dump();
}

bool reserved(const ClusterSubnet& s, net::Ipv4 ip) {
  return ip == s.subnet.first() || ip == s.subnet.last() || ip == s.gateway;
}

std::mt19937& rng() {
  thread_local std::mt19937 gen{std::random_device{}()};
  return gen;
}

}  // namespace

Result<ClusterSubnet> ClusterIpam::ensure_subnet(const std::string& network,
                                                 const net::Cidr& subnet,
                                                 std::optional<net::Ipv4> gateway) {
  ClusterSubnet want{subnet.network(), gateway.value_or(net::Ipv4{subnet.first().value + 1})};
  if (subnet.prefix > 30) return fail("network " + network + ": subnet " + subnet.str() +
                                      " is too small for containers");
  if (!want.subnet.contains(want.gateway) || reserved({want.subnet, net::Ipv4{}}, want.gateway))
    return fail("network " + network + ": gateway " + want.gateway.str() + " is not a host of " +
                want.subnet.str());
  const auto key = keys::ipam_subnet(network);
  auto r = STACK_TRY_CTX(store_.txn({Compare::absent(key)}, {TxnOp::put(key, encode_subnet(want))},
                                    {TxnOp::get(KeyRange::exact(key))}),
                         "network " + network + ": record subnet");
  if (r.succeeded) return want;
  if (r.results.empty() || r.results[0].kvs.empty())  // deleted in between: try once more
    return ensure_subnet(network, subnet, gateway);
  auto have = STACK_TRY_CTX(decode_subnet(network, r.results[0].kvs[0].value), "cluster subnet");
  if (have != want)
    return fail("network " + network + ": subnet " + want.subnet.str() + " gateway " +
                want.gateway.str() + " differs from the cluster's " + have.subnet.str() +
                " gateway " + have.gateway.str());
  return have;
}

Result<ClusterSubnet> ClusterIpam::subnet(const std::string& network) {
  auto r = STACK_TRY_CTX(store_.range(KeyRange::exact(keys::ipam_subnet(network))),
                         "network " + network);
  if (r.kvs.empty()) return fail("network " + network + ": no subnet recorded in the cluster");
  return decode_subnet(network, r.kvs[0].value);
}

Result<std::vector<ClusterAllocation>> ClusterIpam::allocations(const std::string& network) {
  auto r = STACK_TRY_CTX(store_.range(KeyRange::with_prefix(keys::ipam_addrs(network))),
                         "network " + network + ": addresses");
  std::vector<ClusterAllocation> out;
  const auto prefix = keys::ipam_addrs(network);
  for (const auto& kv : r.kvs) {
    auto ip = net::Ipv4::parse(std::string_view(kv.key).substr(prefix.size()));
    if (!ip) continue;  // not ours to judge: another writer's key under the prefix
    out.push_back({*ip, kv.value});
  }
  return out;
}

Result<net::Ipv4> ClusterIpam::allocate(const std::string& network, const std::string& owner,
                                        std::optional<net::Ipv4> static_address, LeaseId lease) {
  const std::string ctx = "allocate an address on " + network + " for " + owner;
  if (owner.empty()) return fail(ctx + ": empty owner");
  auto sub = STACK_TRY_CTX(subnet(network), ctx);
  auto listed = STACK_TRY_CTX(store_.range(KeyRange::with_prefix(keys::ipam_addrs(network))), ctx);
  std::vector<ClusterAllocation> held;
  for (const auto& kv : listed.kvs) {
    auto ip = net::Ipv4::parse(std::string_view(kv.key).substr(keys::ipam_addrs(network).size()));
    if (!ip) continue;
    held.push_back({*ip, kv.value});
    if (kv.value != owner) continue;
    if (lease != 0 && kv.lease != lease) {
      // Still ours (value compare): under the lease that lives now.
      auto r = STACK_TRY_CTX(store_.txn({Compare::value_is(kv.key, Compare::Op::Equal, owner)},
                                        {TxnOp::put(kv.key, owner, lease)}, {}),
                             ctx + ": keep " + ip->str());
      if (!r.succeeded) continue;  // released meanwhile: allocate anew below
    }
    return *ip;
  }

  // Tries IP: true when OWNER holds it now.
  auto claim = [&](net::Ipv4 ip) -> Result<bool> {
    const auto key = keys::ipam_addr(network, ip.str());
    auto r = STACK_TRY_CTX(store_.txn({Compare::absent(key)}, {TxnOp::put(key, owner, lease)},
                                      {TxnOp::get(KeyRange::exact(key))}),
                           "claim " + ip.str());
    if (r.succeeded) return true;
    if (!r.results.empty() && !r.results[0].kvs.empty() && r.results[0].kvs[0].value == owner)
      return true;  // our own earlier write, whose answer was lost
    ++conflicts_;
    return false;
  };

  if (static_address) {
    if (!sub.subnet.contains(*static_address) || reserved(sub, *static_address))
      return fail(ctx + ": " + static_address->str() + " is not a free host address of " +
                  sub.subnet.str());
    if (STACK_TRY_CTX(claim(*static_address), ctx)) return *static_address;
    return fail(ctx + ": " + static_address->str() + " is held by another container");
  }

  std::set<net::Ipv4> used;
  for (const auto& a : held) used.insert(a.address);
  const std::uint64_t hosts = sub.subnet.size();
  const std::uint64_t usable = hosts - 3;  // network, broadcast, gateway
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (used.size() >= usable) {
      // Our view may be stale (a release): read again once before saying so.
      held = STACK_TRY_CTX(allocations(network), ctx);
      used.clear();
      for (const auto& a : held) used.insert(a.address);
      if (used.size() >= usable) return fail(ctx + ": no free address in " + sub.subnet.str());
    }
    // A random free host: nodes allocating at once rarely pick the same one.
    std::uniform_int_distribution<std::uint64_t> pick(0, hosts - 1);
    net::Ipv4 ip{sub.subnet.first().value + static_cast<std::uint32_t>(pick(rng()))};
    for (std::uint64_t step = 0; reserved(sub, ip) || used.count(ip); ++step) {
      ip = net::Ipv4{sub.subnet.first().value + static_cast<std::uint32_t>(
                                                    (ip.value - sub.subnet.first().value + 1) %
                                                    hosts)};
      if (step > hosts) return fail(ctx + ": no free address in " + sub.subnet.str());
    }
    if (STACK_TRY_CTX(claim(ip), ctx)) return ip;
    used.insert(ip);
  }
  return fail(ctx + ": every try collided with another allocation (" +
              std::to_string(kMaxAttempts) + " tries)");
}

Result<void> ClusterIpam::release(const std::string& network, const std::string& owner) {
  const std::string ctx = "release " + owner + "'s address on " + network;
  auto held = STACK_TRY_CTX(allocations(network), ctx);
  for (const auto& a : held) {
    if (a.owner != owner) continue;
    const auto key = keys::ipam_addr(network, a.address.str());
    // Only if it is still OWNER's: never free an address someone else holds by now.
    if (auto r = store_.txn({Compare::value_is(key, Compare::Op::Equal, owner)},
                            {TxnOp::erase(KeyRange::exact(key))}, {});
        !r)
      return fail(r.error().wrap(ctx));
  }
  return {};
}

}  // namespace stack::cluster
