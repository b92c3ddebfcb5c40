// Unit tests of the DNS pieces that need no socket: the registry (scoping, round robin, names),
// resolv.conf parsing and rendering, upstream parsing, and the ldns wire-format adapter.

#include "net/dns/dns_registry.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>

#include "net/dns/dns_message.h"
#include "net/dns/resolv_conf.h"

using namespace stack::net::dns;

namespace {

Ipv4 ip(const char* text) {
  auto a = Ipv4::parse(text);
  REQUIRE(a.has_value());
  return *a;
}

// Fixture builder: an_endpoint("n1", "demo-web-1", "10.0.0.2").service("web").alias("www")
struct EndpointBuilder {
  Endpoint e;
  EndpointBuilder& service(std::string s) {
    e.service = std::move(s);
    return *this;
  }
  EndpointBuilder& hostname(std::string h) {
    e.hostname = std::move(h);
    return *this;
  }
  EndpointBuilder& alias(std::string a) {
    e.aliases.push_back(std::move(a));
    return *this;
  }
  operator Endpoint() const { return e; }  // NOLINT: builder
};
EndpointBuilder an_endpoint(std::string network, std::string container, const char* address) {
  EndpointBuilder b;
  b.e.network = std::move(network);
  b.e.container = std::move(container);
  b.e.address = ip(address);
  return b;
}

std::set<std::uint32_t> as_set(const std::vector<Ipv4>& v) {
  std::set<std::uint32_t> s;
  for (auto a : v) s.insert(a.value);
  return s;
}

}  // namespace

TEST_CASE("ipv4 parses dotted quads only") {
  CHECK(ip("10.1.2.3").value == 0x0a010203);
  CHECK(ip("10.1.2.3").to_string() == "10.1.2.3");
  for (const char* bad : {"", "10.1.2", "10.1.2.3.4", "256.1.1.1", "1..2.3", "a.b.c.d", "1.2.3.4 ",
                          "1.2.3.0004", "-1.2.3.4"})
    CHECK_MESSAGE(!Ipv4::parse(bad), bad);
}

TEST_CASE("registry answers every replica of a service, rotating per query") {
  DnsRegistry r;
  REQUIRE(r.add(an_endpoint("n1", "demo-client-1", "10.0.0.9").service("client")));
  REQUIRE(r.add(an_endpoint("n1", "demo-web-1", "10.0.0.2").service("web")));
  REQUIRE(r.add(an_endpoint("n1", "demo-web-2", "10.0.0.3").service("web")));
  REQUIRE(r.add(an_endpoint("n1", "demo-web-3", "10.0.0.4").service("web")));
  Ipv4 client = ip("10.0.0.9");

  std::vector<std::uint32_t> firsts;
  for (int i = 0; i < 3; ++i) {
    auto a = r.lookup_a(client, "web");
    REQUIRE(a);
    CHECK(a->size() == 3);
    CHECK(as_set(*a) == std::set<std::uint32_t>{0x0a000002, 0x0a000003, 0x0a000004});
    firsts.push_back(a->front().value);
  }
  CHECK(std::set<std::uint32_t>(firsts.begin(), firsts.end()).size() == 3);
  // contains() answers without moving the rotation.
  auto before = r.lookup_a(client, "web")->front();
  CHECK(r.contains(client, "web"));
  CHECK(r.contains(client, "web"));
  auto after = r.lookup_a(client, "web")->front();
  CHECK(after != before);
  // A single replica's container name answers only its address.
  CHECK(*r.lookup_a(client, "demo-web-2") == std::vector<Ipv4>{ip("10.0.0.3")});
}

TEST_CASE("registry names are case-insensitive and take an optional trailing dot") {
  DnsRegistry r;
  REQUIRE(r.add(an_endpoint("n1", "Demo-Web-1", "10.0.0.2")
                    .service("Web")
                    .hostname("web.local")
                    .alias("WWW.")));
  Ipv4 client = ip("10.0.0.2");  // a container can resolve its own names
  for (const char* name : {"web", "WEB", "web.", "Web.", "demo-web-1", "DEMO-WEB-1.", "www", "www.",
                           "WEB.LOCAL.", "web.local"})
    CHECK_MESSAGE(r.lookup_a(client, name), name);
  CHECK_FALSE(r.lookup_a(client, "web.."));
  CHECK_FALSE(r.lookup_a(client, "we"));
}

