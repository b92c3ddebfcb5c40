// Renders an instance's `table ip` (published ports, masquerade, isolation, the loopback guard)
// and `table bridge` (anti-spoofing per container port, overlay ARP) from a FirewallModel: pure
// text, pinned by the unit tests. Each rule says why it is there.
#include <algorithm>
#include <sstream>

#include "net/firewall.h"

namespace stack::net {
namespace {

// Appended, not "literal" + std::string: g++ 12 warns falsely (-Wrestrict) on that form.
std::string q(std::string_view s) {
  std::string out(1, '"');
  out.append(s).push_back('"');
  return out;
}
// `{ "stk-a", "stk-b" }`: the bridges of NETWORKS (sorted, not empty).
std::string bridge_set(const std::vector<FirewallNetwork>& networks) {
  std::string out = "{ ";
  for (size_t i = 0; i < networks.size(); i++) out += (i ? ", " : "") + q(networks[i].bridge);
  return out + " }";
}

// The bridge table's sets of container ports and what each may send as its source.
struct EndpointSet {
  std::string name, type, elements;
};
std::vector<EndpointSet> endpoint_sets(const std::vector<FirewallEndpoint>& endpoints) {
  std::vector<EndpointSet> sets{{"ports", "ifname", ""},
                                {"port_addresses", "ifname . ether_addr . ipv4_addr", ""},
                                {"ports6", "ifname", ""},
                                {"port_addresses6", "ifname . ether_addr . ipv6_addr", ""},
                                {"port_macs6", "ifname . ether_addr", ""}};
  auto add = [](EndpointSet& set, const std::string& element) {
    set.elements += (set.elements.empty() ? "" : ", ") + element;
  };
  for (const auto& e : endpoints) {
    add(sets[0], q(e.veth));
    add(sets[1], q(e.veth) + " . " + e.mac.str() + " . " + e.address.str());
    if (!e.address6) continue;
    add(sets[2], q(e.veth));
    add(sets[3], q(e.veth) + " . " + e.mac.str() + " . " + e.address6->str());
    add(sets[4], q(e.veth) + " . " + e.mac.str());
  }
  return sets;
}

const char* proto_name(Proto p) {
  switch (p) {
    case Proto::kUdp: return "udp";
    case Proto::kSctp: return "sctp";
    case Proto::kTcp: break;
  }
  return "tcp";
}

std::string ports_text(uint16_t first, uint16_t end) {
  if (end == 0 || end == first) return std::to_string(first);
  return std::to_string(first) + "-" + std::to_string(end);
}

Result<void> render_port(std::ostringstream& out, const PortMapping& p) {
  uint16_t host_end = p.host_port_end ? p.host_port_end : p.host_port;
  uint16_t cont_end = p.container_port_end ? p.container_port_end : p.container_port;
  if (p.host_port == 0 || host_end < p.host_port || p.container_port == 0 ||
      cont_end < p.container_port)
    return fail("invalid port mapping " + ports_text(p.host_port, p.host_port_end) + ":" +
                ports_text(p.container_port, p.container_port_end));
  std::string match = p.host_ip ? "ip daddr " + p.host_ip->str() + " " : "";
  match += std::string(proto_name(p.proto)) + " dport ";
  bool one_to_one = host_end - p.host_port == cont_end - p.container_port;
  if (host_end != p.host_port && one_to_one) {
    for (uint32_t i = 0; i <= uint32_t(host_end - p.host_port); i++)
      out << "\t\t" << match << (p.host_port + i) << " dnat to " << p.container_ip.str() << ":"
          << (p.container_port + i) << "\n";
    return {};
  }
  if (cont_end != p.container_port)
    return fail("port range " + ports_text(p.host_port, p.host_port_end) + " does not match " +
                ports_text(p.container_port, p.container_port_end));
  out << "\t\t" << match << ports_text(p.host_port, host_end) << " dnat to " << p.container_ip.str()
      << ":" << p.container_port << "\n";
  return {};
}

// The IPv6 twin of render_port: `dnat to [ADDR]:PORT`.
Result<void> render_port6(std::ostringstream& out, const PortMapping& p) {
  uint16_t host_end = p.host_port_end ? p.host_port_end : p.host_port;
  uint16_t cont_end = p.container_port_end ? p.container_port_end : p.container_port;
  bool any = !p.host_ip6 || *p.host_ip6 == Ipv6{};  // "::" is every local IPv6 address
  std::string match = any ? "" : "ip6 daddr " + p.host_ip6->str() + " ";
  match += std::string(proto_name(p.proto)) + " dport ";
  std::string to = "[" + p.container_ip6->str() + "]:";
  bool one_to_one = host_end - p.host_port == cont_end - p.container_port;
  if (host_end != p.host_port && one_to_one) {
    for (uint32_t i = 0; i <= uint32_t(host_end - p.host_port); i++)
      out << "\t\t" << match << (p.host_port + i) << " dnat to " << to << (p.container_port + i)
          << "\n";
    return {};
  }
  if (cont_end != p.container_port)
    return fail("port range " + ports_text(p.host_port, p.host_port_end) + " does not match " +
                ports_text(p.container_port, p.container_port_end));
  out << "\t\t" << match << ports_text(p.host_port, host_end) << " dnat to " << to
      << p.container_port << "\n";
  return {};
}

// The forward chain, the same for the ip and ip6 tables: an internal network's traffic stays on
// its bridge, published ports (DNAT) may be reached from another network through the host's
// address, and no other traffic crosses from one of stack's bridges to another.
void render_forward(std::ostringstream& out, const std::vector<FirewallNetwork>& networks) {
  out << "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n";
  for (const auto& n : networks) {
    if (!n.internal) continue;
    out << "\t\tiifname " << q(n.bridge) << " oifname != " << q(n.bridge) << " drop\n";
    out << "\t\toifname " << q(n.bridge) << " iifname != " << q(n.bridge) << " drop\n";
  }
  out << "\t\tct status dnat accept\n";
  for (const auto& n : networks)
    out << "\t\tiifname " << q(n.bridge) << " oifname \"stk-*\" oifname != " << q(n.bridge)
        << " drop\n";
  out << "\t}\n";
}

}  // namespace

Result<std::string> render_table6(const FirewallModel& model) {
  std::vector<FirewallNetwork> networks;
  for (const auto& n : model.networks)
    if (n.subnet6) networks.push_back(n);
  if (networks.empty()) return std::string();
  std::sort(networks.begin(), networks.end(), [](auto& a, auto& b) { return a.bridge < b.bridge; });
  auto ports = model.ports;
  std::sort(ports.begin(), ports.end(), [](const PortMapping& a, const PortMapping& b) {
    return std::tie(a.host_ip6, a.proto, a.host_port, a.container_ip6) <
           std::tie(b.host_ip6, b.proto, b.host_port, b.container_ip6);
  });
  std::ostringstream out;
  out << "table ip6 " << model.table << " {\n";
  // Published ports on every local IPv6 address but ::1: the kernel drops a packet with a
  // loopback source on any other device (RFC 4291 2.5.3), and IPv6 has no route_localnet.
  out << "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
      << "\t\tfib daddr type local jump published\n\t}\n";
  out << "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n"
      << "\t\tip6 daddr != ::1 fib daddr type local jump published\n\t}\n";
  out << "\tchain published {\n";
  for (const auto& p : ports) {
    // A port bound to an IPv4 address, or of a container without IPv6, is not published here.
    if (p.host_ip || !p.container_ip6) continue;
    if (auto r = render_port6(out, p); !r)
      return fail(r.error().wrap("render table ip6 " + model.table));
  }
  out << "\t}\n";
  out << "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n";
  for (const auto& n : networks) {
    auto subnet = n.subnet6->network().str();
    out << "\t\toifname " << q(n.bridge) << " ip6 saddr " << subnet
        << " ct status dnat masquerade\n";
    // NAT66: a ULA subnet is not routed beyond this host.
    if (!n.internal)
      out << "\t\tip6 saddr " << subnet << " oifname != " << q(n.bridge) << " masquerade\n";
  }
  out << "\t}\n";
  render_forward(out, networks);
  out << "}\n";
  return out.str();
}

Result<std::string> render_table(const FirewallModel& model) {
  auto networks = model.networks;
  std::sort(networks.begin(), networks.end(), [](auto& a, auto& b) { return a.bridge < b.bridge; });
  auto ports = model.ports;
  std::sort(ports.begin(), ports.end(), [](const PortMapping& a, const PortMapping& b) {
    return std::tie(a.host_ip, a.proto, a.host_port, a.container_ip) <
           std::tie(b.host_ip, b.proto, b.host_port, b.container_ip);
  });

  auto mesh = STACK_TRY_CTX(render_mesh(model.mesh), "render table ip " + model.table);

  std::ostringstream out;
  out << "table ip " << model.table << " {\n";
  // Published ports: DNAT for packets to any local address, arriving (prerouting) or sent by
  // the host itself (output), without listing the host's addresses.
  out << "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
      << "\t\tfib daddr type local jump published\n\t}\n";
  out << "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n"
      << "\t\tfib daddr type local jump published\n\t}\n";
  out << "\tchain published {\n" << mesh.published;
  for (const auto& p : ports)
    if (p.host_ip6) continue;  // published on IPv6 only (render_table6)
    else if (auto r = render_port(out, p); !r)
      return fail(r.error().wrap("render table ip " + model.table));
  out << "\t}\n";

  out << "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
      << mesh.postrouting;
  for (const auto& n : networks) {
    auto subnet = n.subnet.network().str();
    // 127.0.0.1:PORT -> container: needs route_localnet on the bridge and this masquerade.
    out << "\t\toifname " << q(n.bridge) << " ip saddr 127.0.0.0/8 masquerade\n";
    // Hairpin: a container reaching a published port of its own network via the host address.
    out << "\t\toifname " << q(n.bridge) << " ip saddr " << subnet
        << " ct status dnat masquerade\n";
    if (!n.internal)
      out << "\t\tip saddr " << subnet << " oifname != " << q(n.bridge) << " masquerade\n";
  }
  out << "\t}\n";

  render_forward(out, networks);

  // The host's loopback services are not the containers' (CVE-2020-8558): route_localnet lets
  // a frame to the gateway's MAC with destination 127.0.0.1 in. Only a published port's DNAT
  // (and replies of connections already made, such as the host's own from 127.0.0.1) may pass.
  // `ct status & dnat == 0`, not `ct status != dnat`: the latter compares the whole word.
  if (!networks.empty()) {
    out << "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n";
    out << "\t\tiifname " << bridge_set(networks)
        << " ip daddr 127.0.0.0/8 ct state != { established, related } ct status & dnat == 0 "
           "drop\n";
    out << "\t}\n";
  }
  out << "}\n";
  return out.str();
}

std::string render_bridge_table(const FirewallModel& model) {
  auto networks = model.networks;
  std::sort(networks.begin(), networks.end(), [](auto& a, auto& b) { return a.bridge < b.bridge; });
  if (networks.empty()) return "";
  auto endpoints = model.endpoints;
  std::sort(endpoints.begin(), endpoints.end(),
            [](auto& a, auto& b) { return a.veth < b.veth; });
  // Requests for the gateway do not leave; the other hosts' gateways (requests or replies) do
  // not come in, neither to the containers (forward) nor to this host's bridge (input).
  std::string forward, input;
  for (const auto& n : networks) {
    if (n.vxlan.empty()) continue;
    auto gw = n.gateway.str();
    forward += "\t\toifname " + q(n.vxlan) + " arp daddr ip " + gw + " drop\n";
    auto in = "\t\tiifname " + q(n.vxlan) + " arp saddr ip " + gw + " drop\n";
    forward += in;
    input += in;
  }
  std::string out = "table bridge " + model.table + " {\n";
  for (const auto& set : endpoint_sets(endpoints))
    out += "\tset " + set.name + " {\n\t\ttype " + set.type + "\n" +
           (set.elements.empty() ? "" : "\t\telements = { " + set.elements + " }\n") + "\t}\n";
  // Every frame a container sends enters at prerouting, whether bridged or for the host. A
  // container's port is in the set before its link exists (see NetworkManager::attach). Ports
  // stack does not know are not dropped: telling this instance's bridges from another's needs
  // `meta ibrname` (CONFIG_NFT_BRIDGE_META), which kernels may lack (this project's VMs do).
  out += "\tchain prerouting {\n\t\ttype filter hook prerouting priority filter; policy accept;\n"
         "\t\tiifname @ports jump port\n\t}\n";
  // IPv4 and ARP, and IPv6 only from a port on a network with enable_ipv6. Never a router
  // advertisement or redirect: it would configure the others and the host (the CVE-2020-13401
  // class). VLAN-tagged frames go too. The source MAC and address, and the ARP sender, must be
  // the port's own; IPv6 link-local and unspecified sources (neighbour discovery) its own MAC.
  out += "\tchain port {\n\t\tether type != { ip, arp, ip6 } drop\n"
         "\t\tether type ip6 iifname != @ports6 drop\n"
         "\t\ticmpv6 type { nd-router-advert, nd-redirect } drop\n"
         "\t\tiifname . ether saddr . ip saddr != @port_addresses drop\n"
         "\t\tiifname . ether saddr . arp saddr ip != @port_addresses drop\n"
         "\t\tiifname . arp saddr ether . arp saddr ip != @port_addresses drop\n"
         "\t\tip6 saddr != { ::, fe80::/10 } iifname . ether saddr . ip6 saddr != "
         "@port_addresses6 drop\n"
         "\t\tip6 saddr { ::, fe80::/10 } iifname . ether saddr != @port_macs6 drop\n\t}\n";
  if (!forward.empty()) {
    out += "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n" +
           forward + "\t}\n";
    out += "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n" +
           input + "\t}\n";
  }
  return out + "}\n";
}

std::string render_endpoint_change(std::string_view table,
                                   const std::vector<FirewallEndpoint>& add,
                                   const std::vector<FirewallEndpoint>& remove) {
  std::string out;
  for (const auto& [verb, eps] : {std::pair{"add", &add}, std::pair{"delete", &remove}}) {
    // One transaction: the sets change together.
    auto prefix = std::string(verb) + " element bridge " + std::string(table) + " ";
    for (const auto& set : endpoint_sets(*eps))
      if (!set.elements.empty()) out += prefix + set.name + " { " + set.elements + " }\n";
  }
  return out;
}

Result<std::string> render_transaction(const FirewallModel& model) {
  std::string head;
  for (const char* family : {"ip", "ip6", "bridge"})
    head += std::string("table ") + family + " " + model.table + " {}\ndelete table " + family +
            " " + model.table + "\n";
  if (model.networks.empty()) return head;
  auto table = STACK_TRY_CTX(render_table(model), "firewall");
  auto table6 = STACK_TRY_CTX(render_table6(model), "firewall");
  return head + table + table6 + render_bridge_table(model);
}

std::vector<std::string> docker_accept_rules(std::string_view tag) {
  auto comment = " comment " + q(tag);
  return {"iifname \"stk-*\" accept" + comment, "oifname \"stk-*\" accept" + comment};
}

}  // namespace stack::net
