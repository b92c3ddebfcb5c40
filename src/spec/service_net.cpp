// The networking fields of a service: ports (every short form, ranges, host IPs, protocols,
// and the long syntax), expose, networks, extra_hosts. Pure.
#include <algorithm>
#include <cstdlib>
#include <tuple>

#include "spec/field.h"
#include "spec/shape.h"

namespace stack::spec {
namespace {

struct Range {
  int first = 0;
  int last = 0;
  [[nodiscard]] int size() const { return last - first + 1; }
};

// "80" or "8000-8010"; ports 1-65535 (0 allowed for ALLOW_ZERO: an ephemeral host port).
std::optional<Range> parse_range(const std::string& text, bool allow_zero) {
  auto number = [&](const std::string& t) -> std::optional<int> {
    if (t.empty() || t.size() > 5 || !std::all_of(t.begin(), t.end(), ::isdigit))
      return std::nullopt;
    int v = std::atoi(t.c_str());
    if (v > 65535 || (v == 0 && !allow_zero)) return std::nullopt;
    return v;
  };
  size_t dash = text.find('-');
  auto first = number(text.substr(0, dash));
  auto last = dash == std::string::npos ? first : number(text.substr(dash + 1));
  if (!first || !last || *last < *first) return std::nullopt;
  return Range{*first, *last};
}

bool valid_protocol(const std::string& p) { return p == "tcp" || p == "udp" || p == "sctp"; }

// An IPv4 address, or an IPv6 one (which the short syntax writes in brackets).
bool valid_host_ip(const std::string& ip, bool bracketed) {
  if (ip.empty()) return true;
  if (bracketed) return ip.find(':') != std::string::npos &&
                        ip.find_first_not_of("0123456789abcdefABCDEF:.") == std::string::npos;
  int parts = 0;
  size_t start = 0;
  for (size_t dot; start <= ip.size(); start = dot + 1, ++parts) {
    dot = ip.find('.', start);
    if (dot == std::string::npos) dot = ip.size();
    std::string part = ip.substr(start, dot - start);
    if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), ::isdigit) ||
        std::atoi(part.c_str()) > 255)
      return false;
  }
  return parts == 4;
}

auto port_key(const Port& p) {
  return std::tie(p.target, p.protocol, p.host_ip, p.published_start, p.published_end, p.mode,
                  p.name, p.app_protocol);
}

// Expands one mapping of CONTAINER to HOST ports into Port entries: pairwise for two ranges
// of the same size, a host range for one container port ("8000-8010:80").
bool expand(const Range& container, const std::optional<Range>& host, const Port& proto,
            std::vector<Port>& out) {
  if (host && host->size() != 1 && container.size() != 1 && host->size() != container.size())
    return false;
  for (int i = 0; i < container.size(); ++i) {
    Port p = proto;
    p.target = container.first + i;
    if (host && host->first != 0) {
      if (container.size() == 1) {
        p.published_start = host->first;
        p.published_end = host->last;
      } else if (host->size() == 1) {
        return false;  // several container ports cannot share one host port
      } else {
        p.published_start = p.published_end = host->first + i;
      }
    }
    out.push_back(p);
  }
  return true;
}

void add_short_port(const FieldCtx& ctx, const Node& n, Service& s) {
  const std::string expected = "a port like 8080:80, 127.0.0.1:8080:80/udp or 3000-3005";
  std::string text = n.value;
  Port proto;
  proto.pos = n.pos;
  if (size_t slash = text.rfind('/'); slash != std::string::npos) {
    proto.protocol = text.substr(slash + 1);
    text.resize(slash);
  }
  std::string host_part;
  std::string container_part = text;
  bool bracketed = !text.empty() && text[0] == '[';
  if (bracketed) {  // [::1]:8080:80
    size_t close = text.find("]:");
    if (close == std::string::npos) return ctx.type_error(n, expected);
    proto.host_ip = text.substr(1, close - 1);
    text = text.substr(close + 2);
    size_t colon = text.find(':');
    if (colon == std::string::npos) return ctx.type_error(n, expected);
    host_part = text.substr(0, colon);
    container_part = text.substr(colon + 1);
  } else if (size_t last = text.rfind(':'); last != std::string::npos) {
    container_part = text.substr(last + 1);
    std::string rest = text.substr(0, last);
    size_t before = rest.rfind(':');
    host_part = before == std::string::npos ? rest : rest.substr(before + 1);
    if (before != std::string::npos) proto.host_ip = rest.substr(0, before);
  }
  auto container = parse_range(container_part, false);
  std::optional<Range> host;
  if (!host_part.empty()) host = parse_range(host_part, true);
  if (!container || (!host_part.empty() && !host) || !valid_protocol(proto.protocol) ||
      !valid_host_ip(proto.host_ip, bracketed) || !expand(*container, host, proto, s.ports))
    ctx.type_error(n, expected);
}

