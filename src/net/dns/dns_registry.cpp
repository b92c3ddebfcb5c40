// In-memory name registry for the embedded DNS server: which container answers which name on
// which network, and which networks a querying client sees. No I/O, no locks (loop thread).

#include "net/dns/dns_registry.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace stack::net::dns {

std::optional<Ipv4> Ipv4::parse(std::string_view text) {
  std::uint32_t value = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    if (p == end || *p < '0' || *p > '9') return std::nullopt;
    unsigned octet = 0;
    auto [next, ec] = std::from_chars(p, end, octet);
    if (ec != std::errc() || octet > 255 || next - p > 3) return std::nullopt;
    p = next;
    value = (value << 8) | octet;
  }
  if (p != end) return std::nullopt;
  return Ipv4{value};
}

std::string Ipv4::to_string() const {
  return std::to_string(value >> 24) + "." + std::to_string((value >> 16) & 0xff) + "." +
         std::to_string((value >> 8) & 0xff) + "." + std::to_string(value & 0xff);
}

std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

Result<void> validate_name(std::string_view name) {
  std::string_view n = name;
  if (!n.empty() && n.back() == '.') n.remove_suffix(1);
  if (n.empty()) return fail("name is empty");
  if (n.size() > 253) return fail("name '" + std::string(name) + "' is longer than 253 bytes");
  std::size_t label = 0;
  for (char c : n) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 0x7f || c == '\\')
      return fail("name '" + std::string(name) + "' has a space, control or non-ASCII byte");
    if (c == '.') {
      if (label == 0) return fail("name '" + std::string(name) + "' has an empty label");
      label = 0;
    } else if (++label > 63) {
      return fail("name '" + std::string(name) + "' has a label longer than 63 bytes");
    }
  }
  return {};
}

Result<void> DnsRegistry::add(const Endpoint& ep) {
  std::string ctx = "register " + ep.container + " on " + ep.network;
  if (ep.network.empty() || ep.container.empty())
    return fail(ctx + ": network and container must be set");
  Entry entry{ep.address, {}};
  auto add_name = [&](const std::string& raw) -> Result<void> {
    if (raw.empty()) return {};
    if (auto v = validate_name(raw); !v) return fail(v.error().wrap(ctx));
    std::string n = normalize_name(raw);
    if (std::find(entry.names.begin(), entry.names.end(), n) == entry.names.end())
      entry.names.push_back(std::move(n));
    return {};
  };
  std::vector<const std::string*> names{&ep.container, &ep.service, &ep.hostname};
  for (const auto& a : ep.aliases) names.push_back(&a);
  for (const std::string* n : names)
    if (auto r = add_name(*n); !r) return r;
  for (const Link& l : ep.links) {
    for (const std::string* n : {&l.alias, &l.target})
      if (auto v = validate_name(*n); !v) return fail(v.error().wrap(ctx + ": link"));
    entry.links.push_back({normalize_name(l.alias), normalize_name(l.target)});
  }
  entry.upstreams = ep.upstreams;
  entry.address6 = ep.address6;
  entry.has_ipv4 = ep.has_ipv4;

  remove(ep.network, ep.container);
  Key key{ep.container, ep.network};
  for (const auto& n : entry.names) by_name_[n].push_back(key);
  by_address_.emplace(ep.address.value, ep.container);
  containers_[ep.container][ep.network] = std::move(entry);
  return {};
}

void DnsRegistry::unindex(const Key& key, const Entry& entry) {
  for (const auto& n : entry.names) {
    auto it = by_name_.find(n);
    if (it == by_name_.end()) continue;
    std::erase(it->second, key);
    if (it->second.empty()) {
      by_name_.erase(it);
      rotation_.erase(n);
    }
  }
  auto [lo, hi] = by_address_.equal_range(entry.address.value);
  for (auto it = lo; it != hi; ++it) {
    if (it->second == key.container) {
      by_address_.erase(it);
      break;
    }
  }
}

bool DnsRegistry::remove(std::string_view network, std::string_view container) {
  auto c = containers_.find(container);
  if (c == containers_.end()) return false;
  auto n = c->second.find(network);
  if (n == c->second.end()) return false;
  unindex(Key{c->first, n->first}, n->second);
  c->second.erase(n);
  if (c->second.empty()) containers_.erase(c);
  return true;
}

