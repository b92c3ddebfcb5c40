// The DNS server over real sockets on loopback, no root: a server on 127.0.0.1 and a free port,
// clients asking from 127.0.0.11 (network n1) and 127.0.0.12 (network n2), and a fake upstream
// resolver on 127.0.0.1. Registry changes are made between queries on the same loop.

#include "net/dns/dns_server.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "dns_loopback.h"

using namespace stack::test::dns;

namespace {

constexpr const char* kClient1 = "127.0.0.11";  // on n1
constexpr const char* kClient2 = "127.0.0.12";  // on n2

Ipv4 ip(const char* text) { return *Ipv4::parse(text); }

struct Fixture {
  asio::io_context io;
  DnsRegistry registry;
  FakeUpstream upstream{io};
  std::unique_ptr<DnsServer> server;

  // WITH_UPSTREAM: forward to the fake upstream; otherwise no upstream (SERVFAIL).
  explicit Fixture(bool with_upstream = false) {
    DnsServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    if (with_upstream) o.upstreams = {upstream.upstream()};
    o.upstream_timeout = 300ms;
    o.tcp_idle_timeout = 300ms;
    server = std::make_unique<DnsServer>(io, registry, o);
    REQUIRE(server->start());
    add("n1", "demo-client-1", kClient1, "client");
    add("n2", "other-client-1", kClient2, "client");
  }

  void add(const char* net, const char* container, const char* address, const char* service) {
    REQUIRE(registry.add(Endpoint{net, container, ip(address), service, "", {}}));
  }
  udp::endpoint udp_ep() const { return {asio::ip::make_address("127.0.0.1"), server->port()}; }
  tcp::endpoint tcp_ep() const { return {asio::ip::make_address("127.0.0.1"), server->port()}; }

  Response ask(const char* source, std::string_view name, std::uint16_t type = kTypeA) {
    auto wire = run(io, udp_ask(source, udp_ep(), build_query(name, type, 0x4242)));
    REQUIRE_MESSAGE(wire.has_value(), "no answer for ", name);
    auto r = parse_response(*wire);
    REQUIRE(r);
    CHECK(r->id == 0x4242);
    return *r;
  }
};

std::set<std::uint32_t> as_set(const std::vector<Ipv4>& v) {
  std::set<std::uint32_t> s;
  for (auto a : v) s.insert(a.value);
  return s;
}

}  // namespace

TEST_CASE("dns server answers every replica of a service over UDP, in rotating order") {
  Fixture f;
  f.add("n1", "demo-web-1", "10.0.0.2", "web");
  f.add("n1", "demo-web-2", "10.0.0.3", "web");
  f.add("n1", "demo-web-3", "10.0.0.4", "web");

  std::set<std::uint32_t> firsts;
  for (int i = 0; i < 3; ++i) {
    Response r = f.ask(kClient1, i == 1 ? "WEB." : "web");
    CHECK(r.rcode == Rcode::kNoError);
    CHECK(r.authoritative);
    CHECK(as_set(r.addresses) == std::set<std::uint32_t>{0x0a000002, 0x0a000003, 0x0a000004});
    firsts.insert(r.addresses.front().value);
  }
  CHECK(firsts.size() == 3);
  CHECK(f.ask(kClient1, "demo-web-2").addresses == std::vector<Ipv4>{ip("10.0.0.3")});
  CHECK(f.server->stats().local == 4);
}

TEST_CASE("dns server truncates a large UDP answer and gives all of it over TCP") {
  Fixture f;
  for (int i = 0; i < 60; ++i) {
    std::string name = "demo-web-" + std::to_string(i);
    REQUIRE(f.registry.add(
        Endpoint{"n1", name, Ipv4{0x0a000100u + static_cast<std::uint32_t>(i)}, "web", "", {}}));
  }
  Response udp = f.ask(kClient1, "web");
  CHECK(udp.truncated);
  CHECK(udp.addresses.size() < 60);
  auto edns = run(f.io, udp_ask(kClient1, f.udp_ep(), build_query("web", kTypeA, 3, 4096)));
  REQUIRE(edns);
  CHECK(parse_response(*edns)->addresses.size() == 60);  // fits the client's EDNS size
  auto tcp = run(f.io, tcp_ask(kClient1, f.tcp_ep(), {build_query("web", kTypeA, 4)}));
  REQUIRE(tcp.size() == 1);
  auto full = parse_response(tcp[0]);
  REQUIRE(full);
  CHECK_FALSE(full->truncated);
  CHECK(full->addresses.size() == 60);
}

