// The engine against the real kernel: a container from a BusyBox layer, entered with exec,
// stopped, and everything it made removed. Root only.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "common/files.h"
#include "engine/container.h"
#include "engine/logs.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace std::chrono_literals;

namespace {

struct EngineFixture {
  test::TempDir dir{"stack-engine-test"};
  std::unique_ptr<engine::CgroupDriver> cgroups = engine::detect_cgroup_driver().value();
  engine::Engine eng{std::filesystem::path(STACK_BUILD_DIR) / "stack-init", *cgroups};
  std::vector<engine::ContainerProcess> started;
  std::vector<engine::ContainerSpec> specs;

  engine::ContainerSpec spec(const std::string& name, std::vector<std::string> argv) {
    engine::ContainerSpec s;
    s.name = name;
    s.cgroup = "stack/itest-" + std::to_string(::getpid()) + "/" + name;
    s.dir = dir / name;
    s.layers = {test::busybox_rootfs()};
    s.hostname = name;
    s.process.argv = std::move(argv);
    s.process.env = {"PATH=/bin:/usr/bin:/sbin:/usr/sbin", "GREETING=hello"};
    s.process.capabilities = engine::default_capabilities();
    s.hosts = "127.0.0.1 localhost\n";
    return s;
  }
  engine::ContainerProcess start(const engine::ContainerSpec& s) {
    specs.push_back(s);  // removed at the end even when the start fails half-way
    auto c = eng.create(s);
    REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
    auto p = eng.start(std::move(*c));
    REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
    started.push_back(*p);
    return *p;
  }
  // Runs ARGV in the container, capturing its stdout through a temp file.
  std::pair<int, std::string> exec(const engine::ContainerProcess& p, const engine::ContainerSpec& s,
                                   std::vector<std::string> argv) {
    engine::ProcessSpec ps = s.process;
    ps.argv = std::move(argv);
    auto out = dir / "exec.out";
    int saved = ::dup(1);
    FILE* f = std::fopen(out.c_str(), "w");
    std::fflush(stdout);
    ::dup2(::fileno(f), 1);
    auto code = eng.exec(p, s.cgroup, ps);
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    std::fclose(f);
    REQUIRE_MESSAGE(code, (code ? "" : code.error().message));
    return {*code, read_file(out).value_or("")};
  }
  ~EngineFixture() {
    for (auto& p : started) (void)eng.stop(p, SIGKILL, 0ms);
    for (auto& s : specs) (void)eng.remove(s);
  }
};

}  // namespace

TEST_CASE("a container sees only its own processes, hostname and root" *
          doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto s = f.spec("iso", {"sh", "-c", "echo started; exec sleep 60"});
  auto p = f.start(s);
  CHECK(engine::is_alive(p));

  auto [code, ps] = f.exec(p, s, {"ps", "-o", "pid,args"});
  CHECK(code == 0);
  // init (PID 1), the service, and ps itself: nothing of the host.
  std::istringstream lines(ps);
  std::string line;
  int count = 0;
  bool init_is_1 = false;
  while (std::getline(lines, line)) {
    if (line.find("PID") != std::string::npos) continue;
    count++;
    if (line.find("    1 stack-init") == 0 || line.find("1 stack-init") != std::string::npos)
      init_is_1 = true;
  }
  CHECK(count == 3);
  CHECK(init_is_1);
  CHECK(f.exec(p, s, {"hostname"}).second == "iso\n");
  CHECK(f.exec(p, s, {"sh", "-c", "echo $GREETING"}).second == "hello\n");
  CHECK(f.exec(p, s, {"sh", "-c", "exit 7"}).first == 7);

  REQUIRE(f.eng.stop(p, SIGTERM, 5s));
  CHECK(!engine::is_alive(p));
  auto info = f.eng.exit_info(s).value();
  CHECK(info.code == 128 + SIGTERM);
  auto logs = engine::read_logs(s.dir).value();
  REQUIRE(logs.size() >= 1);
  CHECK(logs[0].text == "started");
  CHECK(logs[0].stream == "stdout");
}

TEST_CASE("a file written in one container is seen by neither another nor the image" *
          doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto sa = f.spec("a", {"sleep", "60"});
  auto sb = f.spec("b", {"sleep", "60"});
  auto pa = f.start(sa);
  auto pb = f.start(sb);
  CHECK(f.exec(pa, sa, {"sh", "-c", "echo secret > /root/note"}).first == 0);
  CHECK(f.exec(pa, sa, {"cat", "/root/note"}).second == "secret\n");
  CHECK(f.exec(pb, sb, {"cat", "/root/note"}).first != 0);
  CHECK(!std::filesystem::exists(test::busybox_rootfs() / "root/note"));
  CHECK(std::filesystem::exists(sa.dir / "upper/root/note"));  // it lives in a's own layer
}

TEST_CASE("the service's exit status is recorded by the init" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto s = f.spec("exit3", {"sh", "-c", "echo bye >&2; exit 3"});
  auto p = f.start(s);
  CHECK(f.eng.wait_exit(p, 5s));
  auto info = f.eng.exit_info(s).value();
  CHECK(info.code == 3);
  CHECK(!info.oom_killed);
  auto logs = engine::read_logs(s.dir).value();
  REQUIRE(logs.size() == 1);
  CHECK(logs[0].stream == "stderr");
  CHECK(logs[0].text == "bye");
}

TEST_CASE("a command that does not exist fails the start with a clear error" *
          doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto s = f.spec("nocmd", {"no-such-program"});
  auto c = f.eng.create(s);  // the root is built; the command is looked up when it starts
  REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  auto p = f.eng.start(std::move(*c));
  REQUIRE(!p);
  CHECK(p.error().message.find("exec \"no-such-program\": No such file or directory") !=
        std::string::npos);
  CHECK(!std::filesystem::exists("/sys/fs/cgroup/memory/" + s.cgroup));
  (void)f.eng.remove(s);
}

TEST_CASE("memory over the limit is OOM-killed and reported" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  // busybox has no allocator tool; a shell string doubling in size allocates for real.
  auto s = f.spec("hog", {"sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"});
  s.limits.memory_bytes = 32 << 20;
  auto p = f.start(s);
  CHECK(f.eng.wait_exit(p, 30s));
  auto info = f.eng.exit_info(s).value();
  CHECK(info.oom_killed);
  CHECK(info.code == 137);
}

TEST_CASE("logs rotate at the size cap and keep max files" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto s = f.spec("chatty", {"sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done"});
  s.log_max_size = 16 * 1024;
  s.log_max_files = 3;
  auto p = f.start(s);
  CHECK(f.eng.wait_exit(p, 30s));
  CHECK(std::filesystem::exists(s.dir / "container.log.1"));
  CHECK(std::filesystem::exists(s.dir / "container.log.2"));
  CHECK(!std::filesystem::exists(s.dir / "container.log.3"));
  for (const char* n : {"container.log", "container.log.1", "container.log.2"})
    CHECK(std::filesystem::file_size(s.dir / n) < 16 * 1024 + 100);
  auto logs = engine::read_logs(s.dir).value();
  REQUIRE(!logs.empty());
  CHECK(logs.back().text == "line-2999");
  CHECK(engine::read_logs(s.dir, 2).value().size() == 2);
}
