// DNS answer latency of the embedded server: a registered service name (3 replicas) asked over
// UDP on loopback, 10,000 queries one at a time; prints p50/p99. No root needed. The server runs
// on this process's io_context; the client is a plain blocking socket on a second thread, as a
// container's resolver would be another process.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "net/dns/dns_message.h"
#include "net/dns/dns_server.h"

using namespace stack::net::dns;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const int queries = argc > 1 ? std::atoi(argv[1]) : 10'000;
  boost::asio::io_context io;
  DnsRegistry registry;
  const char* client_ip = "127.0.0.11";
  (void)registry.add(Endpoint{"n1", "bench-client-1", *Ipv4::parse(client_ip), "client", "", {}});
  for (int i = 1; i <= 3; ++i)
    (void)registry.add(Endpoint{"n1",
                                "bench-web-" + std::to_string(i),
                                Ipv4{0x0a000001u + static_cast<std::uint32_t>(i)},
                                "web",
                                "",
                                {}});
  DnsServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  DnsServer server(io, registry, options);
  if (auto r = server.start(); !r) {
    std::fprintf(stderr, "bench_dns: %s\n", r.error().message.c_str());
    return 1;
  }

  std::vector<double> micros;
  int failures = 0;
  std::thread client([&] {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, client_ip, &src.sin_addr);
    bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(server.port());
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::vector<std::uint8_t> buf(4096);
    micros.reserve(static_cast<std::size_t>(queries));
    for (int i = -500; i < queries; ++i) {  // 500 warm-up queries, not counted
      Wire q = build_query("web", kTypeA, static_cast<std::uint16_t>(i));
      auto t0 = Clock::now();
      send(fd, q.data(), q.size(), 0);
      ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      auto t1 = Clock::now();
      if (n < static_cast<ssize_t>(kHeaderSize) || wire_id(buf) != static_cast<std::uint16_t>(i)) {
        ++failures;
        continue;
      }
      if (i >= 0) micros.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    close(fd);
    boost::asio::post(io, [&] { server.stop(); });
  });
  io.run();
  client.join();

  if (micros.empty()) {
    std::fprintf(stderr, "bench_dns: no answers\n");
    return 1;
  }
  std::sort(micros.begin(), micros.end());
  auto pct = [&](double p) {
    return micros[std::min(micros.size() - 1, static_cast<std::size_t>(p * micros.size()))];
  };
  double sum = 0;
  for (double m : micros) sum += m;
  std::printf("dns udp A, registered name with 3 replicas, loopback: n=%zu failures=%d\n",
              micros.size(), failures);
  std::printf("  p50 %.1f us   p99 %.1f us   mean %.1f us   max %.1f us\n", pct(0.50), pct(0.99),
              sum / static_cast<double>(micros.size()), micros.back());
  std::printf("  server: queries=%llu local=%llu\n",
              static_cast<unsigned long long>(server.stats().queries),
              static_cast<unsigned long long>(server.stats().local));
  return failures == 0 ? 0 : 1;
}
