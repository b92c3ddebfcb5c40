// A container must not reach the host's 127.0.0.1-only services (the CVE-2020-8558 class):
// route_localnet on a bridge (needed for published 127.0.0.1 ports) lets a frame sent to the
// gateway's MAC with destination 127.0.0.1 be delivered on the host. Crafted with the probe
// from inside a real container; traffic goes only to listeners this test opens on the host.
// Before the input-hook guard, the datagram reached the 127.0.0.1 listener and the SYN got a
// SYN-ACK (the probe's controls show the path itself works).
#include <doctest/doctest.h>

#include "security/net_probe_support.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

std::string attacker_stack(const std::string& project, int web_port) {
  return "name: " + project + "\nservices:\n  attacker:\n    image: busybox\n    command: [sleep, "
         "\"3600\"]\n" + probe_volume() + kWeb + "    ports: [\"127.0.0.1:" +
         std::to_string(web_port) + ":80\"]\n";
}

}  // namespace

TEST_CASE("a container's crafted packets to 127.0.0.1 through its gateway reach no host service") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("secloop");
  env.uses(p);
  auto before = stack_links();
  int web_port = 22000 + ::getpid() % 9000;
  write_page(env, "published\n");
  env.write(attacker_stack(p, web_port));
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto gw = gateway_of(env, "attacker");
  REQUIRE(!gw.empty());

  // UDP: the crafted datagram to 127.0.0.1, then a control to the gateway's own address along
  // the same path; once the control is in, the first one would have been too.
  HostSocket loop_udp(SOCK_DGRAM, "127.0.0.1"), gw_udp(SOCK_DGRAM, gw);
  auto sent = probe(env, "attacker", {"udp", "eth0", gw, "self", "127.0.0.1",
                                      std::to_string(loop_udp.port()), "to-loopback"});
  REQUIRE_MESSAGE(sent.code == 0, sent.err);
  sent = probe(env, "attacker",
               {"udp", "eth0", gw, "self", gw, std::to_string(gw_udp.port()), "control"});
  REQUIRE_MESSAGE(sent.code == 0, sent.err);
  CHECK(gw_udp.receive(5s) == "control");
  CHECK(loop_udp.receive() == "");

  // TCP: a SYN to a 127.0.0.1 listener gets no SYN-ACK; the same to the gateway's address does.
  HostSocket loop_tcp(SOCK_STREAM, "127.0.0.1"), gw_tcp(SOCK_STREAM, gw);
  auto syn = probe(env, "attacker", {"syn", "eth0", gw, "self", "127.0.0.1",
                                     std::to_string(loop_tcp.port()), "1500"});
  CHECK_MESSAGE(syn.out == "no answer\n", syn.out << syn.err);
  CHECK(!loop_tcp.has_connection());
  auto control = probe(env, "attacker",
                       {"syn", "eth0", gw, "self", gw, std::to_string(gw_tcp.port()), "3000"});
  CHECK_MESSAGE(control.out == "syn-ack\n", control.out << control.err);

  // What route_localnet is there for still works: the host reaches 127.0.0.1:PORT published,
  // and a host connection from 127.0.0.1 to a container gets its replies (masqueraded).
  CHECK(http_until_ok("http://127.0.0.1:" + std::to_string(web_port) + "/") == "published\n");
  auto web = address_of(env, "web");
  REQUIRE(!web.empty());
  auto direct = run({"/usr/bin/curl", "-s", "--max-time", "3", "--interface", "127.0.0.1",
                     "http://" + web + "/"});
  CHECK_MESSAGE(direct.out == "published\n", direct.err);
  check_clean(env, p, before);
}
