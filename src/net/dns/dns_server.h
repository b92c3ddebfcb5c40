// The embedded DNS server of one network (the public face of src/net/dns): UDP and TCP on the
// network's gateway address, names from a Records provider scoped to the asking container, the
// rest forwarded upstream. Runs on the daemon's io_context; never creates threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "net/dns/dns_registry.h"
#include "net/dns/resolv_conf.h"

namespace boost::asio {
class io_context;
}

namespace stack::net::dns {

struct DnsServerOptions {
  std::string address;              // listen address: the gateway IP (IPv6 on an IPv6-only net)
  std::uint16_t port = 53;          // 0: a free port, the same for UDP and TCP (tests)
  std::vector<Upstream> upstreams;  // tried in order; none: non-local names get SERVFAIL
  std::chrono::milliseconds upstream_timeout{1500};  // per upstream, per transport
  std::chrono::milliseconds tcp_idle_timeout{10'000};
  std::size_t max_tcp_connections = 128;
  std::size_t max_forwards_in_flight = 512;  // UDP queries past this are dropped (client retries)
  std::uint32_t ttl = 0;  // of local answers: containers come and go, nothing should cache them
};

struct DnsServerStats {
  std::uint64_t queries = 0;    // well-formed queries, UDP and TCP
  std::uint64_t local = 0;      // answered from Records
  std::uint64_t forwarded = 0;  // answered by an upstream
  std::uint64_t servfail = 0;   // every upstream failed
  std::uint64_t errors = 0;     // FORMERR / NOTIMP replies
  std::uint64_t dropped = 0;    // not answered (no header, responses, overload)
};

// Lifetime: RECORDS must outlive the server. Destroying the server (or stop()) closes its
// sockets; in-flight coroutines finish on the loop without touching RECORDS again.
// Thread-safety: none; every call, like every Records change, on the io_context's thread, so a
// registry change is seen by the next query the loop reads.
class DnsServer {
 public:
  DnsServer(boost::asio::io_context& io, Records& records, DnsServerOptions options);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Binds UDP and TCP and starts serving. Fails with context ("dns 10.89.0.1:53: bind udp:
  // Address already in use") when either socket cannot be had; then nothing stays bound.
  [[nodiscard]] Result<void> start();
  void stop();

  // Replaces the upstreams for queries arriving from now on (say, after resolv.conf changed).
  void set_upstreams(std::vector<Upstream> upstreams);

  std::uint16_t port() const;  // the bound port, once started
  const DnsServerStats& stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace stack::net::dns
