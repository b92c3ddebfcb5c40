// A simulated host for network integration tests: a namespace playing the host (with an uplink
// veth to a second namespace playing the outside world, 192.168.200.1 <-> .2), the real
// Netlink, nftables and NetworkManager made inside it, and container namespaces to attach.
// The test thread stays in the host namespace while this object lives. Root only.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "net/network.h"
#include "support/netlink_contract.h"
#include "support/test_netns.h"

namespace stack::test {

struct NetHost {
  explicit NetHost(const std::string& tag, bool with_outside = true)
      : host(tag), outside(tag + "o"), enter(host.fd()) {
    if (with_outside) {
      auto r = host.sh("ip link add stkt-up type veth peer name eth0 netns " + outside.name() +
                       " && ip addr add 192.168.200.1/24 dev stkt-up && ip link set stkt-up up");
      REQUIRE_MESSAGE(r.code == 0, r.err);
      r = outside.sh("ip addr add 192.168.200.2/24 dev eth0 && ip link set eth0 up");
      REQUIRE_MESSAGE(r.code == 0, r.err);
    }
    nl = net::make_libnl_netlink().value();
    nft = net::make_libnftables().value();
    firewall = std::make_unique<net::Firewall>(*nft, *nl);
    manager =
        std::make_unique<net::NetworkManager>(*nl, *firewall, store, peers, net::NetworkOptions{});
  }

  net::NetworkInfo ensure(net::NetworkSpec spec) {
    auto r = manager->ensure_network(spec);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    return *r;
  }
  std::vector<net::Endpoint> attach(const TestNetns& c, std::vector<net::EndpointRequest> reqs) {
    auto r = manager->attach(c.name(), c.fd(), 1, reqs);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    return *r;
  }
  // Links named stk*/stx* left in the host namespace, and whether table ip stack exists.
  std::string leftovers() const {
    auto links = host.sh("ip -o link show | grep -E ': (stk|stx)' | grep -v stkt-up");
    auto tables = host.sh("nft list tables | grep 'ip stack'");
    return links.out + tables.out;
  }

  TestNetns host;
  TestNetns outside;
  EnterNetns enter;  // after the namespaces, so it is left before they are deleted
  std::unique_ptr<net::Netlink> nl;
  std::unique_ptr<net::NftRunner> nft;
  std::unique_ptr<net::Firewall> firewall;
  net::MemoryAddressStore store;
  net::StaticPeers peers;
  std::unique_ptr<net::NetworkManager> manager;
};

inline net::NetworkSpec a_network(const std::string& name, bool internal = false) {
  net::NetworkSpec s;
  s.project = "itest";
  s.name = name;
  s.internal = internal;
  return s;
}

inline bool ping(const TestNetns& from, const std::string& ip) {
  return from.exec({"/usr/bin/busybox", "ping", "-c", "1", "-W", "2", ip}).code == 0;
}

// An HTTP GET from NS with curl (Debian's busybox wget crashes); the body, or "" on failure.
inline std::string http_get(const TestNetns& ns, const std::string& url) {
  auto r = ns.exec({"/usr/bin/curl", "-s", "-f", "-m", "3", url});
  return r.code == 0 ? r.out : "";
}

// Waits until URL answers from NS (a server just started).
inline bool wait_http(const TestNetns& ns, const std::string& url) {
  for (int i = 0; i < 50; i++) {
    if (!http_get(ns, url).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace stack::test
