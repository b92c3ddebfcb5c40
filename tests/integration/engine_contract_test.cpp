// The engine's start-sequence contract against the real kernel (root): the scenarios of
// tests/support/engine_contract.h, which the unit tests run against the simulated kernel, here
// through the same recording decorators over the real InitLauncher, Processes, ContainerFiles
// and cgroup driver, so the fakes cannot drift from what the kernel and stack-init do. Every
// container, cgroup and directory is removed pass or fail.
#include "support/engine_contract.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/files.h"
#include "engine/container.h"
#include "support/engine_recorder.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::test;
using namespace std::chrono_literals;

namespace {

// Field 4 of /proc/PID/stat: its parent.
pid_t parent_of(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  auto pos = stat->rfind(')');
  if (pos == std::string::npos) return 0;
  return static_cast<pid_t>(std::atoi(stat->c_str() + pos + 4));  // ") S PPID"
}

class RealWorld final : public EngineWorld, public InitKiller {
 public:
  RealWorld() = default;
  ~RealWorld() override {
    // Whatever a failed scenario left running, then every cgroup and directory.
    for (pid_t pid : rec_.launched())
      if (process_exists(pid)) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    for (const auto& s : specs_) (void)cgroups_->remove(s.cgroup);
  }

  engine::Engine& engine() override { return eng_; }
  CallLog& log() override { return rec_.log; }
  const std::vector<pid_t>& launched() override { return rec_.launched(); }
  engine::CgroupDriver& observed_cgroups() override { return *cgroups_; }
  engine::ContainerSpec spec(const std::string& name, std::vector<std::string> argv) override {
    engine::ContainerSpec s;
    s.name = name;
    s.cgroup = "stack/ctest-" + std::to_string(::getpid()) + "/" + name;
    s.dir = dir_ / name;
    s.layers = {busybox_rootfs()};
    s.hostname = name;
    s.hosts = "127.0.0.1\tlocalhost\n";
    s.process.argv = std::move(argv);
    s.process.env = {"PATH=/bin:/usr/bin"};
    s.process.capabilities = engine::default_capabilities();
    rec_.log.alias(s.dir.string(), "DIR");
    rec_.log.alias(s.cgroup, "CG");
    specs_.push_back(s);
    return s;
  }
  std::string break_setup(engine::ContainerSpec& s) override {
    REQUIRE(!std::filesystem::exists("/nonexistent-stack-contract"));
    s.mounts.push_back({"/nonexistent-stack-contract", "/mnt", false});
    return "bind /nonexistent-stack-contract: No such file or directory";
  }
  void missing_command(engine::ContainerSpec& s) override { s.process.argv = {"no-such-program"}; }
  // Every init is our child: one that still exists (running or a zombie) has us as parent.
  bool process_exists(pid_t pid) override { return parent_of(pid) == ::getpid(); }
  void dispose(const engine::ContainerProcess& p, const engine::ContainerSpec& s) override {
    REQUIRE(eng_.stop(p, SIGKILL, 0ms));
    REQUIRE(eng_.remove(s));
  }
  // An init that crashes: killed, and left a zombie for the engine to reap.
  void kill_and_wait(pid_t pid) override {
    ::kill(pid, SIGKILL);
    siginfo_t si{};
    while (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
  }

 private:
  TempDir dir_{"stack-contract"};
  std::unique_ptr<engine::CgroupDriver> cgroups_ = engine::detect_cgroup_driver().value();
  RecordingKernel rec_{engine::KernelSeams::real(), *cgroups_, *this};
  engine::Engine eng_{std::filesystem::path(STACK_BUILD_DIR) / "stack-init", rec_.cgroups(),
                      rec_.seams()};
  std::vector<engine::ContainerSpec> specs_;
};

template <class F>
void in_real_world(F scenario) {
  RealWorld w;
  scenario(w);
}

}  // namespace

TEST_CASE("engine contract: the start sequence against the real kernel" *
          doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  SUBCASE("create then start") { in_real_world(contract_create_then_start); }
  SUBCASE("abandon") { in_real_world(contract_abandon); }
  SUBCASE("destructor") { in_real_world(contract_destructor); }
  SUBCASE("ERROR at setup") { in_real_world(contract_setup_error); }
  SUBCASE("ERROR at start") { in_real_world(contract_start_error); }
  SUBCASE("a failure at each call of create") {
    for (const auto& f : create_failures())
      in_real_world([&](RealWorld& w) { contract_create_failure(w, f); });
  }
  SUBCASE("a failure at each call of start") {
    for (const auto& f : start_failures())
      in_real_world([&](RealWorld& w) { contract_start_failure(w, f); });
  }
}

TEST_CASE("engine contract: a created container's descriptors are its init's" *
          doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  RealWorld w;
  auto inode = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  };
  auto s = w.spec("fds", {"sleep", "60"});
  auto c = w.engine().create(s);
  REQUIRE_MESSAGE(c, error_of(c));
  struct stat st {};
  REQUIRE(::fstat(c->netns_fd(), &st) == 0);
  // The init's own network namespace, not the host's: where a veth is to be born.
  CHECK(st.st_ino == inode("/proc/" + std::to_string(c->pid()) + "/ns/net"));
  CHECK(st.st_ino != inode("/proc/self/ns/net"));
  // The pidfd pins the init (fdinfo names the PID it refers to).
  auto info = read_file("/proc/self/fdinfo/" + std::to_string(c->pidfd())).value_or("");
  CHECK(info.find("Pid:\t" + std::to_string(c->pid()) + "\n") != std::string::npos);

  auto h = w.spec("host-net", {"sleep", "60"});
  h.host_network = true;
  auto ch = w.engine().create(h);
  REQUIRE_MESSAGE(ch, error_of(ch));
  CHECK(ch->netns_fd() == -1);
  CHECK(inode("/proc/" + std::to_string(ch->pid()) + "/ns/net") == inode("/proc/self/ns/net"));
}
