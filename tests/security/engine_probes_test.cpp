// Probes from inside a default container, as an attacker with the service's root would try
// them: devices, masked and read-only kernel paths, the init (PID 1), chroot. Root only; the
// static probe (tests/security/probe.c) is bind-mounted read-only at /probe.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "security/engine_fixture.h"

using namespace stack;
using namespace stack::test;
namespace fs = std::filesystem;

namespace {

engine::ContainerSpec probe_spec(EngineFixture& f, const std::string& name) {
  auto s = f.spec(name, {"sleep", "300"});
  s.mounts.push_back({probe_dir(), "/probe", true});
  return s;
}

}  // namespace

TEST_CASE("a device node of the host's disk made inside cannot be opened, /dev/null can" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto s = probe_spec(f, "devices");
  auto p = f.start(s);
  // A block device of the host that root on the host can read: its root disk, or else (where
  // the machine itself forbids that) a loop device.
  std::string maj, min;
  struct stat root {};
  REQUIRE(::stat("/", &root) == 0);
  for (auto [ma, mi] : {std::pair{major(root.st_dev), minor(root.st_dev)}, std::pair{7u, 0u}}) {
    std::string node = (f.dir() / "hostdev").string();
    ::unlink(node.c_str());
    REQUIRE(::mknod(node.c_str(), S_IFBLK | 0600, makedev(ma, mi)) == 0);
    int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
    ::unlink(node.c_str());
    if (fd < 0) continue;
    ::close(fd);
    maj = std::to_string(ma), min = std::to_string(mi);
    break;
  }
  if (maj.empty()) return report_skip("no block device of this host can be opened, even by root");
  // CAP_MKNOD is in Docker's default set: making the node works...
  auto made = f.exec(p, s, {"/probe/probe", "mknod", "/tmp/rootdisk", maj, min});
  CHECK_MESSAGE(made.code == 0, made.out);
  // ...but the device cgroup refuses to open it.
  auto read = f.exec(p, s, {"/probe/probe", "read", "/tmp/rootdisk"});
  CHECK(read.code == 1);
  CHECK(read.out == "errno=1 Operation not permitted\n");
  CHECK(f.exec(p, s, {"/probe/probe", "read", "/dev/null"}).out == "ok read=0\n");
  CHECK(f.exec(p, s, {"/probe/probe", "read", "/dev/urandom"}).out == "ok read=1\n");
  CHECK(f.exec(p, s, {"sh", "-c", "echo x > /dev/null && echo x > /dev/zero"}).code == 0);
  // The host's devices are not in /dev: only the minimal set.
  auto ls = f.exec(p, s, {"ls", "/dev"});
  CHECK(ls.out.find("vda") == std::string::npos);
  CHECK(ls.out.find("sda") == std::string::npos);
}

TEST_CASE("Docker's masked paths read as empty and its read-only paths refuse writes" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto s = probe_spec(f, "masked");
  auto p = f.start(s);
  for (std::string file : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts",
                           "/proc/latency_stats", "/proc/sched_debug", "/proc/timer_stats"}) {
    if (!fs::exists(file)) continue;  // not in this kernel: nothing to hide
    CAPTURE(file);
    CHECK(f.exec(p, s, {"/probe/probe", "read", file}).out == "ok read=0\n");
  }
  for (std::string dir : {"/proc/acpi", "/proc/scsi", "/sys/firmware",
                          "/sys/devices/virtual/powercap", "/proc/asound"}) {
    if (!fs::exists(dir)) continue;
    CAPTURE(dir);
    auto ls = f.exec(p, s, {"ls", "-A", dir});
    CHECK(ls.code == 0);
    CHECK(ls.out == "");
  }
  for (std::string file :
       {"/proc/sysrq-trigger", "/proc/sys/kernel/core_pattern", "/proc/sys/vm/overcommit_memory",
        "/proc/irq/default_smp_affinity", "/sys/kernel/profiling"}) {
    if (!fs::exists(file)) continue;
    CAPTURE(file);
    auto w = f.exec(p, s, {"/probe/probe", "write", file});
    CHECK(w.code == 1);
    CHECK(w.out.find("Read-only file system") != std::string::npos);
  }
}

