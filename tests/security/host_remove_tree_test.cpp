// remove_tree (src/common/files.h) deletes containers', volumes' and layers' directories. It
// used std::filesystem::remove_all, which walks into mounts: a bind mount left mounted below a
// container's directory (a crash between mount and unmount) had the HOST's bound files deleted
// through it. It now stops at any other mount (by mount id: a bind mount of the same file
// system has the same st_dev) and names it. Root (bind mounts).
#include <doctest/doctest.h>
#include <sys/mount.h>

#include "common/files.h"
#include "common/scope_guard.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack::test;
namespace fs = std::filesystem;

TEST_CASE("removing a tree with a bind mount left below it keeps the bound host files") {
  STACK_REQUIRE_ROOT();
  TempDir tmp("stack-sec-rmtree");
  const fs::path source = tmp / "host-data", tree = tmp / "container";
  fs::create_directories(source / "sub");
  write_text(source / "precious", "host file\n");
  write_text(source / "sub/also", "host file\n");
  fs::create_directories(tree / "rootfs/mnt/data");
  write_text(tree / "log", "x\n");
  const fs::path target = tree / "rootfs/mnt/data";
  // The same file system (both under TMP): only the mount id tells the mount apart.
  REQUIRE(::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) == 0);
  bool mounted = true;
  stack::ScopeGuard unmount([&] {
    if (mounted) ::umount2(target.c_str(), MNT_DETACH);
  });

  auto r = stack::remove_tree(tree);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("stopped at " + target.string()) != std::string::npos);
  CHECK(read_text(source / "precious") == "host file\n");
  CHECK(read_text(source / "sub/also") == "host file\n");
  CHECK_FALSE(fs::exists(tree / "log"));  // what is not under the mount went

  // A tree that is itself a mount point is refused whole.
  auto whole = stack::remove_tree(target);
  REQUIRE_FALSE(whole);
  CHECK(whole.error().message.find("mount point") != std::string::npos);
  CHECK(fs::exists(source / "precious"));

  // Once unmounted, the rest goes, and the host's files stay.
  REQUIRE(::umount2(target.c_str(), 0) == 0);
  mounted = false;
  CHECK(stack::remove_tree(tree));
  CHECK_FALSE(fs::exists(tree));
  CHECK(fs::exists(source / "precious"));
}