TEST_CASE("registry scopes names to the networks of the asking container") {
  DnsRegistry r;
  REQUIRE(r.add(an_endpoint("front", "demo-web-1", "10.1.0.2").service("web")));
  REQUIRE(r.add(an_endpoint("back", "demo-db-1", "10.2.0.2").service("db")));
  // The api container is on both networks, with one address on each.
  REQUIRE(r.add(an_endpoint("front", "demo-api-1", "10.1.0.3").service("api")));
  REQUIRE(r.add(an_endpoint("back", "demo-api-1", "10.2.0.3").service("api")));

  CHECK(r.lookup_a(ip("10.1.0.2"), "web"));
  CHECK_FALSE(r.lookup_a(ip("10.1.0.2"), "db"));   // web is not on back
  CHECK_FALSE(r.lookup_a(ip("10.2.0.2"), "web"));  // db is not on front
  // api asks from either of its addresses and sees both networks.
  for (const char* api : {"10.1.0.3", "10.2.0.3"}) {
    CHECK(r.lookup_a(ip(api), "web"));
    CHECK(r.lookup_a(ip(api), "db"));
  }
  // From front, api answers its front address only; from back, its back address.
  CHECK(*r.lookup_a(ip("10.1.0.2"), "api") == std::vector<Ipv4>{ip("10.1.0.3")});
  CHECK(*r.lookup_a(ip("10.2.0.2"), "api") == std::vector<Ipv4>{ip("10.2.0.3")});
  // A client the registry does not know sees nothing.
  CHECK_FALSE(r.lookup_a(ip("10.9.9.9"), "web"));
  CHECK(r.networks_of(ip("10.2.0.3")) == std::vector<std::string>{"back", "front"});
}

TEST_CASE("registry changes are visible at once: remove, restart with a new address") {
  DnsRegistry r;
  REQUIRE(r.add(an_endpoint("n1", "demo-client-1", "10.0.0.9")));
  REQUIRE(r.add(an_endpoint("n1", "demo-web-1", "10.0.0.2").service("web")));
  Ipv4 client = ip("10.0.0.9");
  CHECK(*r.lookup_a(client, "web") == std::vector<Ipv4>{ip("10.0.0.2")});

  // Restart: same container, new address; the old one must never be answered again.
  REQUIRE(r.add(an_endpoint("n1", "demo-web-1", "10.0.0.7").service("web")));
  CHECK(*r.lookup_a(client, "web") == std::vector<Ipv4>{ip("10.0.0.7")});
  CHECK(r.size() == 2);
  CHECK(r.networks_of(ip("10.0.0.2")).empty());

  CHECK(r.remove("n1", "demo-web-1"));
  CHECK_FALSE(r.remove("n1", "demo-web-1"));
  CHECK_FALSE(r.lookup_a(client, "web"));
  CHECK_FALSE(r.lookup_a(client, "demo-web-1"));

  REQUIRE(r.add(an_endpoint("n1", "demo-web-1", "10.0.0.8").service("web")));
  REQUIRE(r.add(an_endpoint("n2", "demo-web-1", "10.3.0.8").service("web")));
  CHECK(r.remove_container("demo-web-1") == 2);
  CHECK(r.size() == 1);
}

TEST_CASE("registry rejects invalid names and keys without changing anything") {
  DnsRegistry r;
  CHECK_FALSE(r.add(an_endpoint("", "c", "10.0.0.1")));
  CHECK_FALSE(r.add(an_endpoint("n", "", "10.0.0.1")));
  auto too_long = r.add(an_endpoint("n", "c", "10.0.0.1").alias(std::string(64, 'a')));
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().message.find("register c on n: name") == 0);
  CHECK_FALSE(r.add(an_endpoint("n", "c", "10.0.0.1").alias("a..b")));
  CHECK_FALSE(r.add(an_endpoint("n", "c", "10.0.0.1").alias("has space")));
  CHECK_FALSE(r.add(an_endpoint("n", "c", "10.0.0.1").alias("back\\slash")));
  CHECK(r.size() == 0);
  CHECK(validate_name(std::string(63, 'a') + "." + std::string(63, 'b')));
}

