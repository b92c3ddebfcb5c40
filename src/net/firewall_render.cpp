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
  std::string ports, addresses;
  for (const auto& e : endpoints) {
    ports += (ports.empty() ? "" : ", ") + q(e.veth);
    addresses += (addresses.empty() ? "" : ", ") + q(e.veth) + " . " + e.mac.str() + " . " +
                 e.address.str();
  }
  std::string out = "table bridge " + model.table + " {\n";
  out += "\tset ports {\n\t\ttype ifname\n";
  if (!ports.empty()) out += "\t\telements = { " + ports + " }\n";
  out += "\t}\n\tset port_addresses {\n\t\ttype ifname . ether_addr . ipv4_addr\n";
  if (!addresses.empty()) out += "\t\telements = { " + addresses + " }\n";
  out += "\t}\n";
  // Every frame a container sends enters at prerouting, whether bridged or for the host. A
  // container's port is in the set before its link exists (see NetworkManager::attach). Ports
  // stack does not know are not dropped: telling this instance's bridges from another's needs
  // `meta ibrname` (CONFIG_NFT_BRIDGE_META), which kernels may lack (this project's VMs do).
  out += "\tchain prerouting {\n\t\ttype filter hook prerouting priority filter; policy accept;\n"
         "\t\tiifname @ports jump port\n\t}\n";
  // IPv4 and ARP only: stack gives containers no IPv6, and an IPv6 router advertisement from a
  // container would configure the others and the host (the CVE-2020-13401 class). VLAN-tagged
  // frames go too. The source MAC and address, and the ARP sender, must be the port's own.
  out += "\tchain port {\n\t\tether type != { ip, arp } drop\n"
         "\t\tiifname . ether saddr . ip saddr != @port_addresses drop\n"
         "\t\tiifname . ether saddr . arp saddr ip != @port_addresses drop\n"
         "\t\tiifname . arp saddr ether . arp saddr ip != @port_addresses drop\n\t}\n";
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
    std::string ports, addresses;
    for (const auto& e : *eps) {
      ports += (ports.empty() ? "" : ", ") + q(e.veth);
      addresses += (addresses.empty() ? "" : ", ") + q(e.veth) + " . " + e.mac.str() + " . " +
                   e.address.str();
    }
    if (ports.empty()) continue;
    // One transaction: both sets change together.
    auto prefix = std::string(verb) + " element bridge " + std::string(table) + " ";
    out += prefix + "ports { " + ports + " }\n" + prefix + "port_addresses { " + addresses +
           " }\n";
  }
  return out;
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
