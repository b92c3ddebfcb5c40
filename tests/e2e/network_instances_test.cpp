// Two stack instances (different --root) on one host: each has its own nftables tables, so
// `down` in one leaves the other's published ports answering and its isolation in force.
#include <doctest/doctest.h>
#include <unistd.h>

#include "e2e/network_support.h"

using namespace stack::test;

namespace {

// web (published on PORT, network front) and other (network side): two isolated networks.
std::string two_networks(const std::string& project, int port) {
  return "name: " + project + "\nservices:" + kWeb + "    networks: [front]\n    ports: [\"" +
         std::to_string(port) + ":80\"]\n" + R"(
  other:
    image: busybox
    command: [sleep, "3600"]
    networks: [side]
networks:
  front: {}
  side: {}
)";
}

}  // namespace

TEST_CASE("down in one instance leaves another's published port and isolation in force") {
  STACK_REQUIRE_ROOT();
  StackEnv one, two;
  // Two project names: leftovers() looks for a project's cgroups in every instance.
  auto p1 = unique_project("netinsta"), p2 = unique_project("netinstb");
  one.uses(p1);
  two.uses(p2);
  auto before = stack_links();
  int port1 = 21000 + ::getpid() % 9000, port2 = port1 + 1;
  write_page(one, "one\n");
  write_page(two, "two\n");
  one.write(two_networks(p1, port1));
  two.write(two_networks(p2, port2));
  auto up1 = one.stack({"up", "-d"});
  REQUIRE_MESSAGE(up1.code == 0, up1.err);
  auto up2 = two.stack({"up", "-d"});
  REQUIRE_MESSAGE(up2.code == 0, up2.err);
  CHECK(table_of(one) != table_of(two));
  CHECK(table_exists(one));
  CHECK(table_exists(two));
  // Both instances' ports answer: neither replaced the other's rules.
  CHECK(http_until_ok("http://127.0.0.1:" + std::to_string(port1) + "/") == "one\n");
  CHECK(http_until_ok("http://127.0.0.1:" + std::to_string(port2) + "/") == "two\n");
  auto web2 = address_of(two, "web");
  REQUIRE(!web2.empty());
  CHECK(two.stack({"exec", "other", "timeout", "2", "wget", "-qO-", "http://" + web2 + "/"}).code !=
        0);

  REQUIRE(one.stack({"down", "-t", "0"}).code == 0);
  CHECK_FALSE(table_exists(one));
  CHECK(one.leftovers(p1).empty());
  CHECK(table_exists(two));
  CHECK(http_until_ok("http://127.0.0.1:" + std::to_string(port2) + "/") == "two\n");
  // Instance two's isolation holds: its other network still cannot reach web.
  CHECK(two.stack({"exec", "other", "timeout", "2", "wget", "-qO-", "http://" + web2 + "/"}).code !=
        0);
  // (The positive control: web answers on its own network.)
  CHECK(exec_until_ok(two, {"web", "timeout", "2", "wget", "-qO-", "http://" + web2 + "/"}).out ==
        "two\n");
  check_clean(two, p2, before);
}
