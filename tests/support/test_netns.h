// Network namespaces for tests that need the kernel: a named one ("stk-test-<pid>-<tag>",
// removed on destruction, pass or fail; leftovers of dead test processes are swept), entering
// one on the calling thread, and a background process killed at the end. Root only.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "support/fixtures.h"

namespace stack::test {

// Removes stk-test-<pid>-* namespaces whose test process is gone.
inline void sweep_stale_netns() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    auto name = e.path().filename().string();
    if (!name.starts_with("stk-test-")) continue;
    auto pid = std::atoi(name.c_str() + 9);
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH)
      run({"/usr/sbin/ip", "netns", "del", name});
  }
}

class TestNetns {
 public:
  explicit TestNetns(const std::string& tag)
      : name_("stk-test-" + std::to_string(::getpid()) + "-" + tag) {
    static bool swept = (sweep_stale_netns(), true);
    (void)swept;
    auto r = run({"/usr/sbin/ip", "netns", "add", name_});
    if (r.code != 0) throw std::runtime_error("ip netns add " + name_ + ": " + r.err);
    fd_.reset(::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
    sh("ip link set lo up");
  }
  ~TestNetns() {
    fd_.reset();
    run({"/usr/sbin/ip", "netns", "del", name_});
  }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] int fd() const { return fd_.get(); }
  // ARGV run inside this namespace.
  RunResult exec(std::vector<std::string> argv) const {
    std::vector<std::string> full{"/usr/sbin/ip", "netns", "exec", name_};
    full.insert(full.end(), argv.begin(), argv.end());
    return run(full);
  }
  // A shell command inside this namespace.
  RunResult sh(const std::string& command) const { return exec({"/bin/sh", "-c", command}); }

 private:
  std::string name_;
  UniqueFd fd_;
};

// The calling thread is in NETNS until the end of the scope (setns affects only this thread).
class EnterNetns {
 public:
  explicit EnterNetns(int netns_fd)
      : saved_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) throw std::runtime_error("setns into test namespace");
  }
  ~EnterNetns() {
    if (::setns(saved_.get(), CLONE_NEWNET) != 0) std::abort();  // never leave the test elsewhere
  }
  EnterNetns(const EnterNetns&) = delete;
  EnterNetns& operator=(const EnterNetns&) = delete;

 private:
  UniqueFd saved_;
};

// A long-running command (a server) in a namespace, killed and reaped at the end.
class Background {
 public:
  Background(const TestNetns& ns, std::vector<std::string> argv) {
    std::vector<std::string> full{"/usr/sbin/ip", "netns", "exec", ns.name()};
    full.insert(full.end(), argv.begin(), argv.end());
    std::vector<char*> cargv;
    for (auto& a : full) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::setpgid(0, 0);
      ::execv(cargv[0], cargv.data());
      ::_exit(127);
    }
  }
  ~Background() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

 private:
  pid_t pid_ = -1;
};

}  // namespace stack::test
