// One etcd member on free loopback ports with its data in a temp dir, for the e2e node tests:
// unlike support/etcd_fixture.h's members it can be stopped and started again on the same data
// (a lost etcd that comes back). Removed at the end pass or fail. available() is false without
// Debian's etcd.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace stack::test {

class RestartableEtcd {
 public:
  static constexpr const char* kEtcd = "/usr/bin/etcd";
  static constexpr const char* kEtcdctl = "/usr/bin/etcdctl";

  RestartableEtcd() : client_(free_port()), peer_(free_port()) {
    if (available()) start();
  }
  ~RestartableEtcd() { stop(); }
  RestartableEtcd(const RestartableEtcd&) = delete;
  RestartableEtcd& operator=(const RestartableEtcd&) = delete;

  [[nodiscard]] static bool available() {
    return ::access(kEtcd, X_OK) == 0 && ::access(kEtcdctl, X_OK) == 0;
  }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(client_); }

  // Starts it (on the same data as before) and waits until it is healthy.
  void start() {
    std::string peer = "http://127.0.0.1:" + std::to_string(peer_);
    std::vector<std::string> argv = {kEtcd, "--name", "m", "--data-dir", (dir_ / "data").string(),
                                     "--listen-client-urls", url(), "--advertise-client-urls",
                                     url(), "--listen-peer-urls", peer,
                                     "--initial-advertise-peer-urls", peer, "--initial-cluster",
                                     "m=" + peer};
    std::string log = (dir_ / "etcd.log").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_RDONLY);
      int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(null, 0), ::dup2(out, 1), ::dup2(out, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(kEtcd, args.data());
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (run({kEtcdctl, "--endpoints", url(), "--dial-timeout", "1s", "endpoint", "health"}).code ==
          0)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("etcd did not become healthy at " << url());
  }

  // RECIPES: a lone member stops on SIGTERM; SIGKILL after a grace time all the same.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; i++) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // KEY's value as etcdctl reads it ("" when missing).
  std::string get(const std::string& key) const {
    auto r = run({kEtcdctl, "--endpoints", url(), "get", key, "--print-value-only"});
    std::string v = r.out;
    while (!v.empty() && v.back() == '\n') v.pop_back();
    return v;
  }

 private:
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }

  TempDir dir_{"stack-e2e-etcd"};
  int client_, peer_;
  pid_t pid_ = -1;
};

}  // namespace stack::test