TEST_CASE("dns server: a registered name asked for AAAA gets NOERROR with no answers") {
  Fixture f;
  f.add("n1", "demo-web-1", "10.0.0.2", "web");
  Response r = f.ask(kClient1, "web", kTypeAaaa);
  CHECK(r.rcode == Rcode::kNoError);
  CHECK(r.answer_count == 0);
  CHECK(f.ask(kClient1, "web", 16 /* TXT */).answer_count == 0);
}

TEST_CASE("dns server: names of another network are not visible") {
  Fixture f(true);
  f.add("n2", "other-db-1", "10.2.0.5", "db");
  CHECK(f.ask(kClient2, "db").addresses == std::vector<Ipv4>{ip("10.2.0.5")});
  // From n1 the name is not registered: forwarded, and the upstream says NXDOMAIN.
  Response r = f.ask(kClient1, "db");
  CHECK(r.rcode == Rcode::kNxDomain);
  CHECK(r.addresses.empty());
  CHECK(f.upstream.udp_queries == 1);
}

TEST_CASE("dns server: unregister and re-register take effect on the next query") {
  Fixture f(true);
  f.add("n1", "demo-web-1", "10.0.0.2", "web");
  CHECK(f.ask(kClient1, "web").addresses == std::vector<Ipv4>{ip("10.0.0.2")});
  REQUIRE(f.registry.remove("n1", "demo-web-1"));
  CHECK(f.ask(kClient1, "web").rcode == Rcode::kNxDomain);
  f.add("n1", "demo-web-1", "10.0.0.9", "web");  // restarted with a new address
  CHECK(f.ask(kClient1, "web").addresses == std::vector<Ipv4>{ip("10.0.0.9")});
  f.add("n1", "demo-web-1", "10.0.0.10", "web");
  CHECK(f.ask(kClient1, "web").addresses == std::vector<Ipv4>{ip("10.0.0.10")});
}

TEST_CASE("dns server forwards other names upstream and passes NXDOMAIN through") {
  Fixture f(true);
  f.upstream.answers["ok.example"] = {ip("192.0.2.1")};
  Response ok = f.ask(kClient1, "OK.example");
  CHECK(ok.rcode == Rcode::kNoError);
  CHECK(ok.addresses == std::vector<Ipv4>{ip("192.0.2.1")});
  CHECK(f.ask(kClient1, "nx.example").rcode == Rcode::kNxDomain);
  CHECK(f.server->stats().forwarded == 2);
}

TEST_CASE("dns server tries the next upstream, and answers SERVFAIL when all fail") {
  // An upstream that never answers, one whose port is closed, then the fake.
  Fixture f;
  FakeUpstream mute(f.io);
  mute.silent.insert("ok.example");
  udp::socket closed(f.io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Upstream refused{"127.0.0.1", closed.local_endpoint().port()};
  closed.close();
  f.upstream.answers["ok.example"] = {ip("192.0.2.1")};
  f.server->set_upstreams({mute.upstream(), refused, f.upstream.upstream()});

  auto start = std::chrono::steady_clock::now();
  CHECK(f.ask(kClient1, "ok.example").addresses == std::vector<Ipv4>{ip("192.0.2.1")});
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 250ms);  // waited out the mute upstream's timeout, not the refused one's
  CHECK(took < 2s);
  CHECK(mute.udp_queries == 1);

  f.upstream.silent.insert("ok.example");
  Response r = f.ask(kClient1, "ok.example");
  CHECK(r.rcode == Rcode::kServFail);
  CHECK(f.server->stats().servfail == 1);

  f.server->set_upstreams({});
  CHECK(f.ask(kClient1, "ok.example").rcode == Rcode::kServFail);
}

