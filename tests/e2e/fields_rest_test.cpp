// The last service fields as a user sees their effect: an sctp port published through nftables
// (a packet sent to the host's port arrives at the container's).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "e2e/network_support.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

// This kernel may have no SCTP stack (CONFIG_IP_SCTP unset) while its conntrack and NAT still
// track and rewrite sctp (CONFIG_NF_CT_PROTO_SCTP): the proof is then an SCTP INIT sent with a
// raw socket from the host to 127.0.0.1:PORT and received, rewritten to port 80, by a raw
// socket in the container's network namespace. Where the kernel has SCTP, the same raw INIT is
// still what is sent: it needs no listener, and the DNAT is what is tested.
const char* kSctpReceive = R"(
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)
s.settimeout(10)
open(sys.argv[1], "w").close()
while True:
    d, a = s.recvfrom(65535)
    ihl = (d[0] & 15) * 4
    sport, dport = struct.unpack("!HH", d[ihl:ihl + 4])
    if sport == int(sys.argv[2]) and d[ihl + 12] == 1:
        print("%s %d" % (socket.inet_ntoa(d[16:20]), dport))
        break
)";

const char* kSctpSend = R"(
import socket, struct, sys
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF
sport, dport = int(sys.argv[2]), int(sys.argv[3])
chunk = struct.pack("!BBHIIHHI", 1, 0, 20, 0x5354414b, 65536, 1, 1, 1)  # INIT
pkt = struct.pack("!HHII", sport, dport, 0, 0) + chunk
pkt = pkt[:8] + struct.pack("<I", crc32c(pkt)) + chunk
socket.socket(socket.AF_INET, socket.SOCK_RAW, 132).sendto(pkt, (sys.argv[1], 0))
)";

}  // namespace

TEST_CASE("an sctp port is published: an INIT to 127.0.0.1:PORT reaches the container on port 80") {
  STACK_REQUIRE_ROOT();
  if (!std::filesystem::exists("/usr/bin/python3"))
    return report_skip("no /usr/bin/python3 to send and receive raw sctp packets");
  StackEnv env;
  auto p = unique_project("sctp");
  env.uses(p);
  auto before = stack_links();
  int port = 21000 + ::getpid() % 9000;
  env.write("name: " + p + "\nservices:\n  web:\n    image: busybox\n    command: [sleep, \"3600\"]\n"
            "    ports: [\"" + std::to_string(port) + ":80/sctp\"]\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.stack({"port", "--protocol", "sctp", "web", "80"}).out ==
        "0.0.0.0:" + std::to_string(port) + "\n");
  auto table = run({"/usr/sbin/nft", "list", "table", "ip", table_of(env)});
  CHECK(table.out.find("sctp dport " + std::to_string(port) + " dnat to ") != std::string::npos);

  int pid = env.container(p, p + "-web-1")["pid"];
  REQUIRE(pid > 1);
  std::string address = address_of(env, "web");
  auto ready = env.project_dir() / "receiver-ready";
  int sport = 40000 + ::getpid() % 20000;
  std::thread sender([&] {
    for (int i = 0; i < 100 && !std::filesystem::exists(ready); i++) std::this_thread::sleep_for(50ms);
    // Until the receiver has what it waits for (it exits): the first INIT may beat the rules.
    for (int i = 0; i < 30 && std::filesystem::exists(ready); i++) {
      run({"/usr/bin/python3", "-c", kSctpSend, "127.0.0.1", std::to_string(sport),
           std::to_string(port)});
      std::this_thread::sleep_for(200ms);
    }
  });
  auto got = run({"/usr/bin/nsenter", "-t", std::to_string(pid), "-n", "/usr/bin/python3", "-c",
                  kSctpReceive, ready.string(), std::to_string(sport)});
  std::filesystem::remove(ready);
  sender.join();
  CHECK_MESSAGE(got.code == 0, got.err);
  CHECK(got.out == address + " 80\n");
  check_clean(env, p, before);
}
