// IPv6-only networks (enable_ipv4: false) seen from inside the containers: eth0 has no inet
// address, resolv.conf points at the network's IPv6 gateway where the embedded DNS listens,
// service names answer AAAA only, traffic by name goes over IPv6, published ports answer on
// the host's IPv6 address and not on IPv4; enable_ipv4: false alone is refused before anything
// is made on the host.
#include <doctest/doctest.h>
#include <unistd.h>

#include "e2e/network_support.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
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

TEST_CASE("enable_ipv4 false: no inet, DNS on IPv6 with AAAA only, traffic and ports by IPv6") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netv6only");
  env.uses(p);
  auto before = stack_links();
  int port = 25000 + ::getpid() % 2000;
  write_page(env, "hello ipv6-only\n");
  env.write("name: " + p + "\nservices:" + kWeb + "    ports: [\"" + std::to_string(port) +
            ":80\"]\n" + R"(    networks: [six]
  client:
    image: busybox
    command: [sleep, "3600"]
    networks: [six]
networks:
  six:
    enable_ipv4: false
    enable_ipv6: true
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);

  // eth0: IPv6 (global and link-local), no inet; no IPv4 default route.
  auto addr = env.stack({"exec", "client", "ip", "-o", "addr", "show", "dev", "eth0"});
  REQUIRE(addr.code == 0);
  CHECK_MESSAGE(!has(addr.out, "inet "), addr.out);
  CHECK_MESSAGE(has(addr.out, "inet6 fd"), addr.out);
  CHECK_MESSAGE(has(addr.out, "inet6 fe80:"), addr.out);
  auto route4 = env.stack({"exec", "client", "ip", "-4", "route", "show"});
  CHECK_MESSAGE(route4.out.empty(), route4.out);

  // resolv.conf names the IPv6 gateway (the bridge's address, where the DNS listens).
  auto gw = env.stack({"exec", "client", "ip", "-6", "route", "show", "default"});
  auto via = gw.out.find("via ");
  REQUIRE_MESSAGE(via != std::string::npos, gw.out);
  std::string gateway6 = gw.out.substr(via + 4, gw.out.find(' ', via + 4) - via - 4);
  auto conf = env.stack({"exec", "client", "cat", "/etc/resolv.conf"});
  CHECK_MESSAGE(has(conf.out, "nameserver " + gateway6 + "\n"), conf.out);

  // The service name: AAAA, its IPv6 address; A: nothing.
  auto web = env.stack({"exec", "web", "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope",
                        "global"});
  auto at = web.out.find("inet6 ");
  REQUIRE_MESSAGE(at != std::string::npos, web.out);
  std::string web6 = web.out.substr(at + 6, web.out.find('/', at + 6) - at - 6);
  auto r = exec_until_ok(env, {"client", "nslookup", "-type=aaaa", "web"}, 10s);
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{web6}, r.out << r.err);
  r = env.stack({"exec", "client", "nslookup", "-type=a", "web"});
  CHECK_MESSAGE(answers_of(r.out).empty(), r.out << r.err);
  r = exec_until_ok(env, {"client", "nslookup", "web"}, 10s);
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{web6}, r.out << r.err);

  // Traffic by name, over IPv6 (there is nothing else).
  r = exec_until_ok(env, {"client", "wget", "-qO-", "http://web/"}, 10s);
  CHECK_MESSAGE(r.out == "hello ipv6-only\n", r.out << r.err);

  // The published port: on the host's IPv6 address, and no IPv4 DNAT for it.
  CHECK(http_until_ok("http://[" + gateway6 + "]:" + std::to_string(port) + "/") ==
        "hello ipv6-only\n");
  auto v4 = run({"/usr/sbin/nft", "list", "table", "ip", table_of(env)});
  CHECK_MESSAGE(!has(v4.out, "dport " + std::to_string(port) + " "), v4.out);

  check_clean(env, p, before);
  CHECK_FALSE(table_exists(env, "ip6"));
}

TEST_CASE("enable_ipv4 false without enable_ipv6 is refused naming the network, nothing made") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netnoip");
  env.uses(p);
  auto before = stack_links();
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sleep, "3600"]
    networks: [none4]
networks:
  none4:
    enable_ipv4: false
)");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(has(up.err, "networks.none4: IPv4 or IPv6 must be enabled"), up.err);
  CHECK(stack_links() == before);
  CHECK(env.leftovers(p).empty());
}
