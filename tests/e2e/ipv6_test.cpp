// IPv6 networks seen from inside the containers: enable_ipv6 gives each container an address
// of the network's /64 (the ULA pool's, or ipam.config's with ipv6_address honoured) and a
// default route; the embedded DNS answers AAAA; a published port answers on the host's IPv6
// address; egress is masqueraded (NAT66) towards a namespace this test makes; all of it
// survives a daemon restart and `down` leaves nothing (links, tables ip, ip6 and bridge).
#include <doctest/doctest.h>
#include <unistd.h>

#include "common/scope_guard.h"
#include "e2e/network_support.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

// The IPv6 address (scope global) of SERVICE's interface IFNAME, "" when none.
std::string address6_of(StackEnv& env, const std::string& service,
                        const std::string& ifname = "eth0") {
  auto r = env.stack({"exec", service, "ip", "-6", "-o", "addr", "show", "dev", ifname,
                      "scope", "global"});
  auto inet6 = r.out.find("inet6 ");
  if (inet6 == std::string::npos) return "";
  auto start = inet6 + 6;
  return r.out.substr(start, r.out.find('/', start) - start);
}

// The addresses nslookup printed as answers (after "Name:"), in order.
std::vector<std::string> answers_of(const std::string& out) {
  std::vector<std::string> addresses;
  std::istringstream in(out);
  bool answers = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Name:", 0) == 0) answers = true;
    if (answers && line.rfind("Address", 0) == 0)
      addresses.push_back(line.substr(line.rfind(' ') + 1));
  }
  return addresses;
}

}  // namespace

TEST_CASE("enable_ipv6: addresses, routes, AAAA, published ports and NAT66 from inside") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netv6");
  env.uses(p);
  auto before = stack_links();
  int port = 23000 + ::getpid() % 2000;
  write_page(env, "hello over ipv6\n");
  env.write("name: " + p + "\nservices:" + kWeb + "    ports: [\"" + std::to_string(port) +
            ":80\"]\n" + R"(    networks: [front]
  client:
    image: busybox
    command: [sleep, "3600"]
    networks:
      front: {}
      fixed:
        ipv6_address: "fd00:5eed:1:2::42"
networks:
  front:
    enable_ipv6: true
  fixed:
    enable_ipv6: true
    ipam:
      config:
        - subnet: fd00:5eed:1:2::/64
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);

  // A ULA address from the default pool on front, the asked-for one on fixed.
  std::string web6 = address6_of(env, "web");
  CHECK_MESSAGE(web6.rfind("fd", 0) == 0, web6);
  auto all = env.stack({"exec", "client", "ip", "-6", "-o", "addr", "show", "scope", "global"});
  CHECK_MESSAGE(all.out.find("inet6 fd00:5eed:1:2::42/64") != std::string::npos, all.out);
  auto route = env.stack({"exec", "client", "ip", "-6", "route", "show", "default"});
  CHECK_MESSAGE(route.out.find("default via") != std::string::npos, route.out);

  // AAAA for the service name, and traffic over it.
  auto r = exec_until_ok(env, {"client", "nslookup", "-type=aaaa", "web"}, 10s);
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{web6}, r.out << r.err);
  CHECK(exec_until_ok(env, {"client", "ping", "-6", "-c", "1", "-W", "2", "web"}).code == 0);
  r = exec_until_ok(env, {"client", "wget", "-qO-", "http://[" + web6 + "]/"});
  CHECK(r.out == "hello over ipv6\n");

  // The published port on the host's IPv6 address: the gateway of front is one.
  auto gw = env.stack({"exec", "web", "ip", "-6", "route", "show", "default"});
  auto via = gw.out.find("via ");
  REQUIRE_MESSAGE(via != std::string::npos, gw.out);
  std::string gateway6 = gw.out.substr(via + 4, gw.out.find(' ', via + 4) - via - 4);
  CHECK(http_until_ok("http://[" + gateway6 + "]:" + std::to_string(port) + "/") ==
        "hello over ipv6\n");
  CHECK(table_exists(env, "ip6"));

  // NAT66: a namespace of this test's own, "outside", with no route back to the ULA subnet:
  // the reply to a container's ping comes back only if its source was the host's address.
  std::string tag = std::to_string(::getpid() % 10000);  // a valid hex group too
  std::string ns = "stack-test-v6-" + tag, link = "v6t" + tag, peer = "v6p" + tag;
  std::string host6 = "fd00:5eed:ff:" + tag + "::1", out6 = "fd00:5eed:ff:" + tag + "::2";
  stack::ScopeGuard cleanup([&] {
    run({"/usr/sbin/ip", "link", "del", link});
    run({"/usr/sbin/ip", "netns", "del", ns});
  });
  REQUIRE(run({"/usr/sbin/ip", "netns", "add", ns}).code == 0);
  REQUIRE(run({"/usr/sbin/ip", "link", "add", link, "type", "veth", "peer", "name", peer,
               "netns", ns}).code == 0);
  REQUIRE(run({"/usr/sbin/ip", "addr", "add", host6 + "/64", "dev", link, "nodad"}).code == 0);
  REQUIRE(run({"/usr/sbin/ip", "link", "set", link, "up"}).code == 0);
  REQUIRE(run({"/usr/sbin/ip", "-n", ns, "addr", "add", out6 + "/64", "dev", peer, "nodad"})
              .code == 0);
  REQUIRE(run({"/usr/sbin/ip", "-n", ns, "link", "set", peer, "up"}).code == 0);
  // The replies are forwarded from this link: it is this test's uplink (stack enables
  // forwarding on its bridges only).
  REQUIRE(run({"/usr/sbin/sysctl", "-qw", "net.ipv6.conf." + link + ".force_forwarding=1"})
              .code == 0);
  CHECK(exec_until_ok(env, {"web", "ping", "-6", "-c", "1", "-W", "2", out6}).code == 0);

  // A restarted daemon keeps the addresses and answers AAAA for them again.
  kill_daemon(env);
  r = exec_until_ok(env, {"client", "nslookup", "-type=aaaa", "web"}, 10s);
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{web6}, r.out << r.err);
  CHECK(address6_of(env, "web") == web6);

  check_clean(env, p, before);
  CHECK_FALSE(table_exists(env, "ip6"));
}

TEST_CASE("enable_ipv6: [::1] publishing and ipv6_address without enable_ipv6 are refused") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netv6no");
  env.uses(p);
  auto before = stack_links();
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sleep, "3600"]
    ports: ["[::1]:8080:80"]
)");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(up.err.find("host IP ::1") != std::string::npos, up.err);
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sleep, "3600"]
    networks:
      default: {ipv6_address: "fd00::5"}
)");
  up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(up.err.find("has no enable_ipv6: true") != std::string::npos, up.err);
  CHECK(stack_links() == before);
  CHECK(env.leftovers(p).empty());
}
