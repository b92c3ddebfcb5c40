// Checks of the network fields that their shape does not catch (see network_fields.h). Reports
// at the key's position; touches nothing.
#include "spec/network_fields.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace stack::spec {
namespace {

SourcePos key_pos(const Service& s, const std::string& key) {
  std::string path = "services." + s.name + "." + key;
  for (const KeyUse& k : s.keys)
    if (k.path == path) return k.pos;
  return s.pos;
}

std::vector<std::string> extra_strings(const Service& s, const char* key) {
  std::vector<std::string> out;
  auto it = s.extra.find(key);
  if (it == s.extra.end() || !it->is_array()) return out;
  for (const auto& v : *it)
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::pair<std::string, std::string> split_link(const std::string& entry) {
  auto colon = entry.find(':');
  if (colon == std::string::npos) return {entry, entry};
  return {entry.substr(colon + 1), entry.substr(0, colon)};
}

// A DNS label as docker takes a link alias: letters, digits, '-', '_', '.'.
bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 253 || n.front() == '.' || n.back() == '.') return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

// "xx:xx:xx:xx:xx:xx", unicast and not all zeros; else why not.
std::string mac_problem(const std::string& m) {
  if (m.size() != 17) return "not six hexadecimal bytes separated by ':'";
  unsigned first = 0;
  bool zero = true;
  for (size_t i = 0; i < m.size(); i++) {
    if (i % 3 == 2) {
      if (m[i] != ':') return "not six hexadecimal bytes separated by ':'";
      continue;
    }
    if (!std::isxdigit(static_cast<unsigned char>(m[i])))
      return "not six hexadecimal bytes separated by ':'";
    if (m[i] != '0') zero = false;
  }
  first = static_cast<unsigned>(std::stoul(m.substr(0, 2), nullptr, 16));
  if (zero) return "all zeros";
  if (first & 1) return "a multicast address (the first byte is odd)";
  return "";
}

// What the kernel takes as an interface name (dev_valid_name): 1..15 bytes, no '/', ':' or
// space, not "." or "..".
bool valid_ifname(const std::string& n) {
  if (n.empty() || n.size() > 15 || n == "." || n == "..") return false;
  return std::none_of(n.begin(), n.end(), [](unsigned char c) {
    return c == '/' || c == ':' || std::isspace(c) || c < 0x20 || c >= 0x7f;
  });
}

bool ip_literal(const std::string& text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// "ADDR" or "ADDR/BITS", IPv4 or IPv6.
bool address_or_cidr(const std::string& text) {
  size_t slash = text.find('/');
  std::string addr = text.substr(0, slash);
  if (!ip_literal(addr)) return false;
  if (slash == std::string::npos) return true;
  std::string bits = text.substr(slash + 1);
  int max = addr.find(':') == std::string::npos ? 32 : 128;
  return !bits.empty() && bits.size() <= 3 && std::all_of(bits.begin(), bits.end(), ::isdigit) &&
         std::atoi(bits.c_str()) <= max;
}

void check_links(const Stack& stack, const Service& s, Diagnostics& diag) {
  std::string where = "services." + s.name;
  for (const std::string& l : s.links) {
    const auto link = split_link(l);
    const std::string& alias = link.first;
    const std::string& target = link.second;
    if (std::none_of(stack.services.begin(), stack.services.end(),
                     [&](const Service& o) { return o.name == target; }))
      diag.error(key_pos(s, "links"),
                 where + ".links: " + l + ": no service \"" + target + "\" in this stack" +
                     " (a container outside it goes under external_links)");
    else if (target == s.name)
      diag.error(key_pos(s, "links"), where + ".links: " + l + ": a service cannot link to itself");
    if (!valid_name(alias))
      diag.error(key_pos(s, "links"), where + ".links: " + l + ": \"" + alias +
                                          "\" is not a valid DNS name");
  }
  for (const std::string& l : extra_strings(s, "external_links")) {
    auto [alias, target] = split_link(l);
    if (!valid_name(alias) || !valid_name(target))
      diag.error(key_pos(s, "external_links"),
                 where + ".external_links: " + l + ": not CONTAINER[:ALIAS] with valid DNS names");
  }
}

void check_dns(const Service& s, Diagnostics& diag) {
  for (const std::string& d : s.dns)
    if (!ip_literal(d))
      diag.error(key_pos(s, "dns"), "services." + s.name + ".dns: " + d +
                                        " is not an IP address (the embedded DNS server "
                                        "forwards this service's other queries to it, port 53)");
}

void check_endpoints(const Service& s, Diagnostics& diag) {
  std::string where = "services." + s.name;
  std::string service_mac;
  if (auto m = s.extra.find("mac_address"); m != s.extra.end() && m->is_string())
    service_mac = m->get<std::string>();
  auto check_mac = [&](const SourcePos& pos, const std::string& what, const std::string& mac) {
    if (mac.empty()) return false;
    if (std::string p = mac_problem(mac); !p.empty()) {
      diag.error(pos, what + ": " + mac + " is " + p);
    } else if (s.replicas > 1) {
      diag.error(pos, what + ": " + mac + " cannot be given to " + std::to_string(s.replicas) +
                          " replicas (each container needs its own)");
    }
    return true;
  };
  check_mac(key_pos(s, "mac_address"), where + ".mac_address", service_mac);
  std::set<std::string> ifnames;
  for (const NetworkAttachment& a : s.networks) {
    std::string at = where + ".networks." + a.network;
    std::string mac = a.mac_address, ifname = a.interface_name;
    for (const auto& [key, value] : a.driver_opts) {
      if (key == kEndpointMacOpt && mac.empty()) mac = value;
      else if (key == kEndpointIfnameOpt && ifname.empty()) ifname = value;
      else if (key != kEndpointMacOpt && key != kEndpointIfnameOpt)
        diag.error(a.pos, at + ".driver_opts." + key +
                              ": not an option of stack's bridge driver (it takes " +
                              kEndpointIfnameOpt + " and " + kEndpointMacOpt + ")");
    }
    if (check_mac(a.pos, at + ".mac_address", mac) && !service_mac.empty() &&
        &a == &s.networks.front())
      diag.error(a.pos, at + ".mac_address: the service's mac_address is already this network's"
                             " (give it at one place)");
    for (const std::string& ip : a.link_local_ips) {
      if (!address_or_cidr(ip))
        diag.error(a.pos, at + ".link_local_ips: \"" + ip + "\" is not an IP address");
      else if (s.replicas > 1)
        diag.error(a.pos, at + ".link_local_ips: " + ip + " cannot be given to " +
                              std::to_string(s.replicas) + " replicas (each container needs its own)");
    }
    if (ifname.empty()) continue;
    if (!valid_ifname(ifname))
      diag.error(a.pos, at + ".interface_name: \"" + ifname +
                            "\" is not an interface name (1 to 15 bytes, no '/', ':' or space)");
    else if (!ifnames.insert(ifname).second)
      diag.error(a.pos, at + ".interface_name: " + ifname + " is given to two networks");
  }
}

bool ipv6_literal(const std::string& text) {
  in6_addr a{};
  return inet_pton(AF_INET6, text.c_str(), &a) == 1;
}

bool ipv6_cidr(const std::string& text) {
  size_t slash = text.find('/');
  if (slash == std::string::npos || !ipv6_literal(text.substr(0, slash))) return false;
  std::string bits = text.substr(slash + 1);
  return !bits.empty() && bits.size() <= 3 && std::all_of(bits.begin(), bits.end(), ::isdigit) &&
         std::atoi(bits.c_str()) <= 128;
}

// enable_ipv6 and ipam.config's entries: one IPv4 and one IPv6 subnet per network (IPv6 on a
// bridge).
void check_ipv6_network(const Network& n, Diagnostics& diag) {
  std::string at = "networks." + n.key;
  if (n.enable_ipv6 && n.driver == "overlay")
    diag.error(n.pos, at + ".enable_ipv6: not supported on an overlay network (stack's overlay"
                           " carries IPv4 only)");
  int v4 = 0, v6 = 0;
  for (const IpamPool& p : n.ipam) {
    bool is_v6 = p.subnet.find(':') != std::string::npos || p.gateway.find(':') != std::string::npos;
    std::string what = at + ".ipam.config";
    // Docker's bridge driver refuses a second subnet of a family ("bridge driver doesn't
    // support multiple subnets"); its overlay and macvlan take several, stack's one, whose
    // IPAM keeps one pool per network: a second would go unused, so it is refused.
    if (!is_v6 && ++v4 == 2)
      diag.error(n.pos, what + ": more than one IPv4 subnet (a network takes one, as docker's "
                               "bridge driver: \"doesn't support multiple subnets\")");
    if (!is_v6) continue;
    if (!n.enable_ipv6)
      diag.error(n.pos, what + ": IPv6 subnet " + p.subnet + " needs enable_ipv6: true");
    if (++v6 == 2) diag.error(n.pos, what + ": more than one IPv6 subnet (stack takes one)");
    if (!p.subnet.empty() && !ipv6_cidr(p.subnet))
      diag.error(n.pos, what + ": \"" + p.subnet + "\" is not an IPv6 subnet like fd00:1::/64");
    if (p.subnet.empty())
      diag.error(n.pos, what + ": an IPv6 gateway needs its subnet");
    if (!p.gateway.empty() && !ipv6_literal(p.gateway))
      diag.error(n.pos, what + ": gateway \"" + p.gateway + "\" is not an IPv6 address");
    if (!p.ip_range.empty())
      diag.error(n.pos, what + ".ip_range " + p.ip_range +
                            ": not supported for IPv6 (containers' IPv6 addresses follow their "
                            "IPv4 ones, or ipv6_address)");
  }
}

// enable_ipv4: false makes an IPv6-only network; a network with neither family is refused at
// load as docker refuses it ("IPv4 or IPv6 must be enabled"), and IPv4 settings on it too.
void check_ipv6_only_network(const Stack& stack, const Network& n, Diagnostics& diag) {
  if (!n.enable_ipv4 || *n.enable_ipv4) return;
  std::string at = "networks." + n.key;
  SourcePos pos = n.pos;
  for (const KeyUse& k : stack.keys)
    if (k.path == at + ".enable_ipv4") pos = k.pos;
  if (!n.enable_ipv6) {
    diag.error(pos, at + ": IPv4 or IPv6 must be enabled (enable_ipv4: false needs "
                         "enable_ipv6: true)");
    return;
  }
  for (const IpamPool& p : n.ipam)
    if (p.subnet.find(':') == std::string::npos && p.gateway.find(':') == std::string::npos)
      diag.error(pos, at + ".ipam.config: IPv4 subnet " + p.subnet +
                          " on a network with enable_ipv4: false");
  for (const Service& s : stack.services)
    for (const NetworkAttachment& a : s.networks)
      if (a.network == n.key && !a.ipv4_address.empty())
        diag.error(a.pos, "services." + s.name + ".networks." + a.network + ".ipv4_address: " +
                              "network " + n.key + " has enable_ipv4: false");
}

void check_ipv6_attachments(const Stack& stack, const Service& s, Diagnostics& diag) {
  for (const NetworkAttachment& a : s.networks) {
    if (a.ipv6_address.empty()) continue;
    std::string at = "services." + s.name + ".networks." + a.network + ".ipv6_address";
    const Network* net = nullptr;
    for (const Network& n : stack.networks)
      if (n.key == a.network) net = &n;
    if (!ipv6_literal(a.ipv6_address))
      diag.error(a.pos, at + ": \"" + a.ipv6_address + "\" is not an IPv6 address");
    else if (net != nullptr && !net->enable_ipv6)
      diag.error(a.pos, at + ": network " + a.network + " has no enable_ipv6: true");
    else if (s.replicas > 1)
      diag.error(a.pos, at + ": " + a.ipv6_address + " cannot be given to " +
                            std::to_string(s.replicas) + " replicas (each container needs its own)");
  }
}

// The network's driver: stack's own (bridge, overlay) and the two kernel drivers docker users
// run on one host (macvlan, ipvlan, with the options docker's drivers take). Anything else is
// refused by name at the `driver` key: docker's `host` and `none` are network modes, not
// networks stack can make; a plugin name (weave, calico...) has no plugin host here.
void check_network_driver(const Stack& stack, const Network& n, Diagnostics& diag) {
  if (n.external) return;  // made elsewhere: its driver is not used
  std::string at = "networks." + n.key;
  auto pos_of = [&](const std::string& path) {
    for (const KeyUse& k : stack.keys)
      if (k.path == path) return k.pos;
    return n.pos;
  };
  const std::string& d = n.driver;
  SourcePos pos = pos_of(at + ".driver");
  if (d == "host" || d == "none") {
    diag.error(pos, at + ".driver: " + d + " is not a network stack can make (use network_mode: " +
                        d + " on the service)");
    return;
  }
  if (d != "bridge" && d != "overlay" && d != "macvlan" && d != "ipvlan" && !d.empty()) {
    diag.error(pos, at + ".driver: " + d +
                        ": refused, no network plugin can run here (stack's drivers: bridge, "
                        "overlay, macvlan, ipvlan)");
    return;
  }
  if (d != "macvlan" && d != "ipvlan") return;
  const std::string mode_key = d + "_mode";
  for (const auto& [key, value] : n.driver_opts) {
    std::string where = at + ".driver_opts." + key;
    SourcePos opos = pos_of(where);
    if (key == "parent") {
      size_t dot = value.rfind('.');
      std::string base = dot == std::string::npos ? value : value.substr(0, dot);
      std::string vlan = dot == std::string::npos ? "" : value.substr(dot + 1);
      bool vlan_ok = vlan.empty() || (vlan.size() <= 4 &&
                                      std::all_of(vlan.begin(), vlan.end(), ::isdigit) &&
                                      std::atoi(vlan.c_str()) >= 1 && std::atoi(vlan.c_str()) <= 4094);
      if (!valid_ifname(value) || !valid_ifname(base) || (dot != std::string::npos && !vlan_ok))
        diag.error(opos, where + ": \"" + value +
                             "\" is not an interface name, or IFACE.VLAN with VLAN 1 to 4094");
    } else if (key == mode_key) {
      bool ok = d == "macvlan" ? (value == "bridge" || value == "private" || value == "vepa")
                               : (value == "l2" || value == "l3" || value == "l3s");
      if (d == "macvlan" && value == "passthru")
        diag.error(opos, where + ": passthru gives the parent to one container alone; stack "
                                 "needs a second macvlan on it for the embedded DNS (use bridge)");
      else if (!ok)
        diag.error(opos, where + ": \"" + value + "\" is not one of " +
                             (d == "macvlan" ? "bridge, private, vepa" : "l2, l3, l3s"));
    } else if (d == "ipvlan" && key == "ipvlan_flag") {
      if (value != "bridge" && value != "private" && value != "vepa")
        diag.error(opos, where + ": \"" + value + "\" is not one of bridge, private, vepa");
    } else if (key != "mtu") {
      diag.error(opos, where + ": not an option of the " + d + " driver (it takes parent, " +
                           mode_key + (d == "ipvlan" ? ", ipvlan_flag" : "") + ", mtu)");
    }
  }
  if (n.enable_ipv6)
    diag.error(pos_of(at + ".enable_ipv6"),
               at + ".enable_ipv6: not supported on " + d + " networks yet (IPv4 only)");
}

}  // namespace

std::vector<std::pair<std::string, std::string>> link_aliases(const Service& s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& l : s.links) out.push_back(split_link(l));
  for (const std::string& l : extra_strings(s, "external_links")) out.push_back(split_link(l));
  return out;
}

