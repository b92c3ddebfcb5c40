// Containers started through the engine itself (no daemon), for the security probes that need
// what a stack file cannot express (a NUL in an environment value) or a precise look at one
// container. Root only. Every container, cgroup and directory is removed pass or fail.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/files.h"
#include "engine/container.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace stack::test {

struct ExecResult {
  int code = -1;
  std::string out, err;
};

class EngineFixture {
 public:
  explicit EngineFixture(const std::string& prefix = "stack-engine-sec") : dir_(prefix) {}
  ~EngineFixture() {
    using namespace std::chrono_literals;
    for (auto& p : started_) (void)eng_.stop(p, SIGKILL, 0ms);
    for (auto& s : specs_) (void)eng_.remove(s);
  }

  // A BusyBox container running ARGV with Docker's defaults.
  engine::ContainerSpec spec(const std::string& name, std::vector<std::string> argv) {
    engine::ContainerSpec s;
    s.name = name;
    s.cgroup = "stack/esec-" + std::to_string(::getpid()) + "/" + name;
    s.dir = dir_ / name;
    s.layers = {busybox_rootfs()};
    s.hostname = name;
    s.process.argv = std::move(argv);
    s.process.env = {"PATH=/bin:/usr/bin:/sbin:/usr/sbin"};
    s.process.capabilities = engine::default_capabilities();
    s.hosts = "127.0.0.1 localhost\n";
    specs_.push_back(s);  // removed at the end even when the start fails half-way
    return s;
  }
  Result<engine::ContainerProcess> try_start(const engine::ContainerSpec& s) {
    auto c = eng_.create(s);
    if (!c) return fail(c.error());
    auto p = eng_.start(std::move(*c));
    if (p) started_.push_back(*p);
    return p;
  }
  engine::ContainerProcess start(const engine::ContainerSpec& s) {
    auto p = try_start(s);
    REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
    return *p;
  }
  // Runs ARGV in the container as the service's process would run (same user, capabilities,
  // security settings), capturing stdout and stderr.
  ExecResult exec(const engine::ContainerProcess& p, const engine::ContainerSpec& s,
                  std::vector<std::string> argv) {
    engine::ProcessSpec ps = s.process;
    ps.argv = std::move(argv);
    return exec_process(p, s, ps);
  }
  ExecResult exec_process(const engine::ContainerProcess& p, const engine::ContainerSpec& s,
                          const engine::ProcessSpec& ps) {
    auto out = dir_ / "exec.out", err = dir_ / "exec.err";
    int o = ::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int e = ::open(err.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    auto h = eng_.spawn(p, s.cgroup, ps, {in, o, e});
    ::close(o);
    ::close(e);
    ::close(in);
    ExecResult r;
    if (!h) {
      r.err = h.error().message;
      return r;
    }
    int status = 0;
    while (::waitpid(h->pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_file(out).value_or("");
    r.err = read_file(err).value_or("");
    return r;
  }

  engine::Engine& engine() { return eng_; }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::unique_ptr<engine::CgroupDriver> cgroups_ = engine::detect_cgroup_driver().value();
  engine::Engine eng_{std::filesystem::path(STACK_BUILD_DIR) / "stack-init", *cgroups_};
  std::vector<engine::ContainerProcess> started_;
  std::vector<engine::ContainerSpec> specs_;
};

// The directory holding the static `probe` program (tests/security/probe.c), to bind-mount
// read-only at /probe in a container.
inline std::filesystem::path probe_dir() {
  return std::filesystem::path(STACK_BUILD_DIR) / "test-fixtures/probe";
}

// The value of FIELD ("CapEff") in /proc/.../status text.
inline std::string status_field(const std::string& status, const std::string& field) {
  auto pos = status.find(field + ":");
  if (pos == std::string::npos) return "";
  pos += field.size() + 1;
  while (pos < status.size() && (status[pos] == ' ' || status[pos] == '\t')) pos++;
  return status.substr(pos, status.find('\n', pos) - pos);
}

}  // namespace stack::test