std::size_t DnsRegistry::remove_container(std::string_view container) {
  auto c = containers_.find(container);
  if (c == containers_.end()) return 0;
  std::size_t count = c->second.size();
  for (const auto& [network, entry] : c->second) unindex(Key{c->first, network}, entry);
  containers_.erase(c);
  return count;
}

std::vector<std::string> DnsRegistry::networks_of(Ipv4 client) const {
  std::set<std::string> networks;
  auto [lo, hi] = by_address_.equal_range(client.value);
  for (auto it = lo; it != hi; ++it) {
    auto c = containers_.find(it->second);
    if (c == containers_.end()) continue;
    for (const auto& [network, entry] : c->second) networks.insert(network);
  }
  return {networks.begin(), networks.end()};
}

// One entry per address, in registration order.
std::vector<const DnsRegistry::Entry*> DnsRegistry::registered(
    const std::vector<std::string>& scope, const std::string& name) const {
  std::vector<const Entry*> out;
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return out;
  for (const Key& key : it->second) {
    if (!std::binary_search(scope.begin(), scope.end(), key.network)) continue;
    const Entry& e = containers_.find(key.container)->second.find(key.network)->second;
    if (std::none_of(out.begin(), out.end(), [&](const Entry* o) { return o->address == e.address; }))
      out.push_back(&e);
  }
  return out;
}

std::vector<const DnsRegistry::Entry*> DnsRegistry::visible(Ipv4 client, const std::string& name) const {
  std::vector<std::string> scope = networks_of(client);
  auto [lo, hi] = by_address_.equal_range(client.value);
  for (auto it = lo; it != hi; ++it) {
    auto c = containers_.find(it->second);
    if (c == containers_.end()) continue;
    for (const auto& [network, entry] : c->second)
      for (const Link& l : entry.links)
        if (l.alias == name) return registered(scope, l.target);
  }
  return registered(scope, name);
}

std::vector<Upstream> DnsRegistry::upstreams_of(Ipv4 client) const {
  auto [lo, hi] = by_address_.equal_range(client.value);
  for (auto it = lo; it != hi; ++it) {
    auto c = containers_.find(it->second);
    if (c == containers_.end()) continue;
    for (const auto& [network, entry] : c->second)
      if (!entry.upstreams.empty()) return entry.upstreams;
  }
  return {};
}

std::optional<std::vector<Ipv4>> DnsRegistry::lookup_a(Ipv4 client, std::string_view name) {
  std::string n = normalize_name(name);
  std::vector<Ipv4> out;
  auto entries = visible(client, n);
  if (entries.empty()) return std::nullopt;
  for (const Entry* e : entries)
    if (e->has_ipv4) out.push_back(e->address);
  if (out.empty()) return out;  // registered, IPv6 only: no data, not forwarded
  if (out.size() > 1) {
    std::uint64_t turn = rotation_[n]++;
    std::rotate(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(turn % out.size()),
                out.end());
  }
  return out;
}

// A scan: IPv6-only clients are few and the registry is small (one entry per attachment).
std::optional<Ipv4> DnsRegistry::client_of6(const Ipv6& client6) const {
  for (const auto& [container, networks] : containers_)
    for (const auto& [network, entry] : networks)
      if (entry.address6 && *entry.address6 == client6) return entry.address;
  return std::nullopt;
}

bool DnsRegistry::contains(Ipv4 client, std::string_view name) const {
  return !visible(client, normalize_name(name)).empty();
}

std::vector<Ipv6> DnsRegistry::lookup_aaaa(Ipv4 client, std::string_view name) const {
  std::vector<Ipv6> out;
  for (const Entry* e : visible(client, normalize_name(name)))
    if (e->address6 && std::find(out.begin(), out.end(), *e->address6) == out.end())
      out.push_back(*e->address6);
  return out;
}

std::size_t DnsRegistry::size() const {
  std::size_t count = 0;
  for (const auto& [container, networks] : containers_) count += networks.size();
  return count;
}

}  // namespace stack::net::dns
