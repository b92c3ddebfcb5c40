// Fuzz-ish test of the DNS server over loopback sockets (no root): thousands of random, truncated,
// mutated and hand-crafted hostile packets from a seeded PRNG, over UDP and TCP. The server must
// not crash, must answer each with nothing, FORMERR, SERVFAIL (no upstream) or NOTIMP (opcodes
// other than QUERY), and must still answer a valid query afterwards.

#include <doctest/doctest.h>

#include <random>

#include "dns_loopback.h"
#include "net/dns/dns_server.h"

using namespace stack::test::dns;

namespace {

Wire random_bytes(std::mt19937& rng, std::size_t max_len) {
  Wire m(rng() % (max_len + 1));
  for (auto& b : m) b = static_cast<std::uint8_t>(rng());
  return m;
}

// A packet from one of several families of malformed input.
Wire hostile_packet(std::mt19937& rng, const Wire& valid) {
  switch (rng() % 6) {
    case 0:  // noise
      return random_bytes(rng, 600);
    case 1: {  // a valid query cut short
      Wire m = valid;
      m.resize(rng() % m.size());
      return m;
    }
    case 2: {  // a valid query with a few bytes changed
      Wire m = valid;
      for (int n = 1 + static_cast<int>(rng() % 4); n > 0; --n)
        m[rng() % m.size()] = static_cast<std::uint8_t>(rng());
      return m;
    }
    case 3: {  // wrong section counts on a valid query
      Wire m = valid;
      for (std::size_t i = 4; i < kHeaderSize; ++i) m[i] = static_cast<std::uint8_t>(rng());
      m[2] &= 0x7f;  // keep it a query so that it is parsed
      return m;
    }
    case 4: {  // compression pointers: to itself, forward, in a loop between two names
      Wire m{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
      std::uint8_t target = static_cast<std::uint8_t>(12 + rng() % 8);
      m.insert(m.end(), {0x01, 'a', 0xc0, target, 0x00, 0x01, 0x00, 0x01});
      if (rng() % 2) m.insert(m.end(), {0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01});
      return m;
    }
    default: {  // huge or lying label lengths, long names
      Wire m{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
      int labels = 1 + static_cast<int>(rng() % 8);
      for (int l = 0; l < labels; ++l) {
        std::uint8_t len = static_cast<std::uint8_t>(rng() % 256);
        m.push_back(len);
        std::size_t body = rng() % 2 ? len : rng() % 70;
        for (std::size_t i = 0; i < body; ++i) m.push_back('a');
      }
      m.insert(m.end(), {0x00, 0x00, 0x01, 0x00, 0x01});
      return m;
    }
  }
}

bool acceptable(const Wire& reply) {
  if (reply.size() < kHeaderSize) return false;
  Rcode r = wire_rcode(reply);
  return r == Rcode::kFormErr || r == Rcode::kServFail || r == Rcode::kNotImp;
}

}  // namespace

TEST_CASE("dns server survives thousands of hostile packets and still answers") {
  asio::io_context io;
  DnsRegistry registry;
  REQUIRE(
      registry.add(Endpoint{"n1", "demo-client-1", *Ipv4::parse("127.0.0.11"), "client", "", {}}));
  REQUIRE(registry.add(Endpoint{"n1", "demo-web-1", *Ipv4::parse("10.0.0.2"), "web", "", {}}));
  DnsServerOptions o;
  o.address = "127.0.0.1";
  o.port = 0;  // no upstreams: a hostile packet that parses as a query gets SERVFAIL
  o.tcp_idle_timeout = 200ms;
  DnsServer server(io, registry, o);
  REQUIRE(server.start());
  udp::endpoint udp_server(asio::ip::make_address("127.0.0.1"), server.port());
  tcp::endpoint tcp_server(asio::ip::make_address("127.0.0.1"), server.port());

  std::mt19937 rng(0x5eed);
  const Wire valid = build_query("fuzz.example", kTypeA, 0x7777, 1232);

  udp::socket client(io, udp::endpoint(asio::ip::make_address("127.0.0.11"), 0));
  client.non_blocking(true);
  int sent = 0, replies = 0, unacceptable = 0;
  Wire buf(65535);
  auto drain = [&] {
    io.restart();
    io.poll();
    for (;;) {
      error_code ec;
      std::size_t n = client.receive(asio::buffer(buf), 0, ec);
      if (ec) break;
      ++replies;
      if (!acceptable(Wire(buf.begin(), buf.begin() + static_cast<long>(n)))) ++unacceptable;
    }
  };
  for (int i = 0; i < 6000; ++i) {
    Wire m = hostile_packet(rng, valid);
    error_code ec;
    client.send_to(asio::buffer(m), udp_server, 0, ec);
    if (!ec) ++sent;
    if (i % 8 == 7) drain();
  }
  for (int i = 0; i < 20; ++i) {
    io.restart();
    io.run_for(5ms);
    drain();
  }
  MESSAGE("udp: sent=", sent, " replies=", replies);
  CHECK(unacceptable == 0);
  CHECK(replies > sent / 4);

  // TCP: junk in frames, frames that lie about their length, and abrupt closes.
  for (int c = 0; c < 40; ++c) {
    std::vector<Wire> frames;
    for (int k = 0; k < 3; ++k) frames.push_back(hostile_packet(rng, valid));
    auto answers = run(io, tcp_ask("127.0.0.11", tcp_server, frames, 250ms));
    for (const Wire& a : answers) CHECK(acceptable(a));
  }
  auto lying = run(io, [](asio::io_context& io, tcp::endpoint server) -> asio::awaitable<bool> {
    tcp::socket sock(io);
    co_await sock.async_connect(server, kTuple);
    const std::uint8_t frame[] = {0xff, 0xff, 0x01, 0x02, 0x03};  // 65535 promised, 3 sent
    co_await asio::async_write(sock, asio::buffer(frame), kTuple);
    sock.close();
    co_return true;
  }(io, tcp_server));
  CHECK(lying);

  // Still serving, over both transports.
  auto answer = run(io, udp_ask("127.0.0.11", udp_server, build_query("web", kTypeA, 9)));
  REQUIRE(answer);
  auto r = parse_response(*answer);
  REQUIRE(r);
  CHECK(r->addresses == std::vector<Ipv4>{*Ipv4::parse("10.0.0.2")});
  auto tcp_answers = run(io, tcp_ask("127.0.0.11", tcp_server, {build_query("web", kTypeA, 10)}));
  REQUIRE(tcp_answers.size() == 1);
  CHECK(parse_response(tcp_answers[0])->addresses.size() == 1);
  CHECK(server.stats().errors > 0);
  CHECK(server.stats().dropped > 0);
}
