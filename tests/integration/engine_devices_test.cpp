// The cgroup2 device program for real: attached to a cgroup of the unified tree (on this
// hybrid host no v1 devices rule is involved), a process in it may use /dev/null but not open
// a block device, and may still mknod. Root only.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "engine/cgroup.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack;
namespace fs = std::filesystem;

namespace {

// The cgroup2 mount of this host: the unified tree of a hybrid host, or the root of a v2 one.
fs::path cgroup2_root() {
  for (const char* p : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    struct statfs st {};
    if (::statfs(p, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) return p;
  }
  return {};
}

}  // namespace

TEST_CASE("a cgroup2 device program denies a block device and allows /dev/null and mknod" *
          doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  fs::path root = cgroup2_root();
  if (root.empty()) return test::report_skip("no cgroup2 mount on this host");
  test::TempDir tmp("stack-devfilter");
  fs::path cg = root / ("stack-devtest-" + std::to_string(::getpid()));
  REQUIRE(::mkdir(cg.c_str(), 0755) == 0);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; i++) ::usleep(10000);
    }
  } cleanup{cg};
  auto filter = engine::make_bpf_device_filter();
  auto attached = filter->attach(cg, engine::default_device_rules());
  REQUIRE_MESSAGE(attached, (attached ? "" : attached.error().message));

  // A block device root on the host can open (a loop device), made in the temp dir.
  fs::path node = tmp / "loop0";
  REQUIRE(::mknod(node.c_str(), S_IFBLK | 0600, makedev(7, 0)) == 0);
  int probe = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
  if (probe < 0) return test::report_skip("this host forbids opening a loop device even to root");
  ::close(probe);

  int go[2], out[2];
  REQUIRE(::pipe(go) == 0);
  REQUIRE(::pipe(out) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(2);  // until it is in the cgroup
    int results[3];
    int fd = ::open(node.c_str(), O_RDONLY);
    results[0] = fd < 0 ? errno : 0;
    fd = ::open("/dev/null", O_RDWR);
    results[1] = fd < 0 ? errno : 0;
    std::string made = (tmp / "made").string();
    results[2] = ::mknod(made.c_str(), S_IFCHR | 0600, makedev(1, 3)) != 0 ? errno : 0;
    ssize_t w = ::write(out[1], results, sizeof results);
    ::_exit(w == sizeof results ? 0 : 3);
  }
  std::ofstream(cg / "cgroup.procs") << child;
  REQUIRE(::write(go[1], "g", 1) == 1);
  int results[3] = {-1, -1, -1};
  CHECK(::read(out[0], results, sizeof results) == sizeof results);
  int status = 0;
  ::waitpid(child, &status, 0);
  for (int fd : {go[0], go[1], out[0], out[1]}) ::close(fd);
  CHECK(results[0] == EPERM);  // the block device: denied by the program
  CHECK(results[1] == 0);      // /dev/null: allowed
  CHECK(results[2] == 0);      // mknod: allowed ("c *:* m")
}