TEST_CASE("resolv.conf parsing takes nameservers, the last search line, and options") {
  auto conf = parse_resolv_conf(
      "# generated\n"
      "domain corp.example\n"
      "nameserver 192.0.2.1\n"
      "nameserver\t2001:db8::1   # v6\n"
      "nameserver resolver.example\n"
      "; comment\n"
      "search a.example b.example\r\n"
      "options ndots:2 edns0\n"
      "options timeout:1\n"
      "bogus line\n"
      "nameserver\n");
  CHECK(conf.nameservers ==
        std::vector<std::string>{"192.0.2.1", "2001:db8::1", "resolver.example"});
  CHECK(conf.search == std::vector<std::string>{"a.example", "b.example"});
  CHECK(conf.options == std::vector<std::string>{"ndots:2", "edns0", "timeout:1"});

  auto ups = upstreams_from(conf);
  REQUIRE(ups.size() == 2);
  CHECK(ups[0].to_string() == "192.0.2.1:53");
  CHECK(ups[1].to_string() == "[2001:db8::1]:53");
  CHECK(upstreams_from(parse_resolv_conf("nameserver 127.0.0.53\nnameserver fe80::1%eth0\n"))
            .size() == 1);
  CHECK(parse_resolv_conf("").nameservers.empty());
  CHECK_FALSE(read_resolv_conf("/nonexistent/resolv.conf"));
}

TEST_CASE("upstreams parse with and without ports") {
  CHECK(parse_upstream("192.0.2.1")->to_string() == "192.0.2.1:53");
  CHECK(parse_upstream("192.0.2.1:5353")->port == 5353);
  CHECK(parse_upstream("2001:db8::1")->to_string() == "[2001:db8::1]:53");
  CHECK(parse_upstream("[2001:db8::1]:5353")->to_string() == "[2001:db8::1]:5353");
  for (const char* bad : {"", "host.example", "192.0.2.1:", "192.0.2.1:0", "192.0.2.1:70000",
                          "[2001:db8::1", "[2001:db8::1]x", "1.2.3.4:53x"})
    CHECK_MESSAGE(!parse_upstream(bad), bad);
}

TEST_CASE("a container's resolv.conf points at the network's server with ndots:0") {
  CHECK(render_container_resolv_conf("10.89.0.1", {}, {}) ==
        "# Written by stack: the embedded DNS server of this container's network.\n"
        "nameserver 10.89.0.1\n"
        "options ndots:0\n");
  CHECK(render_container_resolv_conf("10.89.0.1", {"a.example", "b.example", "a.example"},
                                     {"timeout:2", "attempts:3"}) ==
        "# Written by stack: the embedded DNS server of this container's network.\n"
        "nameserver 10.89.0.1\n"
        "search a.example b.example\n"
        "options ndots:0 timeout:2 attempts:3\n");
  // The service's own ndots wins.
  auto text = render_container_resolv_conf("10.89.0.1", {}, {"ndots:3"});
  CHECK(text.find("options ndots:3\n") != std::string::npos);
  CHECK(text.find("ndots:0") == std::string::npos);
}

TEST_CASE("wire format: a query round-trips through classify and reply") {
  Wire q = build_query("Web.Example.", kTypeA, 0x1234, 1232);
  REQUIRE_FALSE(q.empty());
  Classified c = classify_message(q);
  REQUIRE(c.kind == Classified::Kind::kQuery);
  CHECK(c.query->id() == 0x1234);
  CHECK(c.query->name() == "web.example");
  CHECK(c.query->qtype() == kTypeA);
  CHECK(c.query->max_udp_size() == 1232);

  std::vector<Ipv4> addrs{ip("10.0.0.2"), ip("10.0.0.3")};
  auto r = parse_response(c.query->reply(Rcode::kNoError, addrs, 512));
  REQUIRE(r);
  CHECK(r->id == 0x1234);
  CHECK(r->rcode == Rcode::kNoError);
  CHECK(r->authoritative);
  CHECK_FALSE(r->truncated);
  CHECK(r->addresses == addrs);

  // AAAA for the same name: NOERROR without records.
  Classified aaaa = classify_message(build_query("web.example", kTypeAaaa, 7));
  REQUIRE(aaaa.kind == Classified::Kind::kQuery);
  auto empty = parse_response(aaaa.query->reply(Rcode::kNoError, addrs, 512));
  REQUIRE(empty);
  CHECK(empty->answer_count == 0);
  CHECK(empty->rcode == Rcode::kNoError);
}

