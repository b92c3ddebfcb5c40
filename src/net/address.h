// IPv4 addresses, CIDR blocks and MAC addresses as values: parsing, printing, arithmetic.
// Pure: no syscalls. Shared by IPAM, netlink and the firewall renderer.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack::net {

// An IPv4 address in host byte order.
struct Ipv4 {
  uint32_t value = 0;

  [[nodiscard]] static Result<Ipv4> parse(std::string_view text);  // "10.89.0.1"
  [[nodiscard]] std::string str() const;
  [[nodiscard]] uint32_t network_order() const;  // for sockaddr_in and netlink
  static Ipv4 from_network_order(uint32_t be);
  auto operator<=>(const Ipv4&) const = default;
};

// A block of addresses: "10.89.0.0/24". As an interface address ("10.89.0.1/24") the host bits
// are kept; network() clears them.
struct Cidr {
  Ipv4 address;
  int prefix = 32;

  // Accepts "A.B.C.D/N" and, when BARE_IS_HOST, a bare "A.B.C.D" as /32.
  [[nodiscard]] static Result<Cidr> parse(std::string_view text, bool bare_is_host = false);
  [[nodiscard]] std::string str() const;
  [[nodiscard]] uint32_t mask() const;
  [[nodiscard]] Cidr network() const;   // host bits cleared
  [[nodiscard]] Ipv4 first() const;     // network address
  [[nodiscard]] Ipv4 last() const;      // broadcast address
  [[nodiscard]] uint64_t size() const;  // number of addresses
  [[nodiscard]] bool contains(Ipv4 ip) const;
  [[nodiscard]] bool contains(const Cidr& other) const;
  [[nodiscard]] bool overlaps(const Cidr& other) const;
  auto operator<=>(const Cidr&) const = default;
};

struct Mac {
  std::array<uint8_t, 6> bytes{};

  [[nodiscard]] static Result<Mac> parse(std::string_view text);  // "02:42:ac:11:00:02"
  [[nodiscard]] std::string str() const;
  [[nodiscard]] bool is_zero() const;
  auto operator<=>(const Mac&) const = default;
};

}  // namespace stack::net
