// The ldns adapter: every ldns call of the DNS server lives here, each result checked, each
// allocation owned by a unique_ptr. Hostile input is expected: failures become FORMERR or a drop.

#include "net/dns/dns_message.h"

#include <ldns/ldns.h>

#include <algorithm>
#include <cstdlib>

namespace stack::net::dns {

namespace {

struct WireFree {
  void operator()(std::uint8_t* p) const { std::free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, decltype(&ldns_pkt_free)>;

PktPtr make_pkt(ldns_pkt* p) { return PktPtr(p, &ldns_pkt_free); }

Wire to_wire(const ldns_pkt* pkt) {
  std::uint8_t* raw = nullptr;
  std::size_t size = 0;
  if (ldns_pkt2wire(&raw, pkt, &size) != LDNS_STATUS_OK || raw == nullptr) return {};
  std::unique_ptr<std::uint8_t, WireFree> owned(raw);
  return Wire(raw, raw + size);
}

// A dname in wire form (uncompressed labels) as text: lower case, no trailing dot, and any byte
// that could be mistaken for structure ('.', '\\', space, controls, non-ASCII) as \DDD, so that a
// label containing a dot never matches a registered two-label name.
std::string dname_text(const ldns_rdf* rdf) {
  std::string out;
  const std::uint8_t* d = ldns_rdf_data(rdf);
  std::size_t size = ldns_rdf_size(rdf);
  std::size_t i = 0;
  while (i < size) {
    std::size_t len = d[i++];
    if (len == 0 || i + len > size) break;
    if (!out.empty()) out.push_back('.');
    for (std::size_t j = 0; j < len; ++j) {
      unsigned char c = d[i + j];
      if (c >= 'A' && c <= 'Z') {
        out.push_back(static_cast<char>(c - 'A' + 'a'));
      } else if (c <= ' ' || c >= 0x7f || c == '.' || c == '\\') {
        char esc[5] = {'\\', static_cast<char>('0' + c / 100),
                       static_cast<char>('0' + (c / 10) % 10), static_cast<char>('0' + c % 10), 0};
        out.append(esc);
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    i += len;
  }
  return out;
}

ldns_rr* address_record(const ldns_rdf* owner, ldns_rr_type type, ldns_rdf_type rdf_type,
                        const std::uint8_t* bytes, std::size_t size, std::uint32_t ttl) {
  ldns_rr* rr = ldns_rr_new();
  if (rr == nullptr) return nullptr;
  ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
  ldns_rr_set_type(rr, type);
  ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr, ttl);
  ldns_rdf* rdf = ldns_rdf_new_frm_data(rdf_type, size, bytes);
  if (rdf == nullptr || !ldns_rr_push_rdf(rr, rdf)) {
    if (rdf != nullptr) ldns_rdf_deep_free(rdf);
    ldns_rr_free(rr);
    return nullptr;
  }
  return rr;
}

ldns_rr* aaaa_record(const ldns_rdf* owner, const Ipv6& address, std::uint32_t ttl) {
  return address_record(owner, LDNS_RR_TYPE_AAAA, LDNS_RDF_TYPE_AAAA, address.bytes.data(),
                        address.bytes.size(), ttl);
}

ldns_rr* a_record(const ldns_rdf* owner, Ipv4 address, std::uint32_t ttl) {
  std::uint8_t bytes[4] = {static_cast<std::uint8_t>(address.value >> 24),
                           static_cast<std::uint8_t>(address.value >> 16),
                           static_cast<std::uint8_t>(address.value >> 8),
                           static_cast<std::uint8_t>(address.value)};
  return address_record(owner, LDNS_RR_TYPE_A, LDNS_RDF_TYPE_A, bytes, sizeof bytes, ttl);
}

}  // namespace

std::string_view rcode_name(Rcode r) {
  switch (r) {
    case Rcode::kNoError:
      return "NOERROR";
    case Rcode::kFormErr:
      return "FORMERR";
    case Rcode::kServFail:
      return "SERVFAIL";
    case Rcode::kNxDomain:
      return "NXDOMAIN";
    case Rcode::kNotImp:
      return "NOTIMP";
    case Rcode::kRefused:
      return "REFUSED";
  }
  return "RCODE?";
}

void Query::PktDeleter::operator()(ldns_struct_pkt* p) const { ldns_pkt_free(p); }
Query::Query(Query&&) noexcept = default;
Query& Query::operator=(Query&&) noexcept = default;
Query::~Query() = default;

template <class Record>
Wire Query::build_reply(Rcode rcode, std::size_t count, std::size_t max_size, bool force_tc,
                        const Record& record) const {
  const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(pkt_.get()), 0);
  bool tc = force_tc;

  auto build = [&](std::size_t answers, bool truncated) -> Wire {
    PktPtr r = make_pkt(ldns_pkt_new());
    if (!r) return {};
    ldns_pkt_set_id(r.get(), id_);
    ldns_pkt_set_qr(r.get(), true);
    ldns_pkt_set_opcode(r.get(), LDNS_PACKET_QUERY);
    ldns_pkt_set_rd(r.get(), ldns_pkt_rd(pkt_.get()));
    ldns_pkt_set_cd(r.get(), ldns_pkt_cd(pkt_.get()));
    ldns_pkt_set_ra(r.get(), true);
    ldns_pkt_set_aa(r.get(), rcode == Rcode::kNoError || rcode == Rcode::kNxDomain);
    ldns_pkt_set_tc(r.get(), truncated);
    ldns_pkt_set_rcode(r.get(), static_cast<std::uint8_t>(rcode));
    if (ldns_pkt_edns(pkt_.get())) ldns_pkt_set_edns_udp_size(r.get(), 1232);
    ldns_rr* q = ldns_rr_clone(question);
    if (q == nullptr) return {};
    ldns_rr_set_question(q, true);
    ldns_pkt_push_rr(r.get(), LDNS_SECTION_QUESTION, q);
    for (std::size_t i = 0; i < answers; ++i) {
      ldns_rr* a = record(ldns_rr_owner(question), i);
      if (a == nullptr) return {};
      ldns_pkt_push_rr(r.get(), LDNS_SECTION_ANSWER, a);
    }
    return to_wire(r.get());
  };

  Wire wire = build(count, tc);
  if (wire.size() > max_size && count > 0) {
    // Every A record costs the same (a compressed owner): keep as many as fit, and say so.
    Wire base = build(0, true);
    std::size_t per = (wire.size() - base.size()) / count;
    std::size_t fit = base.size() < max_size && per > 0 ? (max_size - base.size()) / per : 0;
    wire = build(std::min(fit, count), true);
  }
  return wire;
}

Wire Query::reply(Rcode rcode, std::span<const Ipv4> addresses, std::size_t max_size,
                  std::uint32_t ttl, bool force_tc) const {
  bool wants_a =
      (qtype_ == kTypeA || qtype_ == kTypeAny) && (qclass_ == kClassIn || qclass_ == kClassAny);
  return build_reply(rcode, wants_a ? addresses.size() : 0, max_size, force_tc,
                     [&](const ldns_rdf* owner, std::size_t i) {
                       return a_record(owner, addresses[i], ttl);
                     });
}

Wire Query::reply_aaaa(Rcode rcode, std::span<const Ipv6> addresses, std::size_t max_size,
                       std::uint32_t ttl) const {
  bool wants = qtype_ == kTypeAaaa && (qclass_ == kClassIn || qclass_ == kClassAny);
  return build_reply(rcode, wants ? addresses.size() : 0, max_size, false,
                     [&](const ldns_rdf* owner, std::size_t i) {
                       return aaaa_record(owner, addresses[i], ttl);
                     });
}

struct QueryParser {
  static Classified parse(std::span<const std::uint8_t> wire) {
    Classified out;
    if (wire.size() < kHeaderSize || (wire[2] & 0x80) != 0) return out;  // short or a response
    out.kind = Classified::Kind::kError;
    if (((wire[2] >> 3) & 0x0f) != 0) {  // only standard queries
      out.reply = header_reply(wire, Rcode::kNotImp);
      return out;
    }
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, wire.data(), wire.size()) != LDNS_STATUS_OK || raw == nullptr) {
      if (raw != nullptr) ldns_pkt_free(raw);
      out.reply = header_reply(wire, Rcode::kFormErr);
      return out;
    }
    Query q;
    q.pkt_.reset(raw);
    const ldns_rr_list* questions = ldns_pkt_question(raw);
    if (ldns_pkt_qdcount(raw) != 1 || questions == nullptr ||
        ldns_rr_list_rr_count(questions) != 1) {
      out.reply = header_reply(wire, Rcode::kFormErr);
      return out;
    }
    const ldns_rr* question = ldns_rr_list_rr(questions, 0);
    const ldns_rdf* owner = ldns_rr_owner(question);
    if (owner == nullptr || ldns_rdf_get_type(owner) != LDNS_RDF_TYPE_DNAME) {
      out.reply = header_reply(wire, Rcode::kFormErr);
      return out;
    }
    q.id_ = ldns_pkt_id(raw);
    q.name_ = dname_text(owner);
    q.qtype_ = static_cast<std::uint16_t>(ldns_rr_get_type(question));
    q.qclass_ = static_cast<std::uint16_t>(ldns_rr_get_class(question));
    if (ldns_pkt_edns(raw))
      q.max_udp_size_ = std::clamp<std::size_t>(ldns_pkt_edns_udp_size(raw), kClassicUdpSize, 4096);
    out.kind = Classified::Kind::kQuery;
    out.query.emplace(std::move(q));
    return out;
  }
};

Classified classify_message(std::span<const std::uint8_t> wire) { return QueryParser::parse(wire); }

Wire header_reply(std::span<const std::uint8_t> wire, Rcode rcode) {
  Wire out(kHeaderSize, 0);
  if (wire.size() < 4) return out;
  out[0] = wire[0];
  out[1] = wire[1];
  out[2] = static_cast<std::uint8_t>(0x80 | (wire[2] & 0x79));                  // QR, opcode, RD
  out[3] = static_cast<std::uint8_t>(0x80 | static_cast<std::uint8_t>(rcode));  // RA, rcode
  return out;
}

std::uint16_t wire_id(std::span<const std::uint8_t> wire) {
  if (wire.size() < 2) return 0;
  return static_cast<std::uint16_t>(wire[0] << 8 | wire[1]);
}

void set_wire_id(Wire& wire, std::uint16_t id) {
  if (wire.size() < 2) return;
  wire[0] = static_cast<std::uint8_t>(id >> 8);
  wire[1] = static_cast<std::uint8_t>(id);
}

bool is_response_to(std::span<const std::uint8_t> wire, std::uint16_t id) {
  return wire.size() >= kHeaderSize && wire_id(wire) == id && (wire[2] & 0x80) != 0;
}

bool is_truncated(std::span<const std::uint8_t> wire) {
  return wire.size() >= kHeaderSize && (wire[2] & 0x02) != 0;
}

Rcode wire_rcode(std::span<const std::uint8_t> wire) {
  return wire.size() >= kHeaderSize ? static_cast<Rcode>(wire[3] & 0x0f) : Rcode::kFormErr;
}

Wire build_query(std::string_view name, std::uint16_t qtype, std::uint16_t id,
                 std::uint16_t edns_udp_size) {
  std::string text(name);
  if (text.empty() || text.back() != '.') text.push_back('.');
  ldns_rdf* dname = ldns_dname_new_frm_str(text.c_str());
  if (dname == nullptr) return {};
  PktPtr q = make_pkt(
      ldns_pkt_query_new(dname, static_cast<ldns_rr_type>(qtype), LDNS_RR_CLASS_IN, LDNS_RD));
  if (!q) return {};
  ldns_pkt_set_id(q.get(), id);
  if (edns_udp_size != 0) ldns_pkt_set_edns_udp_size(q.get(), edns_udp_size);
  return to_wire(q.get());
}

Result<Response> parse_response(std::span<const std::uint8_t> wire) {
  ldns_pkt* raw = nullptr;
  ldns_status st = ldns_wire2pkt(&raw, wire.data(), wire.size());
  if (st != LDNS_STATUS_OK || raw == nullptr) {
    if (raw != nullptr) ldns_pkt_free(raw);
    return fail(std::string("parse DNS response: ") + ldns_get_errorstr_by_id(st));
  }
  PktPtr p = make_pkt(raw);
  Response r;
  r.id = ldns_pkt_id(raw);
  r.rcode = static_cast<Rcode>(ldns_pkt_get_rcode(raw));
  r.truncated = ldns_pkt_tc(raw);
  r.authoritative = ldns_pkt_aa(raw);
  const ldns_rr_list* answers = ldns_pkt_answer(raw);
  r.answer_count = answers != nullptr ? ldns_rr_list_rr_count(answers) : 0;
  for (std::size_t i = 0; i < r.answer_count; ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answers, i);
    if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_A) continue;
    const ldns_rdf* rdf = ldns_rr_rdf(rr, 0);
    if (rdf == nullptr || ldns_rdf_size(rdf) != 4) continue;
    const std::uint8_t* d = ldns_rdf_data(rdf);
    r.addresses.push_back(Ipv4{static_cast<std::uint32_t>(d[0]) << 24 |
                               static_cast<std::uint32_t>(d[1]) << 16 |
                               static_cast<std::uint32_t>(d[2]) << 8 | d[3]});
  }
  return r;
}

}  // namespace stack::net::dns