void add_long_port(const FieldCtx& ctx, const Node& n, Service& s) {
  using namespace shapes;
  static const Shape shape = object({{"name", str()},
                                     {"mode", str({"host", "ingress"})},
                                     {"host_ip", str()},
                                     {"target", scalar()},
                                     {"published", scalar()},
                                     {"protocol", str({"tcp", "udp", "sctp"})},
                                     {"app_protocol", str()}},
                                    {"target"});
  nlohmann::json j = shape_json(ctx, n, shape);
  if (!j.is_object() || !j.contains("target")) return;
  Port proto;
  proto.pos = n.pos;
  proto.name = j.value("name", "");
  proto.mode = j.value("mode", "ingress");
  proto.host_ip = j.value("host_ip", "");
  proto.protocol = j.value("protocol", "tcp");
  proto.app_protocol = j.value("app_protocol", "");
  auto text = [](const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  auto container = parse_range(text(j["target"]), false);
  std::optional<Range> host;
  if (j.contains("published")) host = parse_range(text(j["published"]), true);
  if (!container) return ctx.child("target").type_error(*n.find("target"), "a port 1-65535");
  if (j.contains("published") && !host)
    return ctx.child("published")
        .type_error(*n.find("published"), "a port or a range like 8000-8010");
  if (!expand(*container, host, proto, s.ports))
    ctx.error(n.pos, "published and target ranges differ in size");
}

}  // namespace

void normalize_ports(const FieldCtx& ctx, const Node& n, Service& s) {
  if (n.is_null()) return;
  if (!n.is_sequence()) return ctx.type_error(n, "a list of ports");
  for (const Node& item : n.items) {
    if (item.is_scalar())
      add_short_port(ctx, item, s);
    else if (item.is_mapping())
      add_long_port(ctx, item, s);
    else
      ctx.type_error(item, "a port like 8080:80 or a mapping");
  }
  std::stable_sort(s.ports.begin(), s.ports.end(),
                   [](const Port& a, const Port& b) { return port_key(a) < port_key(b); });
  s.ports.erase(std::unique(s.ports.begin(), s.ports.end(),
                            [](const Port& a, const Port& b) { return port_key(a) == port_key(b); }),
                s.ports.end());
}

void normalize_expose(const FieldCtx& ctx, const Node& n, Service& s) {
  if (n.is_null()) return;
  if (!n.is_sequence()) return ctx.type_error(n, "a list of ports");
  for (const Node& item : n.items) {
    auto text = ctx.string(item);
    if (!text) continue;
    std::string protocol = "tcp";
    std::string port = *text;
    if (size_t slash = port.find('/'); slash != std::string::npos) {
      protocol = port.substr(slash + 1);
      port.resize(slash);
    }
    auto range = parse_range(port, false);
    if (!range || !valid_protocol(protocol)) {
      ctx.type_error(item, "a port like 80, 80/udp or 8000-8010");
      continue;
    }
    for (int p = range->first; p <= range->last; ++p) s.expose.push_back(ExposedPort{p, protocol});
  }
  auto key = [](const ExposedPort& e) { return std::tie(e.port, e.protocol); };
  std::sort(s.expose.begin(), s.expose.end(),
            [&](const ExposedPort& a, const ExposedPort& b) { return key(a) < key(b); });
  s.expose.erase(std::unique(s.expose.begin(), s.expose.end(),
                             [&](const ExposedPort& a, const ExposedPort& b) {
                               return key(a) == key(b);
                             }),
                 s.expose.end());
}

