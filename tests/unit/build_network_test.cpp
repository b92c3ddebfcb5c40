// The default network of a build's RUN steps (src/build/bridge_network.h) over FakeNetlink and
// FakeNft: a bridge with NAT made at the first RUN, gone with the build. Pure, no root.
#include <doctest/doctest.h>

#include <algorithm>

#include "build/bridge_network.h"
#include "net/naming.h"
#include "net/network.h"
#include "support/fake_netlink.h"

using namespace stack;

namespace {

struct Fixture {
  test::FakeNetlink kernel;
  test::FakeNft nft;
  net::Firewall firewall{nft, kernel};
  net::MemoryAddressStore store;
  net::StaticPeers peers;
  net::NetworkManager mgr{kernel, firewall, store, peers, net::NetworkOptions{"", {}, true}};
};

bool called(const test::FakeNetlink& k, const std::string& prefix) {
  return std::any_of(k.calls.begin(), k.calls.end(),
                     [&](const std::string& c) { return c.rfind(prefix, 0) == 0; });
}

}  // namespace

TEST_CASE("build network: a NAT bridge made at the first RUN and removed with the build") {
  Fixture f;
  std::string bridge = net::bridge_name("", "build-1a2b", "default");
  {
    build::BridgeBuildNetwork n(f.mgr, "build-1a2b", "nameserver 127.0.0.53\nnameserver 10.0.0.2\n");
    CHECK(f.kernel.calls.empty());  // nothing until a RUN needs it
    auto a = n.attach("stkb-1", 42, 1000);
    REQUIRE_MESSAGE(a, (a ? "" : a.error().message));
    CHECK(called(f.kernel, "ensure_bridge " + bridge));
    CHECK(f.mgr.endpoints("stkb-1").size() == 1);
    CHECK(std::any_of(f.nft.runs.begin(), f.nft.runs.end(), [](const std::string& r) {
      return r.find("masquerade") != std::string::npos;
    }));
    n.detach("stkb-1");
    CHECK(f.mgr.endpoints("stkb-1").empty());
    auto again = n.attach("stkb-2", 43, 1001);  // the second RUN reuses the network
    REQUIRE(again);
    n.detach("stkb-2");
  }
  CHECK(called(f.kernel, "delete_link " + bridge));
  CHECK(f.mgr.find("build-1a2b_default") == nullptr);
}

TEST_CASE("build network: resolv.conf keeps the host's upstream nameservers, not loopback ones") {
  CHECK(build::upstream_resolv_conf("search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n") ==
        "search lan\nnameserver 10.0.0.2\n");
  CHECK(build::upstream_resolv_conf("nameserver 127.0.0.1\nnameserver ::1\n").empty());
}
