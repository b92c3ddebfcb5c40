// The network service fields seen from inside the containers: links and external_links are
// names only the linking service resolves, a service's `dns` servers answer its other queries
// (resolvers this test runs on loopback addresses of its own), both also after a daemon
// restart; mac_address, interface_name, endpoint driver_opts and gw_priority shape the
// container's interfaces and default route.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "e2e/network_support.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

// A DNS resolver on ADDRESS:53 (a loopback address of this test's own): A queries for a name in
// ANSWERS get that address, any other query NXDOMAIN. Counts the queries per name.
class FakeResolver {
 public:
  FakeResolver(std::string address, std::map<std::string, std::string> answers)
      : address_(std::move(address)), answers_(std::move(answers)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(53);
    ::inet_pton(AF_INET, address_.c_str(), &sa.sin_addr);
    REQUIRE_MESSAGE(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0,
                    "bind " << address_ << ":53");
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeResolver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int queries(const std::string& name) {
    std::lock_guard lock(mu_);
    return counts_[name];
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      unsigned char buf[1500];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 17) continue;
      // The question: labels from byte 12, then type and class.
      std::string name;
      size_t i = 12;
      while (i < static_cast<size_t>(n) && buf[i] != 0) {
        size_t l = buf[i];
        if (!name.empty()) name += '.';
        name.append(reinterpret_cast<char*>(buf + i + 1), std::min(l, n - i - 1));
        i += l + 1;
      }
      size_t end = i + 5;
      if (end > static_cast<size_t>(n)) continue;
      int type = buf[i + 1] << 8 | buf[i + 2];
      {
        std::lock_guard lock(mu_);
        counts_[name]++;
      }
      std::vector<unsigned char> out(buf, buf + end);
      out[2] = 0x80 | (buf[2] & 0x01);  // QR, RD as asked
      out[3] = 0x80;                    // RA, NOERROR
      out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;
      auto a = answers_.find(name);
      if (a == answers_.end()) {
        out[3] |= 3;  // NXDOMAIN
      } else if (type == 1) {
        out[7] = 1;
        unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0};
        ::inet_pton(AF_INET, a->second.c_str(), rr + 12);
        out.insert(out.end(), rr, rr + sizeof rr);
      }
      ::sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  std::string address_;
  std::map<std::string, std::string> answers_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, int> counts_;
};

// A loopback address of this test process's own: 127.53.<pid>.<n>.
std::string own_loopback(int n) {
  int pid = ::getpid();
  return "127.53." + std::to_string(pid % 250 + 1) + "." + std::to_string(n);
}

// The addresses nslookup printed after "Name:" (the answers), in order.
std::vector<std::string> answers_of(const std::string& out) {
  std::vector<std::string> addresses;
  std::istringstream in(out);
  bool answers = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Name:", 0) == 0) answers = true;
    if (answers && line.rfind("Address", 0) == 0) addresses.push_back(line.substr(line.rfind(' ') + 1));
  }
  return addresses;
}

}  // namespace

TEST_CASE("links and external_links are names the linking service alone resolves") {
  STACK_REQUIRE_ROOT();
  FakeResolver resolver(own_loopback(1), {});
  StackEnv env;
  auto p = unique_project("netlinks");
  env.uses(p);
  auto before = stack_links();
  env.write("name: " + p + R"(
services:
  db:
    image: busybox
    command: [sleep, "3600"]
  old:
    image: busybox
    command: [sleep, "3600"]
    container_name: )" + p + R"(-legacy-db
  app:
    image: busybox
    command: [sleep, "3600"]
    links: ["db:database"]
    external_links: [")" + p + R"(-legacy-db:legacy"]
    dns: [")" + own_loopback(1) + R"("]
  other:
    image: busybox
    command: [sleep, "3600"]
    dns: [")" + own_loopback(1) + R"("]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::string db = address_of(env, "db"), old = address_of(env, "old");
  REQUIRE(!db.empty());
  REQUIRE(!old.empty());
  auto r = exec_until_ok(env, {"app", "nslookup", "database"}, 10s);
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{db}, r.out << r.err);
  r = exec_until_ok(env, {"app", "nslookup", "legacy"});
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{old}, r.out << r.err);
  // Traffic goes there too: the alias is a name like any other.
  CHECK(exec_until_ok(env, {"app", "ping", "-c", "1", "-W", "2", "database"}).code == 0);
  // Another service of the same network does not see the aliases: they go upstream (to this
  // test's resolver, which says NXDOMAIN), and the service names still answer (once they do,
  // its names are registered, and with them its own upstream).
  CHECK(answers_of(exec_until_ok(env, {"other", "nslookup", "db"}, 10s).out) ==
        std::vector<std::string>{db});
  auto other = env.stack({"exec", "other", "nslookup", "database"});
  CHECK_MESSAGE(answers_of(other.out).empty(), other.out);
  CHECK(resolver.queries("database") >= 1);
  CHECK(env.stack({"exec", "other", "nslookup", "legacy"}).code != 0);
  // A restarted daemon re-learns the links from app's record.
  kill_daemon(env);
  r = exec_until_ok(env, {"app", "nslookup", "database"}, 10s);
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{db}, r.out << r.err);
  check_clean(env, p, before);
}