TEST_CASE("PID 1 of a container cannot be traced or inspected from inside" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto s = probe_spec(f, "pid1");
  s.process.env.push_back("INIT_SECRET=not-for-you");
  auto p = f.start(s);
  auto trace = f.exec(p, s, {"/probe/probe", "ptrace", "1"});
  CHECK(trace.code == 1);
  CHECK(trace.out == "errno=1 Operation not permitted\n");
  // The fd directory lists numbers (it belongs to root, as the container's root is), but no
  // descriptor of the init can be followed: fd 4 is the container's directory on the host.
  for (int fd = 0; fd < 12; fd++) {
    std::string path = "/proc/1/fd/" + std::to_string(fd);
    CAPTURE(path);
    CHECK(f.exec(p, s, {"readlink", path}).out == "");
    CHECK(f.exec(p, s, {"ls", path + "/"}).code != 0);
    CHECK(f.exec(p, s, {"/probe/probe", "read", path}).code == 1);
  }
  CHECK(f.exec(p, s, {"/probe/probe", "read", "/proc/1/fdinfo/4"}).code == 1);
  CHECK(f.exec(p, s, {"/probe/probe", "read", "/proc/1/environ"}).code == 1);
  CHECK(f.exec(p, s, {"/probe/probe", "read", "/proc/1/mem"}).code == 1);
  // The service itself, as root, may trace its own children but not the init.
  CHECK(f.exec(p, s, {"sh", "-c", "grep -q stack-init /proc/1/comm"}).code == 0);
}

TEST_CASE("the init holds no host descriptor beyond its directory and logs, the service none" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto s = f.spec("fds", {"sleep", "300"});
  auto p = f.start(s);
  auto targets = [](pid_t pid) {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
      std::error_code ec;
      out.push_back(e.path().filename().string() + " " + fs::read_symlink(e.path(), ec).string());
    }
    return out;
  };
  // The init closes the engine's control socket (fd 3) right after its last reply: wait for
  // that (the number is then reused by its epoll descriptor).
  fs::path ctl = "/proc/" + std::to_string(p.pid) + "/fd/3";
  auto is_socket = [&] {
    std::error_code ec;
    return fs::read_symlink(ctl, ec).string().rfind("socket:", 0) == 0;
  };
  for (int i = 0; i < 200 && is_socket(); i++) ::usleep(10000);
  for (const auto& t : targets(p.pid)) {
    CAPTURE(t);
    std::string target = t.substr(t.find(' ') + 1);
    bool ok = target.rfind("pipe:", 0) == 0 || target.rfind("anon_inode:", 0) == 0 ||
              target == s.dir.string() ||
              target.rfind((s.dir / "container.log").string(), 0) == 0 ||
              target == "/dev/null";  // the container's own, reopened after pivot_root
    CHECK(ok);
    CHECK(target.find("socket:") == std::string::npos);  // the engine's control socket is gone
  }
  // Its stdin, stdout and stderr are the container's /dev/null, not a device node of the host.
  auto mnt_id = [](const std::string& fdinfo) {
    auto text = read_text(fdinfo);
    auto pos = text.find("mnt_id:");
    return pos == std::string::npos ? std::string() : text.substr(pos, text.find('\n', pos) - pos);
  };
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::string host_dev = mnt_id("/proc/self/fdinfo/" + std::to_string(null_fd));
  ::close(null_fd);
  for (int fd = 0; fd < 3; fd++)
    CHECK(mnt_id("/proc/" + std::to_string(p.pid) + "/fdinfo/" + std::to_string(fd)) != host_dev);
  // The service: its children of the init in the container's PID namespace.
  std::ifstream children("/proc/" + std::to_string(p.pid) + "/task/" + std::to_string(p.pid) +
                         "/children");
  pid_t service = 0;
  children >> service;
  REQUIRE(service > 0);
  std::set<std::string> fds;
  for (const auto& t : targets(service)) fds.insert(t.substr(0, t.find(' ')));
  CHECK(fds == std::set<std::string>{"0", "1", "2"});
}

TEST_CASE("chroot with an open directory descriptor does not escape the container's root" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  TempDir marker("stack-sec-escape-marker");
  auto s = probe_spec(f, "chroot");
  auto p = f.start(s);
  auto r = f.exec(p, s, {"/probe/probe", "chroot-escape", marker.path().string()});
  CHECK(r.out == "contained\n");
  // The container's "/" has no parent: ".." of the root is the root.
  CHECK(f.exec(p, s, {"sh", "-c", "cd /../../.. && ls /probe"}).out == "probe\n");
}

TEST_CASE("inside a default container mount fails and kernel settings cannot be written" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  auto s = probe_spec(f, "kernel");
  auto p = f.start(s);
  auto m = f.exec(p, s, {"mount", "-t", "tmpfs", "none", "/tmp"});
  CHECK(m.code != 0);
  CHECK_MESSAGE(m.err.find("denied") != std::string::npos, m.err);
  CHECK(f.exec(p, s, {"/probe/probe", "mount", "/tmp"}).code == 1);
  for (std::string file :
       {"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/kernel/panic"}) {
    CAPTURE(file);
    CHECK(f.exec(p, s, {"/probe/probe", "write", file}).code == 1);
  }
  // Masked, or absent from this kernel: either way not one byte of the host's memory.
  CHECK(f.exec(p, s, {"/probe/probe", "read", "/proc/kcore"}).out.find("ok read=1") ==
        std::string::npos);
}