void normalize_service_networks(const FieldCtx& ctx, const Node& n, Service& s) {
  s.networks.clear();
  if (n.is_null()) return;
  if (n.is_sequence()) {
    for (const Node& item : n.items) {
      auto name = ctx.string(item);
      if (!name) continue;
      NetworkAttachment a;
      a.network = *name;
      a.pos = item.pos;
      s.networks.push_back(std::move(a));
    }
  } else if (n.is_mapping()) {
    using namespace shapes;
    static const Shape shape = object({{"aliases", strings()},
                                       {"ipv4_address", str()},
                                       {"ipv6_address", str()},
                                       {"interface_name", str()},
                                       {"link_local_ips", strings()},
                                       {"mac_address", str()},
                                       {"driver_opts", dict()},
                                       {"priority", integer()},
                                       {"gw_priority", integer()}});
    for (const Entry& e : n.entries) {
      NetworkAttachment a;
      a.network = e.key;
      a.pos = e.key_pos;
      nlohmann::json j = shape_json(ctx.child(e.key), e.value, shape);
      if (j.is_object()) {
        if (j.contains("aliases")) a.aliases = j["aliases"].get<std::vector<std::string>>();
        a.ipv4_address = j.value("ipv4_address", "");
        a.ipv6_address = j.value("ipv6_address", "");
        a.interface_name = j.value("interface_name", "");
        a.mac_address = j.value("mac_address", "");
        if (j.contains("link_local_ips"))
          a.link_local_ips = j["link_local_ips"].get<std::vector<std::string>>();
        if (j.contains("driver_opts"))
          for (auto& [k, v] : j["driver_opts"].items())
            a.driver_opts[k] = v.is_string() ? v.get<std::string>() : "";
        a.priority = static_cast<int>(j.value("priority", int64_t{0}));
        if (j.contains("gw_priority")) a.gw_priority = j["gw_priority"].get<int>();
        std::sort(a.aliases.begin(), a.aliases.end());
        a.aliases.erase(std::unique(a.aliases.begin(), a.aliases.end()), a.aliases.end());
      }
      s.networks.push_back(std::move(a));
    }
  } else {
    return ctx.type_error(n, "a list of network names or a mapping");
  }
  std::stable_sort(s.networks.begin(), s.networks.end(),
                   [](const NetworkAttachment& a, const NetworkAttachment& b) {
                     return std::tie(b.priority, a.network) < std::tie(a.priority, b.network);
                   });
  for (size_t i = 1; i < s.networks.size(); ++i)
    if (s.networks[i].network == s.networks[i - 1].network)
      ctx.error(s.networks[i].pos, "network \"" + s.networks[i].network + "\" listed twice");
}

void normalize_extra_hosts(const FieldCtx& ctx, const Node& n, Service& s) {
  auto add = [&](const Node& at, std::string host, std::string ip) {
    if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    if (host.empty() || ip.empty()) return ctx.type_error(at, "an entry like myhost=10.0.0.5");
    s.extra_hosts.push_back(HostEntry{std::move(host), std::move(ip)});
  };
  if (n.is_mapping()) {
    for (const Entry& e : n.entries) {
      if (e.value.is_sequence()) {
        for (const Node& ip : e.value.items)
          if (auto v = ctx.child(e.key).string(ip)) add(ip, e.key, *v);
      } else if (auto v = ctx.child(e.key).string(e.value)) {
        add(e.value, e.key, *v);
      }
    }
  } else if (n.is_sequence()) {
    for (const Node& item : n.items) {
      auto text = ctx.string(item);
      if (!text) continue;
      size_t sep = text->find('=');
      if (sep == std::string::npos) sep = text->find(':');
      if (sep == std::string::npos) {
        ctx.type_error(item, "an entry like myhost=10.0.0.5 or myhost:10.0.0.5");
        continue;
      }
      add(item, text->substr(0, sep), text->substr(sep + 1));
    }
  } else if (!n.is_null()) {
    return ctx.type_error(n, "a mapping or a list of HOST=IP");
  }
  auto key = [](const HostEntry& h) { return std::tie(h.host, h.ip); };
  std::sort(s.extra_hosts.begin(), s.extra_hosts.end(),
            [&](const HostEntry& a, const HostEntry& b) { return key(a) < key(b); });
  s.extra_hosts.erase(
      std::unique(s.extra_hosts.begin(), s.extra_hosts.end(),
                  [&](const HostEntry& a, const HostEntry& b) { return key(a) == key(b); }),
      s.extra_hosts.end());
}

}  // namespace stack::spec