std::string network_name(const Stack& stack, const std::string& key) {
  if (const Network* n = stack.find_network(key); n && !n->name.empty()) return n->name;
  return stack.name + "_" + key;
}

void warn_network_drivers(const Stack& stack, Diagnostics& diag) {
  auto sub = [&](const std::string& key) {
    const Network* n = stack.find_network(key);
    return n != nullptr && !n->external && (n->driver == "macvlan" || n->driver == "ipvlan");
  };
  for (const Service& s : stack.services) {
    if (s.ports.empty() || s.networks.empty()) continue;
    if (std::all_of(s.networks.begin(), s.networks.end(),
                    [&](const NetworkAttachment& a) { return sub(a.network); }))
      diag.warn(key_pos(s, "ports"),
                "services." + s.name + ".ports are ignored: its networks are macvlan or ipvlan "
                "ones, where (as in docker) no port is published; reach it at its own address");
  }
  for (const Network& n : stack.networks) {
    if (n.external || (n.driver != "macvlan" && n.driver != "ipvlan")) continue;
    auto opt = [&](const char* key) {
      auto it = n.driver_opts.find(key);
      return it == n.driver_opts.end() ? std::string() : it->second;
    };
    std::string mode = opt("macvlan_mode"), flag = opt("ipvlan_flag");
    bool cut = n.driver == "macvlan" ? (mode == "private" || mode == "vepa") : flag == "private" || flag == "vepa";
    if (cut)
      diag.warn(n.pos, "networks." + n.key + ": with " +
                           (n.driver == "macvlan" ? "macvlan_mode " + mode : "ipvlan_flag " + flag) +
                           " its containers cannot reach the embedded DNS (nor each other through "
                           "the host): service names do not resolve there");
  }
}

void check_network_fields(const Stack& stack, Diagnostics& diag) {
  for (const Service& s : stack.services) {
    check_links(stack, s, diag);
    check_dns(s, diag);
    check_endpoints(s, diag);
    check_ipv6_attachments(stack, s, diag);
  }
  for (const Network& n : stack.networks) {
    check_ipv6_network(n, diag);
    check_ipv6_only_network(stack, n, diag);
    check_network_driver(stack, n, diag);
  }
}

}  // namespace stack::spec
