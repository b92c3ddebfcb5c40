// IPv4 addresses, CIDR blocks and MAC addresses as values: parsing, printing, arithmetic.
// Pure: no syscalls. Shared by IPAM, netlink and the firewall renderer.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
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

// An IPv6 address, 16 bytes in network order.
struct Ipv6 {
  std::array<uint8_t, 16> bytes{};

  [[nodiscard]] static Result<Ipv6> parse(std::string_view text);  // "fd00::1" (no brackets)
  [[nodiscard]] std::string str() const;                           // RFC 5952 form
  auto operator<=>(const Ipv6&) const = default;
};

// An IPv6 block, "fd12:3456:789a:1::/64"; as an interface address the host bits are kept.
struct Cidr6 {
  Ipv6 address;
  int prefix = 128;

  [[nodiscard]] static Result<Cidr6> parse(std::string_view text);  // "ADDR/N"
  [[nodiscard]] std::string str() const;
  [[nodiscard]] Cidr6 network() const;  // host bits cleared
  [[nodiscard]] bool contains(const Ipv6& ip) const;
  [[nodiscard]] bool overlaps(const Cidr6& other) const;
  // The address OFFSET past the network address (OFFSET fits the host bits, checked by caller).
  [[nodiscard]] Ipv6 at(uint64_t offset) const;
  // at()'s inverse: how far IP lies past the network address, when it is inside and that
  // fits 64 bits.
  [[nodiscard]] std::optional<uint64_t> offset_of(const Ipv6& ip) const;
  auto operator<=>(const Cidr6&) const = default;
};

struct Mac {
  std::array<uint8_t, 6> bytes{};

  [[nodiscard]] static Result<Mac> parse(std::string_view text);  // "02:42:ac:11:00:02"
  [[nodiscard]] std::string str() const;
  [[nodiscard]] bool is_zero() const;
  auto operator<=>(const Mac&) const = default;
};

}  // namespace stack::net
