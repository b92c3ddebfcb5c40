// Helpers of the network security tests: the probe (tests/security/net_probe.c) mounted into
// containers, host listeners on chosen addresses, and waiting for a line in a container's
// output. Root only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "e2e/network_support.h"

namespace stack::test {

// The volume line that mounts the probe at /probe in a container.
inline std::string probe_volume() {
  return std::string("    volumes: [\"") + STACK_NET_PROBE_DIR + ":/probe:ro\"]\n";
}

// `stack exec SERVICE /probe/net_probe ARGS...`.
inline RunResult probe(StackEnv& env, const std::string& service,
                       std::vector<std::string> args) {
  std::vector<std::string> argv = {"exec", service, "/probe/net_probe"};
  argv.insert(argv.end(), args.begin(), args.end());
  return env.stack(argv);
}

// A socket of TYPE (SOCK_DGRAM or SOCK_STREAM, listening) bound on the host to ADDRESS:PORT
// (0: a free one), closed at the end.
class HostSocket {
 public:
  HostSocket(int type, const std::string& address, uint16_t port = 0) {
    fd_ = ::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    REQUIRE_MESSAGE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0,
                    "bind " << address << ":" << port);
    if (type == SOCK_STREAM) REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~HostSocket() { ::close(fd_); }
  HostSocket(const HostSocket&) = delete;
  HostSocket& operator=(const HostSocket&) = delete;

  uint16_t port() const { return port_; }
  // A datagram received within TIMEOUT, "" if none.
  std::string receive(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "";
    char buf[1500];
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Whether a connection completed its handshake and waits in the accept queue.
  bool has_connection() const {
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return false;
    ::close(c);
    return true;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Waits until SERVICE's output holds TEXT (or TIMEOUT passes); its whole output.
inline std::string wait_output(StackEnv& env, const std::string& service, const std::string& text,
                               std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out;
  do {
    out = env.stack({"logs", service}).out;
    if (out.find(text) != std::string::npos) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  return out;
}

// The MAC address of SERVICE's eth0.
inline std::string mac_of(StackEnv& env, const std::string& service) {
  auto r = env.stack({"exec", service, "cat", "/sys/class/net/eth0/address"});
  return r.out.substr(0, r.out.find('\n'));
}

// The MAC that SERVICE's neighbour table holds for IP ("" if none).
inline std::string neighbour_of(StackEnv& env, const std::string& service, const std::string& ip) {
  auto r = env.stack({"exec", service, "cat", "/proc/net/arp"});
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string addr, hw, flags, mac;
    f >> addr >> hw >> flags >> mac;
    if (addr == ip) return mac;
  }
  return "";
}

}  // namespace stack::test
