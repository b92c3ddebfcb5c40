// resolv.conf both ways: reading the host's (the embedded DNS server's upstreams) and rendering a
// container's (pointing at its network's DNS server). Pure text functions apart from
// read_resolv_conf; no sockets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::net::dns {

struct ResolvConf {
  std::vector<std::string> nameservers;  // as written (IPv4 or IPv6 literals)
  std::vector<std::string> search;       // the last `search` or `domain` line wins, as in glibc
  std::vector<std::string> options;      // "ndots:1", "edns0", ... from every `options` line
};

// Lenient like the C library: unknown keywords and malformed lines are skipped.
ResolvConf parse_resolv_conf(std::string_view text);
[[nodiscard]] Result<ResolvConf> read_resolv_conf(
    const std::filesystem::path& path = "/etc/resolv.conf");

// An upstream resolver the server forwards to.
struct Upstream {
  std::string address;  // IPv4 or IPv6 literal
  std::uint16_t port = 53;

  std::string to_string() const;  // "192.0.2.1:53", "[2001:db8::1]:53"
  bool operator==(const Upstream&) const = default;
};

// "192.0.2.1", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]:5353".
[[nodiscard]] Result<Upstream> parse_upstream(std::string_view text);

// The nameservers of CONF as upstreams, in order; entries that are not IP literals (or carry a
// zone index) are skipped. Loopback stubs (127.0.0.53) are kept: the daemon forwards from the
// host side, where they are reachable.
std::vector<Upstream> upstreams_from(const ResolvConf& conf);

// A container's /etc/resolv.conf: its network's DNS server, the service's `dns_search`, and
// `options ndots:0` (so single-label service names never go through the search list) followed by
// the service's `dns_opt`; an `ndots:` in dns_opt replaces ours.
std::string render_container_resolv_conf(std::string_view nameserver,
                                         const std::vector<std::string>& dns_search,
                                         const std::vector<std::string>& dns_opt);

// The resolv.conf of a container on the host's network (no embedded DNS server there): the
// host's, with the service's `dns` servers instead of its nameservers, `dns_search` instead of
// its search list, and `dns_opt` added to its options, as docker writes it.
std::string render_host_resolv_conf(const ResolvConf& host, const std::vector<std::string>& dns,
                                    const std::vector<std::string>& dns_search,
                                    const std::vector<std::string>& dns_opt);

}  // namespace stack::net::dns