TEST_CASE("dns: each service's other queries go to its own servers, project names stay local") {
  STACK_REQUIRE_ROOT();
  FakeResolver first(own_loopback(2), {{"where.test", "192.0.2.10"}});
  FakeResolver second(own_loopback(3), {{"where.test", "192.0.2.20"}});
  StackEnv env;
  auto p = unique_project("netdnsup");
  env.uses(p);
  auto before = stack_links();
  env.write("name: " + p + R"(
services:
  one:
    image: busybox
    command: [sleep, "3600"]
    dns: [")" + own_loopback(2) + R"("]
  two:
    image: busybox
    command: [sleep, "3600"]
    dns: [")" + own_loopback(3) + R"("]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto r = exec_until_ok(env, {"one", "nslookup", "where.test"});
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{"192.0.2.10"}, r.out << r.err);
  r = exec_until_ok(env, {"two", "nslookup", "where.test"});
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{"192.0.2.20"}, r.out << r.err);
  CHECK(first.queries("where.test") >= 1);
  CHECK(second.queries("where.test") >= 1);
  // The container asks its network's DNS server (the gateway), which answers the project's
  // names itself: the upstreams never hear of them.
  CHECK(env.stack({"exec", "one", "cat", "/etc/resolv.conf"}).out.find("nameserver 10.") !=
        std::string::npos);
  CHECK(answers_of(exec_until_ok(env, {"one", "nslookup", "two"}).out) ==
        std::vector<std::string>{address_of(env, "two")});
  CHECK(first.queries("two") == 0);
  // A restarted daemon knows them from the containers' records: no stack file needed.
  kill_daemon(env);
  int asked = second.queries("where.test");
  r = exec_until_ok(env, {"two", "nslookup", "where.test"}, 10s);
  CHECK_MESSAGE(answers_of(r.out) == std::vector<std::string>{"192.0.2.20"}, r.out << r.err);
  CHECK(second.queries("where.test") > asked);
  check_clean(env, p, before);
}

TEST_CASE("mac_address, interface_name, endpoint driver_opts and gw_priority inside the container") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netmac");
  env.uses(p);
  auto before = stack_links();
  env.write("name: " + p + R"(
services:
  solo:
    image: busybox
    command: [sleep, "3600"]
    mac_address: "02:42:ac:1e:00:05"
    networks: [front]
  multi:
    image: busybox
    command: [sleep, "3600"]
    networks:
      front:
        mac_address: "02:42:ac:1e:00:06"
        interface_name: fronti
      back:
        gw_priority: 10
        driver_opts:
          com.docker.network.endpoint.ifname: backi
          com.docker.network.endpoint.macaddress: "02:42:ac:1e:00:07"
networks:
  front: {}
  back: {}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto cat = [&](const char* service, const std::string& file) {
    return exec_until_ok(env, {service, "cat", file}).out;
  };
  CHECK(cat("solo", "/sys/class/net/eth0/address") == "02:42:ac:1e:00:05\n");
  CHECK(cat("multi", "/sys/class/net/fronti/address") == "02:42:ac:1e:00:06\n");
  CHECK(cat("multi", "/sys/class/net/backi/address") == "02:42:ac:1e:00:07\n");
  CHECK(env.stack({"exec", "multi", "test", "-e", "/sys/class/net/eth0"}).code != 0);
  // The default route goes through back (gw_priority 10), though front comes first.
  auto route = env.stack({"exec", "multi", "ip", "route", "show", "default"});
  CHECK_MESSAGE(route.out.find("dev backi") != std::string::npos, route.out);
  // Frames with the MACs asked for pass the port's anti-spoofing rules: both talk.
  auto ping = exec_until_ok(env, {"solo", "ping", "-c", "1", "-W", "2", "multi"});
  CHECK_MESSAGE(ping.code == 0, ping.out << ping.err);
  auto neigh = env.stack({"exec", "solo", "ip", "neigh"});
  CHECK_MESSAGE(neigh.out.find("02:42:ac:1e:00:06") != std::string::npos, neigh.out);
  check_clean(env, p, before);
}

TEST_CASE("dns, dns_search and dns_opt of a service on the host's network are its resolv.conf") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netdnshost");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  h:
    image: busybox
    command: [sleep, "3600"]
    network_mode: host
    dns: [192.0.2.53, "2001:db8::53"]
    dns_search: [corp.example]
    dns_opt: ["attempts:2"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto resolv = exec_until_ok(env, {"h", "cat", "/etc/resolv.conf"}).out;
  CHECK_MESSAGE(resolv.find("nameserver 192.0.2.53\nnameserver 2001:db8::53\n") != std::string::npos,
                resolv);
  CHECK(resolv.find("search corp.example\n") != std::string::npos);
  CHECK(resolv.find("attempts:2") != std::string::npos);
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
