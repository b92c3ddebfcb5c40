// resolv.conf parsing (the host's upstream resolvers) and rendering (a container's file).
// Pure apart from read_resolv_conf, which reads one file.

#include "net/dns/resolv_conf.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace stack::net::dns {

namespace {

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}
bool is_ipv6(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

}  // namespace

ResolvConf parse_resolv_conf(std::string_view text) {
  ResolvConf conf;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (auto c = line.find_first_of("#;"); c != std::string_view::npos) line = line.substr(0, c);
    auto words = split_words(line);
    if (words.empty()) continue;
    std::string_view key = words[0];
    if (key == "nameserver" && words.size() >= 2) {
      conf.nameservers.emplace_back(words[1]);
    } else if (key == "search" || key == "domain") {
      conf.search.clear();
      for (std::size_t i = 1; i < words.size(); ++i) conf.search.emplace_back(words[i]);
    } else if (key == "options") {
      for (std::size_t i = 1; i < words.size(); ++i) conf.options.emplace_back(words[i]);
    }
  }
  return conf;
}

Result<ResolvConf> read_resolv_conf(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return fail_errno("read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return parse_resolv_conf(text.str());
}

std::string Upstream::to_string() const {
  if (address.find(':') != std::string::npos) return "[" + address + "]:" + std::to_string(port);
  return address + ":" + std::to_string(port);
}

Result<Upstream> parse_upstream(std::string_view text) {
  std::string ctx = "upstream '" + std::string(text) + "'";
  Upstream up;
  std::string_view host = text;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return fail(ctx + ": missing ']'");
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail(ctx + ": expected ':' after ']'");
      port = rest.substr(1);
      if (port.empty()) return fail(ctx + ": empty port");
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    auto colon = text.find(':');
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) return fail(ctx + ": empty port");
  }
  up.address = std::string(host);
  if (!is_ipv4(up.address) && !is_ipv6(up.address)) return fail(ctx + ": not an IP address");
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      return fail(ctx + ": bad port");
    up.port = static_cast<std::uint16_t>(value);
  }
  return up;
}

std::vector<Upstream> upstreams_from(const ResolvConf& conf) {
  std::vector<Upstream> out;
  for (const auto& ns : conf.nameservers) {
    if (!is_ipv4(ns) && !is_ipv6(ns)) continue;  // hostnames, "fe80::1%eth0"
    Upstream up{ns, 53};
    if (std::find(out.begin(), out.end(), up) == out.end()) out.push_back(std::move(up));
  }
  return out;
}

std::string render_container_resolv_conf(std::string_view nameserver,
                                         const std::vector<std::string>& dns_search,
                                         const std::vector<std::string>& dns_opt) {
  std::string out = "# Written by stack: the embedded DNS server of this container's network.\n";
  out.append("nameserver ").append(nameserver).append("\n");

  std::vector<std::string> search;
  for (const auto& s : dns_search)
    if (!s.empty() && std::find(search.begin(), search.end(), s) == search.end())
      search.push_back(s);
  if (!search.empty()) {
    out.append("search");
    for (const auto& s : search) out.append(" ").append(s);
    out.append("\n");
  }

  bool user_ndots = std::any_of(dns_opt.begin(), dns_opt.end(),
                                [](const std::string& o) { return o.starts_with("ndots:"); });
  std::vector<std::string> options;
  if (!user_ndots) options.emplace_back("ndots:0");
  for (const auto& o : dns_opt)
    if (!o.empty() && std::find(options.begin(), options.end(), o) == options.end())
      options.push_back(o);
  out.append("options");
  for (const auto& o : options) out.append(" ").append(o);
  out.append("\n");
  return out;
}

std::string render_host_resolv_conf(const ResolvConf& host, const std::vector<std::string>& dns,
                                    const std::vector<std::string>& dns_search,
                                    const std::vector<std::string>& dns_opt) {
  std::string out = "# Written by stack: the host's resolv.conf with the service's dns fields.\n";
  for (const auto& ns : dns.empty() ? host.nameservers : dns) out += "nameserver " + ns + "\n";
  const auto& search = dns_search.empty() ? host.search : dns_search;
  if (!search.empty()) {
    out += "search";
    for (const auto& s : search) out += " " + s;
    out += "\n";
  }
  std::vector<std::string> options = host.options;
  for (const auto& o : dns_opt)
    if (!o.empty() && std::find(options.begin(), options.end(), o) == options.end())
      options.push_back(o);
  if (!options.empty()) {
    out += "options";
    for (const auto& o : options) out += " " + o;
    out += "\n";
  }
  return out;
}

}  // namespace stack::net::dns
