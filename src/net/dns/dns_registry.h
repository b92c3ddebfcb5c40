// The names the embedded DNS server answers: the Records interface it asks, and DnsRegistry,
// the in-memory implementation the daemon feeds as containers join and leave networks.
// Pure data, no I/O. Not thread-safe by design: every call happens on the daemon's loop thread.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "net/dns/resolv_conf.h"

namespace stack::net::dns {

// An IPv4 address, host byte order.
struct Ipv4 {
  std::uint32_t value = 0;

  static std::optional<Ipv4> parse(std::string_view text);  // dotted quad only
  std::string to_string() const;
  auto operator<=>(const Ipv4&) const = default;
};

// An IPv6 address, network byte order.
struct Ipv6 {
  std::array<std::uint8_t, 16> bytes{};
  auto operator<=>(const Ipv6&) const = default;
};

// Lower case, one trailing dot removed: the form names are stored and looked up in.
std::string normalize_name(std::string_view name);

// What the server asks about a query. Implementations are called on the loop thread.
class Records {
 public:
  virtual ~Records() = default;
  // The A addresses answering NAME (normalised) for a client whose source address is CLIENT, in
  // answer order; nullopt when NAME is not registered on any network the client is on (the
  // server then forwards it upstream). Non-const: answers may rotate (round robin).
  virtual std::optional<std::vector<Ipv4>> lookup_a(Ipv4 client, std::string_view name) = 0;
  // Whether NAME is registered for CLIENT, without rotating: other query types for a registered
  // name get an empty NOERROR, and must not advance the round robin of the A answers.
  virtual bool contains(Ipv4 client, std::string_view name) const = 0;
  // The AAAA addresses answering NAME for CLIENT: those of the registered containers that have
  // one (a network with enable_ipv6), in the order lookup_a would give, without rotating.
  virtual std::vector<Ipv6> lookup_aaaa(Ipv4 /*client*/, std::string_view /*name*/) const {
    return {};
  }
  // Where to forward CLIENT's other queries: its service's `dns` servers; empty for the
  // server's own upstreams.
  virtual std::vector<Upstream> upstreams_of(Ipv4 /*client*/) const { return {}; }
  // The client key (a container's IPv4 allocation on its network, which an IPv6-only container
  // holds but does not carry) of a query coming from CLIENT6; nullopt: an unknown client.
  virtual std::optional<Ipv4> client_of6(const Ipv6& /*client6*/) const { return std::nullopt; }
};

// A name only one container sees (compose's `links` and `external_links`): ALIAS answers with
// what TARGET (a service or container name) answers on the linking container's networks.
struct Link {
  std::string alias;
  std::string target;
  bool operator==(const Link&) const = default;
};

// One container's attachment to one network, with every name it answers to there.
struct Endpoint {
  std::string network;    // network id; names are visible to containers on the same network
  std::string container;  // container name, unique on the host ("demo-web-1"); also a DNS name
  Ipv4 address;           // the container's address on NETWORK
  std::string service;    // project-less service name ("web"): every replica answers it
  std::string hostname;   // the service's `hostname:`, if any
  std::vector<std::string> aliases;  // the service's `aliases:` on NETWORK
  std::vector<Link> links = {};          // names this container alone resolves
  std::vector<Upstream> upstreams = {};  // the service's `dns`: this container's other queries
  std::optional<Ipv6> address6 = std::nullopt;  // its IPv6 address on NETWORK, if it has one
  // false on an IPv6-only network (enable_ipv4: false): ADDRESS only identifies the container
  // and is never answered (an A query gets NOERROR, no data).
  bool has_ipv4 = true;
};

// Scoping: a client is identified by its source address; it sees the names of every network
// that the container owning that address is attached to (a container on two networks resolves
// names of both, whichever gateway it asks). Unknown clients see no registered names.
// A link alias of the asking container wins over a registered name (as the /etc/hosts entry
// docker writes for a link does). Several containers answering one name (replicas, shared aliases) are returned rotated by
// one position per lookup. Changes are visible to the very next lookup.
class DnsRegistry final : public Records {
 public:
  // Adds ENDPOINT, replacing what CONTAINER had on NETWORK (a restart with a new address).
  // Fails, changing nothing, on an empty key or a name that is not a valid DNS name.
  [[nodiscard]] Result<void> add(const Endpoint& endpoint);
  // Removes CONTAINER from NETWORK; false when it was not there.
  bool remove(std::string_view network, std::string_view container);
  // Removes CONTAINER from every network; returns how many attachments went.
  std::size_t remove_container(std::string_view container);

  std::optional<std::vector<Ipv4>> lookup_a(Ipv4 client, std::string_view name) override;
  bool contains(Ipv4 client, std::string_view name) const override;
  std::vector<Ipv6> lookup_aaaa(Ipv4 client, std::string_view name) const override;
  std::vector<Upstream> upstreams_of(Ipv4 client) const override;
  std::optional<Ipv4> client_of6(const Ipv6& client6) const override;

  // The networks a client at CLIENT is on, sorted.
  std::vector<std::string> networks_of(Ipv4 client) const;
  std::size_t size() const;  // attachments

 private:
  struct Key {
    std::string container;
    std::string network;
    bool operator==(const Key&) const = default;
  };
  struct Entry {
    Ipv4 address;
    std::vector<std::string> names;  // normalised, unique
    std::vector<Link> links;         // normalised
    std::vector<Upstream> upstreams;
    std::optional<Ipv6> address6;
    bool has_ipv4 = true;
  };
  void unindex(const Key& key, const Entry& entry);
  std::vector<const Entry*> visible(Ipv4 client, const std::string& name) const;
  std::vector<const Entry*> registered(const std::vector<std::string>& scope,
                                       const std::string& name) const;

  // container -> network -> entry
  std::map<std::string, std::map<std::string, Entry, std::less<>>, std::less<>> containers_;
  std::unordered_map<std::string, std::vector<Key>> by_name_;       // in registration order
  std::unordered_multimap<std::uint32_t, std::string> by_address_;  // address -> container
  std::unordered_map<std::string, std::uint64_t> rotation_;         // name -> lookups so far
};

// Checks that NAME is usable as a DNS name: 1..253 bytes, labels 1..63, printable ASCII without
// spaces or backslashes.
[[nodiscard]] Result<void> validate_name(std::string_view name);

}  // namespace stack::net::dns
