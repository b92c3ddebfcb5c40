// Renders an instance's `table ip` and `table bridge` from a FirewallModel: pure text, so the unit tests pin it. The rules
// and why each one is needed are in RECIPES.md, "Published ports with nftables".
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
const char* proto_name(Proto p) { return p == Proto::kTcp ? "tcp" : "udp"; }

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

}  // namespace

Result<std::string> render_table(const FirewallModel& model) {
  auto networks = model.networks;
  std::sort(networks.begin(), networks.end(), [](auto& a, auto& b) { return a.bridge < b.bridge; });
  auto ports = model.ports;
  std::sort(ports.begin(), ports.end(), [](const PortMapping& a, const PortMapping& b) {
    return std::tie(a.host_ip, a.proto, a.host_port, a.container_ip) <
           std::tie(b.host_ip, b.proto, b.host_port, b.container_ip);
  });

  std::ostringstream out;
  out << "table ip " << model.table << " {\n";
  // Published ports: DNAT for packets to any local address, arriving (prerouting) or sent by
  // the host itself (output), without listing the host's addresses.
  out << "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
      << "\t\tfib daddr type local jump published\n\t}\n";
  out << "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n"
      << "\t\tfib daddr type local jump published\n\t}\n";
  out << "\tchain published {\n";
  for (const auto& p : ports)
    if (auto r = render_port(out, p); !r)
      return fail(r.error().wrap("render table ip " + model.table));
  out << "\t}\n";

  out << "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n";
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

  out << "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n";
  for (const auto& n : networks) {
    if (!n.internal) continue;
    out << "\t\tiifname " << q(n.bridge) << " oifname != " << q(n.bridge) << " drop\n";
    out << "\t\toifname " << q(n.bridge) << " iifname != " << q(n.bridge) << " drop\n";
  }
  // Published ports may be reached from another network (through the host address).
  out << "\t\tct status dnat accept\n";
  for (const auto& n : networks)
    out << "\t\tiifname " << q(n.bridge) << " oifname \"stk-*\" oifname != " << q(n.bridge)
        << " drop\n";
  out << "\t}\n";
  out << "}\n";
  return out.str();
}

std::string render_bridge_table(const FirewallModel& model) {
  auto networks = model.networks;
  std::sort(networks.begin(), networks.end(), [](auto& a, auto& b) { return a.bridge < b.bridge; });
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
  if (forward.empty()) return "";
  std::string out = "table bridge " + model.table + " {\n";
  out += "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n" +
         forward + "\t}\n";
  out += "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n" + input +
         "\t}\n";
  return out + "}\n";
}

Result<std::string> render_transaction(const FirewallModel& model) {
  std::string head;
  for (const char* family : {"ip", "bridge"})
    head += std::string("table ") + family + " " + model.table + " {}\ndelete table " + family +
            " " + model.table + "\n";
  if (model.networks.empty()) return head;
  auto table = STACK_TRY_CTX(render_table(model), "firewall");
  return head + table + render_bridge_table(model);
}

std::vector<std::string> docker_accept_rules(std::string_view tag) {
  auto comment = " comment " + q(tag);
  return {"iifname \"stk-*\" accept" + comment, "oifname \"stk-*\" accept" + comment};
}

}  // namespace stack::net
