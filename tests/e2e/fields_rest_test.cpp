// The last service fields as a user sees their effect: an sctp port published through nftables
// (a packet sent to the host's port arrives at the container's), and the syslog and journald
// log drivers (what reaches the socket or the journal, and `stack logs` from the local copy).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "common/unique_fd.h"
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

// A datagram socket the test listens on: unix at PATH, or udp on 127.0.0.1 (port chosen).
struct Listener {
  stack::UniqueFd fd;
  int port = 0;
  static Listener unix_at(const std::string& path) {
    Listener l;
    l.fd.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.data(), path.size());
    REQUIRE(::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
    return l;
  }
  static Listener udp() {
    Listener l;
    l.fd.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof in) == 0);
    socklen_t len = sizeof in;
    ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&in), &len);
    l.port = ntohs(in.sin_port);
    return l;
  }
  // The next N messages (fewer when WAIT passes first).
  std::vector<std::string> receive(size_t n, std::chrono::milliseconds wait = 15s) {
    std::vector<std::string> out;
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      ssize_t got = ::recv(fd.get(), buf, sizeof buf, 0);
      if (got > 0) out.emplace_back(buf, static_cast<size_t>(got));
    }
    return out;
  }
};

std::string logs_until(StackEnv& env, const std::string& service, const std::string& text) {
  auto logs = env.stack({"logs", service});
  for (int i = 0; i < 100 && logs.out.find(text) == std::string::npos; i++) {
    std::this_thread::sleep_for(50ms);
    logs = env.stack({"logs", service});
  }
  return logs.out;
}

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

TEST_CASE("logging driver syslog: each line reaches a udp and a unixgram listener, and logs keeps a copy") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("syslog");
  env.uses(p);
  auto udp = Listener::udp();
  std::string sock = (env.project_dir() / "syslog.sock").string();
  auto unixgram = Listener::unix_at(sock);
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "echo out-line; echo err-line >&2; exec sleep 3600"]
    logging:
      driver: syslog
      options:
        syslog-address: "udp://127.0.0.1:)" + std::to_string(udp.port) + R"("
        syslog-format: rfc5424
        tag: "{{.Name}}"
  box:
    image: busybox
    command: [sh, -c, "echo box-line; exec sleep 3600"]
    logging:
      driver: syslog
      options:
        syslog-address: "unixgram://)" + sock + R"("
        syslog-facility: local0
        syslog-format: rfc3164
        tag: "box-{{.ImageName}}"
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  // RFC 5424 from the daemon: daemon facility (3), info (6) for stdout and err (3) for stderr.
  auto web = udp.receive(2);
  REQUIRE(web.size() == 2);
  std::sort(web.begin(), web.end());
  std::string name = p + "-web-1";
  std::regex rfc5424("<(\\d+)>1 \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ \\S+ " + name +
                     " \\d+ " + name + " - (.*)");
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_match(web[0], m, rfc5424), web[0]);
  CHECK(m[1] == "27");
  CHECK(m[2] == "err-line");
  REQUIRE_MESSAGE(std::regex_match(web[1], m, rfc5424), web[1]);
  CHECK(m[1] == "30");
  CHECK(m[2] == "out-line");
  // RFC 3164 on the unix socket: local0 (16), info.
  auto box = unixgram.receive(1);
  REQUIRE(box.size() == 1);
  CHECK_MESSAGE(std::regex_match(box[0], std::regex("<134>[A-Z][a-z]{2} [ 1-3]\\d \\d\\d:\\d\\d:\\d\\d "
                                                    "\\S+ box-busybox(:latest)?\\[\\d+\\]: box-line")),
                box[0]);
  // Dual logging: the local copy still answers `stack logs`.
  auto logs = logs_until(env, "web", "err-line");
  CHECK(logs.find(name + " | out-line\n") != std::string::npos);
  CHECK(logs.find(name + " | err-line\n") != std::string::npos);
  // A restart keeps sending: the new run's lines, once each.
  REQUIRE(env.stack({"restart", "-t", "0", "box"}).code == 0);
  // (Two asked for, one expected: the first run's line is not sent again.)
  auto again = unixgram.receive(2, 3s);
  REQUIRE(again.size() == 1);
  CHECK(again[0].find("box-line") != std::string::npos);
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("logging driver syslog with nobody listening: the start fails naming the address") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("syslogdown");
  env.uses(p);
  std::string sock = (env.project_dir() / "nobody.sock").string();
  env.write("name: " + p + "\nservices:\n  web:\n    image: busybox\n    command: [sleep, \"3600\"]\n"
            "    logging: {driver: syslog, options: {syslog-address: \"unixgram://" + sock + "\"}}\n");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(up.err.find("logging driver syslog: connect syslog socket " + sock) !=
                    std::string::npos,
                up.err);
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("logging driver journald: journalctl finds the lines by CONTAINER_NAME") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("journald");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "echo journal-line; exec sleep 3600"]
    logging: {driver: journald, options: {tag: "web-{{.Name}}"}}
)");
  std::string name = p + "-web-1";
  if (!std::filesystem::exists("/run/systemd/journal/socket")) {
    // No journal on this host: the start fails with the reason, nothing is left.
    auto up = env.stack({"up", "-d"});
    CHECK(up.code != 0);
    CHECK_MESSAGE(up.err.find("logging driver journald: no journal on this host") !=
                      std::string::npos,
                  up.err);
    REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
    CHECK(env.leftovers(p).empty());
    return report_skip("no journald running here (no /run/systemd/journal/socket): only the "
                       "refusal was checked");
  }
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  RunResult j;
  for (int i = 0; i < 100; i++) {
    j = run({"/usr/bin/journalctl", "--no-pager", "-o", "json", "CONTAINER_NAME=" + name});
    if (j.out.find("journal-line") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  auto line = j.out.substr(0, j.out.find('\n'));
  auto entry = nlohmann::json::parse(line, nullptr, false);
  REQUIRE_MESSAGE(entry.is_object(), j.out);
  CHECK(entry["MESSAGE"] == "journal-line");
  CHECK(entry["CONTAINER_ID"] == name);
  CHECK(entry["CONTAINER_TAG"] == "web-" + name);
  CHECK(entry["SYSLOG_IDENTIFIER"] == "web-" + name);
  CHECK(entry["PRIORITY"] == "6");
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
}