TEST_CASE("dns server moves past an upstream that answers SERVFAIL") {
  Fixture f(true);
  FakeUpstream broken(f.io);
  broken.refuse.insert("ok.example");
  f.upstream.answers["ok.example"] = {ip("192.0.2.1")};
  f.server->set_upstreams({broken.upstream(), f.upstream.upstream()});
  CHECK(f.ask(kClient1, "ok.example").addresses == std::vector<Ipv4>{ip("192.0.2.1")});
  f.server->set_upstreams({broken.upstream()});
  CHECK(f.ask(kClient1, "ok.example").rcode == Rcode::kServFail);
  CHECK(broken.udp_queries == 2);
}

TEST_CASE("dns server retries a truncated upstream answer over TCP") {
  Fixture f(true);
  f.upstream.answers["big.example"] = {ip("192.0.2.7"), ip("192.0.2.8"), ip("192.0.2.9")};
  f.upstream.truncate_udp.insert("big.example");
  Response r = f.ask(kClient1, "big.example");
  CHECK(r.rcode == Rcode::kNoError);
  CHECK_FALSE(r.truncated);
  CHECK(r.addresses.size() == 3);
  CHECK(f.upstream.udp_queries == 1);
  CHECK(f.upstream.tcp_queries == 1);
}

TEST_CASE("dns server answers several queries on one TCP connection, local and forwarded") {
  Fixture f(true);
  f.add("n1", "demo-web-1", "10.0.0.2", "web");
  f.add("n1", "demo-web-2", "10.0.0.3", "web");
  f.upstream.answers["ok.example"] = {ip("192.0.2.1")};
  auto answers =
      run(f.io, tcp_ask(kClient1, f.tcp_ep(),
                        {build_query("web", kTypeA, 1), build_query("ok.example", kTypeA, 2),
                         build_query("nx.example", kTypeA, 3), build_query("web", kTypeA, 4)}));
  REQUIRE(answers.size() == 4);
  auto a1 = parse_response(answers[0]);
  auto a2 = parse_response(answers[1]);
  auto a3 = parse_response(answers[2]);
  auto a4 = parse_response(answers[3]);
  REQUIRE((a1 && a2 && a3 && a4));
  CHECK(a1->id == 1);
  CHECK(a1->addresses.size() == 2);
  CHECK(a2->addresses == std::vector<Ipv4>{ip("192.0.2.1")});
  CHECK(a3->rcode == Rcode::kNxDomain);
  CHECK(a4->addresses.front() != a1->addresses.front());  // rotated
  // A name registered on n2 only stays invisible over TCP too.
  f.add("n2", "other-db-1", "10.2.0.5", "db");
  auto scoped = run(f.io, tcp_ask(kClient1, f.tcp_ep(), {build_query("db", kTypeA, 5)}));
  REQUIRE(scoped.size() == 1);
  CHECK(parse_response(scoped[0])->rcode == Rcode::kNxDomain);
}

TEST_CASE("dns server closes an idle TCP connection") {
  Fixture f;
  auto closed = run(f.io, [](asio::io_context& io, tcp::endpoint server) -> asio::awaitable<bool> {
    tcp::socket sock(io);
    co_await sock.async_connect(server, kTuple);
    std::array<std::uint8_t, 2> len{};
    auto start = std::chrono::steady_clock::now();
    auto [ec, n] = co_await asio::async_read(sock, asio::buffer(len), kTuple);
    auto took = std::chrono::steady_clock::now() - start;
    co_return ec == asio::error::eof&& took >= 250ms && took < 3s;
  }(f.io, f.tcp_ep()));
  CHECK(closed);
}

TEST_CASE("dns server start fails with context when the port is taken") {
  Fixture f;
  DnsServerOptions o;
  o.address = "127.0.0.1";
  o.port = f.server->port();
  DnsServer second(f.io, f.registry, o);
  auto r = second.start();
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("dns 127.0.0.1:") == 0);
  CHECK(r.error().message.find("Address already in use") != std::string::npos);
  o.address = "not-an-ip";
  DnsServer third(f.io, f.registry, o);
  CHECK_FALSE(third.start());
}
