// Test doubles for the network code's kernel seams: a stateful FakeNetlink (links, namespaces,
// FDB, sysctls) that records typed calls in order and can fail the Nth call of a kind, and a
// FakeNft that records nft command buffers. Contract tests keep FakeNetlink honest.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "net/firewall.h"
#include "net/netlink.h"

namespace stack::test {

class FakeNetlink final : public net::Netlink {
 public:
  struct Link {
    net::LinkInfo info;
    std::vector<net::Cidr> addresses;
    std::optional<net::Ipv4> gateway;  // default route (inside a namespace)
    int peer_netns = -1;               // veth host end: the namespace of its peer
    std::vector<std::pair<net::Mac, net::Ipv4>> fdb;
    bool hairpin = false;  // a bridge port's hairpin mode
  };

  std::vector<std::string> calls;                    // "create_veth stk0123 stk-1a2b eth0 1500"
  std::map<std::string, int> fail_on;                // {"create_veth", 2}: the 2nd such call fails
  std::map<std::string, Link> links;                 // the host namespace
  std::map<int, std::map<std::string, Link>> netns;  // a container namespace by its fd
  std::map<std::string, std::string> sysctls;
  std::vector<net::Cidr> routed;  // extra host routes for list_routed_subnets
  std::vector<std::tuple<int, std::string, net::Ipv4, net::Mac>> neighbours;

  // The peer in namespace FD of the veth whose host end was HOST_END.
  std::map<std::string, std::string> peer_of;  // host end -> peer name
  void drop_peer(int fd, const std::string& host_end) {
    auto it = peer_of.find(host_end);
    if (it == peer_of.end()) return;
    if (auto ns = netns.find(fd); ns != netns.end()) ns->second.erase(it->second);
    peer_of.erase(it);
  }
  // The container's namespace is gone: its links and their veth host ends go with it.
  void drop_netns(int fd) {
    netns.erase(fd);
    std::erase_if(links, [&](const auto& kv) { return kv.second.peer_netns == fd; });
  }
  size_t count(const std::string& kind) const {
    return static_cast<size_t>(std::count_if(calls.begin(), calls.end(), [&](const std::string& c) {
      return c == kind || c.rfind(kind + " ", 0) == 0;
    }));
  }

