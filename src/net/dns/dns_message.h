// DNS wire format for the embedded server, through ldns: parsing queries, building answers and
// error replies, and the few header peeks the forwarder needs. Never throws, never aborts on
// hostile input; ldns types stay in the .cpp (the packet is held behind an opaque pointer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/dns/dns_registry.h"

struct ldns_struct_pkt;

namespace stack::net::dns {

enum class Rcode : std::uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};
std::string_view rcode_name(Rcode r);

inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeAaaa = 28;
inline constexpr std::uint16_t kTypeAny = 255;
inline constexpr std::uint16_t kClassIn = 1;
inline constexpr std::uint16_t kClassAny = 255;
inline constexpr std::size_t kHeaderSize = 12;
inline constexpr std::size_t kClassicUdpSize = 512;

using Wire = std::vector<std::uint8_t>;

// A parsed, well-formed standard query with exactly one question.
class Query {
 public:
  Query(Query&&) noexcept;
  Query& operator=(Query&&) noexcept;
  ~Query();

  std::uint16_t id() const { return id_; }
  // Lower case, without the trailing dot ("web", "example.com"); "" for the root.
  const std::string& name() const { return name_; }
  std::uint16_t qtype() const { return qtype_; }
  std::uint16_t qclass() const { return qclass_; }
  // Largest reply the client accepts over UDP: 512, or its EDNS size (capped at 4096).
  std::size_t max_udp_size() const { return max_udp_size_; }

  // A reply echoing the question. ADDRESSES become A records (TTL TTL) when the query asks for A
  // or ANY; answers that do not fit MAX_SIZE are dropped and TC is set, as is FORCE_TC.
  Wire reply(Rcode rcode, std::span<const Ipv4> addresses, std::size_t max_size,
             std::uint32_t ttl = 0, bool force_tc = false) const;
  // The same with AAAA records, when the query asks for AAAA.
  Wire reply_aaaa(Rcode rcode, std::span<const Ipv6> addresses, std::size_t max_size,
                  std::uint32_t ttl = 0) const;

 private:
  friend struct QueryParser;
  Query() = default;
  struct PktDeleter {
    void operator()(ldns_struct_pkt* p) const;
  };
  // A reply with COUNT answers, each made by RECORD(owner, i); trimmed to MAX_SIZE with TC.
  template <class Record>
  Wire build_reply(Rcode rcode, std::size_t count, std::size_t max_size, bool force_tc,
                   const Record& record) const;
  std::unique_ptr<ldns_struct_pkt, PktDeleter> pkt_;
  std::uint16_t id_ = 0;
  std::string name_;
  std::uint16_t qtype_ = 0;
  std::uint16_t qclass_ = 0;
  std::size_t max_udp_size_ = kClassicUdpSize;
};

// What to do with an incoming datagram or TCP message.
struct Classified {
  enum class Kind {
    kDrop,   // shorter than a header, or a response: never answered (no reflection loops)
    kError,  // header readable but the rest is not a query we serve: reply holds the error
    kQuery,  // query holds a well-formed query
  };
  Kind kind = Kind::kDrop;
  Wire reply;                  // kError: FORMERR or NOTIMP, header only
  std::optional<Query> query;  // kQuery
};
Classified classify_message(std::span<const std::uint8_t> wire);

// A header-only reply (no question) to WIRE's header: used when the rest is unreadable.
Wire header_reply(std::span<const std::uint8_t> wire, Rcode rcode);

// Header peeks and edits for forwarding (the payload is passed through untouched).
std::uint16_t wire_id(std::span<const std::uint8_t> wire);
void set_wire_id(Wire& wire, std::uint16_t id);
bool is_response_to(std::span<const std::uint8_t> wire, std::uint16_t id);
bool is_truncated(std::span<const std::uint8_t> wire);
Rcode wire_rcode(std::span<const std::uint8_t> wire);

// For tests, the bench and fake upstreams: a query for NAME, and a decoded response.
Wire build_query(std::string_view name, std::uint16_t qtype, std::uint16_t id,
                 std::uint16_t edns_udp_size = 0);
struct Response {
  std::uint16_t id = 0;
  Rcode rcode = Rcode::kNoError;
  bool truncated = false;
  bool authoritative = false;
  std::size_t answer_count = 0;
  std::vector<Ipv4> addresses;  // the A records of the answer section, in order
};
Result<Response> parse_response(std::span<const std::uint8_t> wire);

}  // namespace stack::net::dns
