// Parsing and printing of IPv4, CIDR and MAC values; strict (no leading "+", no octal, no
// trailing junk) because these come from user-written stack files.
#include "net/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace stack::net {
namespace {

// Parses a decimal number in [0, max] taking the whole of TEXT.
bool parse_number(std::string_view text, uint32_t max, uint32_t& out) {
  if (text.empty() || text.size() > 10) return false;
  if (text.size() > 1 && text[0] == '0') return false;  // "010" would be octal to inet_aton
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && out <= max;
}

}  // namespace

Result<Ipv4> Ipv4::parse(std::string_view text) {
  uint32_t value = 0;
  std::string_view rest = text;
  for (int i = 0; i < 4; i++) {
    size_t dot = rest.find('.');
    if ((i < 3) != (dot != std::string_view::npos))
      return fail("invalid IPv4 address \"" + std::string(text) + "\"");
    uint32_t octet = 0;
    if (!parse_number(rest.substr(0, dot), 255, octet))
      return fail("invalid IPv4 address \"" + std::string(text) + "\"");
    value = (value << 8) | octet;
    rest = i < 3 ? rest.substr(dot + 1) : std::string_view{};
  }
  return Ipv4{value};
}

std::string Ipv4::str() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", value >> 24, (value >> 16) & 255,
                (value >> 8) & 255, value & 255);
  return buf;
}

uint32_t Ipv4::network_order() const { return htonl(value); }
Ipv4 Ipv4::from_network_order(uint32_t be) { return Ipv4{ntohl(be)}; }

Result<Cidr> Cidr::parse(std::string_view text, bool bare_is_host) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    if (!bare_is_host)
      return fail("invalid CIDR \"" + std::string(text) + "\" (expected A.B.C.D/N)");
    auto ip = STACK_TRY_CTX(Ipv4::parse(text), "invalid CIDR");
    return Cidr{ip, 32};
  }
  auto ip = STACK_TRY_CTX(Ipv4::parse(text.substr(0, slash)), "invalid CIDR");
  uint32_t prefix = 0;
  if (!parse_number(text.substr(slash + 1), 32, prefix))
    return fail("invalid CIDR \"" + std::string(text) + "\": prefix must be 0-32");
  return Cidr{ip, static_cast<int>(prefix)};
}

std::string Cidr::str() const { return address.str() + "/" + std::to_string(prefix); }

uint32_t Cidr::mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

Cidr Cidr::network() const { return Cidr{Ipv4{address.value & mask()}, prefix}; }
Ipv4 Cidr::first() const { return Ipv4{address.value & mask()}; }
Ipv4 Cidr::last() const { return Ipv4{(address.value & mask()) | ~mask()}; }
uint64_t Cidr::size() const { return uint64_t{1} << (32 - prefix); }
bool Cidr::contains(Ipv4 ip) const { return (ip.value & mask()) == first().value; }
bool Cidr::contains(const Cidr& other) const {
  return other.prefix >= prefix && contains(other.address);
}
bool Cidr::overlaps(const Cidr& other) const { return contains(other) || other.contains(*this); }

Result<Mac> Mac::parse(std::string_view text) {
  Mac mac;
  if (text.size() != 17) return fail("invalid MAC address \"" + std::string(text) + "\"");
  for (int i = 0; i < 6; i++) {
    if (i < 5 && text[i * 3 + 2] != ':')
      return fail("invalid MAC address \"" + std::string(text) + "\"");
    unsigned v = 0;
    auto part = text.substr(i * 3, 2);
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + 2, v, 16);
    if (ec != std::errc() || ptr != part.data() + 2)
      return fail("invalid MAC address \"" + std::string(text) + "\"");
    mac.bytes[i] = static_cast<uint8_t>(v);
  }
  return mac;
}

std::string Mac::str() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

bool Mac::is_zero() const {
  for (auto b : bytes)
    if (b) return false;
  return true;
}

Result<Ipv6> Ipv6::parse(std::string_view text) {
  // inet_pton takes exactly the textual forms of RFC 4291 2.2; no zone ("%eth0"), no brackets.
  std::string s(text);
  Ipv6 ip;
  if (s.empty() || s.size() > 45 || inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) != 1)
    return fail("invalid IPv6 address \"" + s + "\"");
  return ip;
}

std::string Ipv6::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

Result<Cidr6> Cidr6::parse(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos)
    return fail("invalid IPv6 CIDR \"" + std::string(text) + "\" (expected ADDRESS/N)");
  auto ip = STACK_TRY_CTX(Ipv6::parse(text.substr(0, slash)), "invalid IPv6 CIDR");
  uint32_t prefix = 0;
  if (!parse_number(text.substr(slash + 1), 128, prefix))
    return fail("invalid IPv6 CIDR \"" + std::string(text) + "\": prefix must be 0-128");
  return Cidr6{ip, static_cast<int>(prefix)};
}

std::string Cidr6::str() const { return address.str() + "/" + std::to_string(prefix); }

Cidr6 Cidr6::network() const {
  Cidr6 out = *this;
  for (int i = 0; i < 16; i++) {
    int keep = std::clamp(prefix - i * 8, 0, 8);
    out.address.bytes[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  return out;
}

bool Cidr6::contains(const Ipv6& ip) const {
  return Cidr6{ip, prefix}.network().address == network().address;
}

bool Cidr6::overlaps(const Cidr6& other) const {
  int p = std::min(prefix, other.prefix);
  return Cidr6{address, p}.network().address == Cidr6{other.address, p}.network().address;
}

Ipv6 Cidr6::at(uint64_t offset) const {
  Ipv6 out = network().address;
  unsigned carry = 0;
  for (int i = 15; i >= 0; i--) {
    unsigned sum = out.bytes[i] + static_cast<unsigned>(offset & 0xff) + carry;
    out.bytes[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
    offset >>= 8;
  }
  return out;
}

std::optional<uint64_t> Cidr6::offset_of(const Ipv6& ip) const {
  if (!contains(ip)) return std::nullopt;
  const Ipv6 base = network().address;
  for (int i = 0; i < 8; i++)
    if (ip.bytes[i] != base.bytes[i]) return std::nullopt;  // past 2^64
  uint64_t offset = 0;
  for (int i = 8; i < 16; i++) offset = (offset << 8) | (ip.bytes[i] - base.bytes[i]);
  return offset;
}

}  // namespace stack::net
