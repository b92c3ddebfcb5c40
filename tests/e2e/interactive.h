// Driving the `stack` CLI interactively in e2e tests: a process with pipes for its stdio, or
// a shell script under script(1) so that the CLI has a terminal (exec -it, attach).
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "e2e/stack_env.h"

namespace stack::test {

using namespace std::chrono_literals;

// A process with a pipe on its stdin and one for its stdout and stderr together, driven step
// by step: wait for some output, send bytes, wait for the end. Killed if still running at the
// end of the test.
class Interactive {
 public:
  explicit Interactive(const std::vector<std::string>& argv) {
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~Interactive() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(in_);
    ::close(out_);
  }
  // Reads until TEXT has appeared in the output (true) or TIMEOUT passed or output ended.
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(text) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) return false;
    }
    return true;
  }
  void send(const std::string& bytes) {
    REQUIRE(::write(in_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }
  // Its exit code once it has ended (its output read to the end), -1 after TIMEOUT.
  int wait(std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline && read_some(100)) {
    }
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::string& output() const { return output_; }
  void signal(int sig) { REQUIRE(::kill(pid_, sig) == 0); }
  void kill_now() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  // False once the output has ended.
  bool read_some(int timeout_ms) {
    pollfd pfd{out_, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) <= 0) return true;
    char buf[4096];
    ssize_t n = ::read(out_, buf, sizeof buf);
    if (n <= 0) return false;
    output_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string output_;
};

// `stack` with ENV's roots, as a shell word list.
inline std::string stack_words(StackEnv& env) {
  return std::string(STACK_BUILD_DIR) + "/stack --root " + env.root().string() + " --run-root " +
         (env.root().parent_path() / "run").string();
}

// Runs SCRIPT (sh) under script(1): its stdin, stdout and stderr are a terminal. The script
// starts in the project directory.
inline Interactive on_terminal(StackEnv& env, const std::string& name, const std::string& script) {
  std::filesystem::path file = env.project_dir() / (name + ".sh");
  write_text(file,
             "cd " + env.project_dir().string() + "\nS='" + stack_words(env) + "'\n" + script);
  return Interactive({"/usr/bin/script", "-qec", "/bin/sh " + file.string(), "/dev/null"});
}

}  // namespace stack::test