  Result<void> ensure_bridge(const net::BridgeConfig& c) override {
    if (auto f =
            record("ensure_bridge", c.name + " " + (c.address4 ? c.gateway.str() : "-") + " " + std::to_string(c.mtu) +
                                        (c.gateway6 ? " " + c.gateway6->str() : "")))
      return *f;
    auto it = links.find(c.name);
    if (it != links.end() && it->second.info.kind != "bridge")
      return fail("ensure bridge " + c.name + ": a link of that name exists and is not a bridge",
                  EEXIST);
    Link& l = links[c.name];
    l.info = {c.name, "bridge", "", c.mtu, true};
    if (std::find(l.addresses.begin(), l.addresses.end(), c.gateway) == l.addresses.end())
      l.addresses.push_back(c.gateway);
    return {};
  }
  Result<void> delete_link(std::string_view name) override {
    std::string n(name);
    if (auto f = record("delete_link", n)) return *f;
    auto it = links.find(n);
    if (it == links.end()) return fail("delete link " + n + ": no such device", ENODEV);
    int peer = it->second.peer_netns;
    links.erase(it);
    // A deleted bridge releases its ports (they survive, unenslaved, losing their port
    // settings); a deleted veth takes its peer along.
    for (auto& [_, l] : links)
      if (l.info.master == n) {
        l.info.master.clear();
        l.hairpin = false;
      }
    if (peer >= 0) drop_peer(peer, n);
    return {};
  }
  Result<std::optional<net::LinkInfo>> get_link(std::string_view name) override {
    if (auto f = record("get_link", std::string(name))) return *f;
    auto it = links.find(std::string(name));
    if (it == links.end()) return std::optional<net::LinkInfo>();
    return std::optional<net::LinkInfo>(it->second.info);
  }
  Result<std::vector<net::LinkInfo>> list_links(std::string_view prefix) override {
    if (auto f = record("list_links", std::string(prefix))) return *f;
    std::vector<net::LinkInfo> out;
    for (const auto& [name, l] : links)
      if (name.starts_with(prefix)) out.push_back(l.info);
    return out;  // std::map: sorted by name
  }
  Result<void> create_veth(const net::VethConfig& c) override {
    if (auto f = record("create_veth", c.host_name + " " + c.bridge + " " + c.peer_name + " " +
                                           std::to_string(c.mtu)))
      return *f;
    auto ctx = "create veth " + c.host_name;
    if (!links.count(c.bridge))
      return fail(ctx + ": link " + c.bridge + ": no such device", ENODEV);
    if (links.count(c.host_name)) return fail(ctx + ": object exists", EEXIST);
    if (netns[c.netns_fd].count(c.peer_name)) return fail(ctx + ": object exists", EEXIST);
    links[c.host_name] = Link{{c.host_name, "veth", c.bridge, c.mtu, true}, {}, {}, c.netns_fd, {}};
    links[c.host_name].hairpin = true;
    peer_of[c.host_name] = c.peer_name;
    // The peer is born down, as in the kernel; configure_interface brings it up.
    netns[c.netns_fd][c.peer_name] = Link{{c.peer_name, "veth", "", c.mtu, false}, {}, {}, -1, {}};
    netns[c.netns_fd][c.peer_name].info.mac = c.peer_mac.value_or(net::Mac{{2, 0xfa, 0xce, 0, 0, 1}});
    return {};
  }
  Result<void> ensure_port(std::string_view link, std::string_view bridge) override {
    std::string l(link), b(bridge);
    if (auto f = record("ensure_port", l + " " + b)) return *f;
    auto ctx = "attach " + l + " to " + b;
    if (!links.count(b)) return fail(ctx + ": link " + b + ": no such device", ENODEV);
    auto it = links.find(l);
    if (it == links.end()) return fail(ctx + ": link " + l + ": no such device", ENODEV);
    if (it->second.info.master != b) it->second.hairpin = true;
    it->second.info.master = b;
    it->second.info.up = true;
    return {};
  }
  Result<std::optional<net::LinkInfo>> get_link_in(int netns_fd, std::string_view name) override {
    if (auto f = record("get_link_in", std::string(name))) return *f;
    auto ns = netns.find(netns_fd);
    if (ns == netns.end()) return std::optional<net::LinkInfo>();
    auto it = ns->second.find(std::string(name));
    if (it == ns->second.end()) return std::optional<net::LinkInfo>();
    return std::optional<net::LinkInfo>(it->second.info);
  }
  // link_local_ips, as " +ADDR/N" each.
  static std::string extras(const net::InterfaceConfig& c) {
    std::string out;
    for (const auto& a : c.extra) out += " +" + a.str();
    for (const auto& a : c.extra6) out += " +" + a.str();
    return out;
  }
  Result<void> configure_interface(const net::InterfaceConfig& c) override {
    if (auto f = record("configure_interface", c.name + " " + (c.address4 ? c.address.str() : "-") + " " +
                                                   std::to_string(c.mtu) +
                                                   (c.gateway ? " via " + c.gateway->str() : "") +
                                                   (c.address6 ? " " + c.address6->str() : "") +
                                                   (c.gateway6 ? " via " + c.gateway6->str() : "") +
                                                   extras(c)))
      return *f;
    // netns_fd -1: this (the host's) namespace, as the real one does.
    auto& space = c.netns_fd < 0 ? links : netns[c.netns_fd];
    if (!space.count(c.name))
      return fail(
          "configure " + c.name + " in container namespace: link " + c.name + ": no such device",
          ENODEV);
    Link& l = space[c.name];
    l.info.mtu = c.mtu;
    l.info.up = true;
    if (c.address4 &&
        std::find(l.addresses.begin(), l.addresses.end(), c.address) == l.addresses.end())
      l.addresses.push_back(c.address);
    if (c.gateway) l.gateway = c.gateway;
    return {};
  }
  Result<void> ensure_vxlan(const net::VxlanConfig& c) override {
    if (auto f = record("ensure_vxlan", c.name + " " + std::to_string(c.vni) + " " + c.local.str() +
                                            " " + c.bridge))
      return *f;
    if (!links.count(c.bridge))
      return fail("ensure vxlan " + c.name + ": link " + c.bridge + ": no such device", ENODEV);
    auto it = links.find(c.name);
    if (it != links.end() && it->second.info.kind != "vxlan")
      return fail(
          "ensure vxlan " + c.name + ": a link of that name exists and is not a vxlan device",
          EEXIST);
    Link& l = links[c.name];
    l.info = {c.name, "vxlan", c.bridge, c.mtu, true};
    return {};
  }
  Result<void> append_fdb(std::string_view device, const net::Mac& mac, net::Ipv4 remote) override {
    if (auto f = record("append_fdb", std::string(device) + " " + mac.str() + " " + remote.str()))
      return *f;
    auto it = links.find(std::string(device));
    if (it == links.end())
      return fail("append fdb: link " + std::string(device) + ": no such device", ENODEV);
    auto entry = std::make_pair(mac, remote);
    auto& fdb = it->second.fdb;
    if (std::find(fdb.begin(), fdb.end(), entry) == fdb.end()) fdb.push_back(entry);
    return {};
  }
  Result<std::vector<net::Ipv4>> list_fdb_remotes(std::string_view device) override {
    if (auto f = record("list_fdb_remotes", std::string(device))) return *f;
    auto it = links.find(std::string(device));
    if (it == links.end())
      return fail("list fdb: link " + std::string(device) + ": no such device", ENODEV);
    std::vector<net::Ipv4> out;
    for (const auto& [mac, ip] : it->second.fdb)
      if (mac.is_zero()) out.push_back(ip);
    std::sort(out.begin(), out.end());
    return out;
  }
  Result<void> delete_fdb(std::string_view device, const net::Mac& mac,
                          net::Ipv4 remote) override {
    if (auto f = record("delete_fdb", std::string(device) + " " + mac.str() + " " + remote.str()))
      return *f;
    auto it = links.find(std::string(device));
    if (it == links.end())
      return fail("delete fdb: link " + std::string(device) + ": no such device", ENODEV);
    auto& fdb = it->second.fdb;
    fdb.erase(std::remove(fdb.begin(), fdb.end(), std::make_pair(mac, remote)), fdb.end());
    return {};
  }
  Result<void> delete_neighbour(std::string_view device, net::Ipv4 ip) override {
    if (auto f = record("delete_neighbour", std::string(device) + " " + ip.str())) return *f;
    std::erase_if(neighbours, [&](const auto& n) {
      return std::get<0>(n) < 0 && std::get<1>(n) == device && std::get<2>(n) == ip;
    });
    return {};
  }
  Result<void> add_neighbour(int netns_fd, std::string_view device, net::Ipv4 ip,
                             const net::Mac& mac) override {
    if (auto f = record("add_neighbour", std::string(device) + " " + ip.str() + " " + mac.str()))
      return *f;
    auto& space = netns_fd < 0 ? links : netns[netns_fd];
    if (!space.count(std::string(device)))
      return fail("add neighbour: link " + std::string(device) + ": no such device", ENODEV);
    neighbours.emplace_back(netns_fd, std::string(device), ip, mac);
    return {};
  }
  Result<std::vector<net::Cidr>> list_routed_subnets() override {
    if (auto f = record("list_routed_subnets", "")) return *f;
    std::vector<net::Cidr> out = routed;
    for (const auto& [_, l] : links)
      for (const auto& a : l.addresses) out.push_back(a.network());
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
  Result<void> set_sysctl(std::string_view key, std::string_view value) override {
    if (auto f = record("set_sysctl", std::string(key) + "=" + std::string(value))) return *f;
    sysctls[std::string(key)] = std::string(value);
    return {};
  }
  std::vector<std::string> uplinks6;  // devices of the IPv6 default routes
  Result<std::vector<std::string>> ipv6_default_route_devices() override { return uplinks6; }
  std::optional<net::Ipv4> default_source;  // the IPv4 default route's source address
  Result<std::optional<net::Ipv4>> default_route_source() override { return default_source; }
  Result<std::string> get_sysctl(std::string_view key) override {
    auto it = sysctls.find(std::string(key));
    if (it == sysctls.end())
      return fail("read sysctl /proc/sys/" + std::string(key) + ": No such file or directory",
                  ENOENT);
    return it->second;
  }

 private:
  // Records the call; returns the injected failure when this is the Nth call of its kind.
  std::optional<tl::unexpected<Error>> record(const std::string& kind, const std::string& args) {
    calls.push_back(args.empty() ? kind : kind + " " + args);
    int n = static_cast<int>(count(kind));
    auto it = fail_on.find(kind);
    if (it != fail_on.end() && it->second == n) return fail(kind + ": injected failure", EIO);
    return std::nullopt;
  }
};

// Records nft command buffers; answers list commands from LISTINGS (missing: ENOENT).
class FakeNft final : public net::NftRunner {
 public:
  std::vector<std::string> runs;
  std::map<std::string, std::string> listings;  // "list chain ip filter FORWARD" -> text
  int fail_on_run = 0;                          // the Nth run fails

  Result<std::string> run(std::string_view commands, bool) override {
    runs.emplace_back(commands);
    if (fail_on_run == static_cast<int>(runs.size())) return fail("nft: injected failure", EIO);
    if (commands.starts_with("list ")) {
      auto it = listings.find(std::string(commands));
      if (it == listings.end()) return fail("nft: Error: No such file or directory", ENOENT);
      return it->second;
    }
    return std::string();
  }
};

}  // namespace stack::test