TEST_CASE("wire format: answers that do not fit are cut and flagged truncated") {
  Classified c = classify_message(build_query("many", kTypeA, 1));
  REQUIRE(c.query);
  std::vector<Ipv4> addrs;
  for (std::uint32_t i = 0; i < 100; ++i) addrs.push_back(Ipv4{0x0a000000 + i});
  Wire small = c.query->reply(Rcode::kNoError, addrs, 512);
  CHECK(small.size() <= 512);
  auto r = parse_response(small);
  REQUIRE(r);
  CHECK(r->truncated);
  CHECK(r->addresses.size() > 20);
  CHECK(r->addresses.size() < 100);
  auto full = parse_response(c.query->reply(Rcode::kNoError, addrs, 65535));
  REQUIRE(full);
  CHECK_FALSE(full->truncated);
  CHECK(full->addresses.size() == 100);
}

TEST_CASE("wire format: malformed messages are dropped or get a header-only error") {
  CHECK(classify_message({}).kind == Classified::Kind::kDrop);
  Wire q = build_query("web", kTypeA, 0xbeef);
  // Every truncation shorter than a header is dropped; longer ones get FORMERR.
  for (std::size_t n = 0; n < q.size(); ++n) {
    Classified c = classify_message(std::span(q.data(), n));
    if (n < kHeaderSize) {
      CHECK(c.kind == Classified::Kind::kDrop);
    } else {
      REQUIRE(c.kind == Classified::Kind::kError);
      CHECK(wire_rcode(c.reply) == Rcode::kFormErr);
      CHECK(wire_id(c.reply) == 0xbeef);
    }
  }
  Wire response = q;
  response[2] |= 0x80;
  CHECK(classify_message(response).kind == Classified::Kind::kDrop);
  Wire update = q;
  update[2] = static_cast<std::uint8_t>((update[2] & 0x87) | (5 << 3));  // opcode UPDATE
  CHECK(wire_rcode(classify_message(update).reply) == Rcode::kNotImp);
  Wire two = q;
  two[5] = 2;  // qdcount 2 with one question
  CHECK(wire_rcode(classify_message(two).reply) == Rcode::kFormErr);

  // A compression pointer to itself, and a label length past the end.
  Wire loop{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
  CHECK(wire_rcode(classify_message(loop).reply) == Rcode::kFormErr);
  Wire huge{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f, 'a', 'b', 0, 0, 1, 0, 1};
  CHECK(wire_rcode(classify_message(huge).reply) == Rcode::kFormErr);
}

TEST_CASE("wire format: 100000 random messages never crash the parser") {
  std::mt19937 rng(4242);
  Wire base = build_query("fuzz.example", kTypeA, 1, 1232);
  std::size_t queries = 0;
  for (int i = 0; i < 100000; ++i) {
    Wire m;
    if (i % 2 == 0) {
      m.resize(rng() % 300);
      for (auto& b : m) b = static_cast<std::uint8_t>(rng());
    } else {
      m = base;
      for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips)
        m[rng() % m.size()] = static_cast<std::uint8_t>(rng());
      m.resize(rng() % (m.size() + 1));
    }
    Classified c = classify_message(m);
    if (c.kind == Classified::Kind::kQuery) {
      ++queries;
      // Whatever parsed must also be answerable.
      CHECK_FALSE(c.query->reply(Rcode::kServFail, {}, 512).empty());
    } else if (c.kind == Classified::Kind::kError) {
      CHECK(c.reply.size() == kHeaderSize);
    }
  }
  CHECK(queries > 0);
}
