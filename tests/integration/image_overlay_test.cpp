// Whiteouts and opaque directories as unpacked give the merged view an image means: two layers
// mounted as an overlay (in a mount namespace of a child process, gone with it) and looked at.
// Root: mknod of whiteouts, trusted.* xattrs, mount.
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "fs/image_store.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"
#include "unit/image_test_tar.h"

using namespace stack;
namespace stdfs = std::filesystem;

namespace {

// Every path under the overlay of LOWERS (topmost first), as "path" or "path/" for a directory,
// listed by a child in its own mount namespace; empty when the mount failed.
std::vector<std::string> merged_view(const std::vector<stdfs::path>& lowers,
                                     const stdfs::path& work) {
  stdfs::create_directories(work / "merged");
  std::string option = "lowerdir=";
  for (size_t i = 0; i < lowers.size(); i++) option.append(i ? ":" : "").append(lowers[i].string());
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("overlay", (work / "merged").c_str(), "overlay", MS_RDONLY, option.c_str()) != 0) {
      std::perror("mount overlay");
      ::_exit(1);
    }
    try {
      std::ofstream out(work / "view");
      for (auto it = stdfs::recursive_directory_iterator(work / "merged");
           it != stdfs::recursive_directory_iterator(); ++it)
        out << stdfs::relative(it->path(), work / "merged").string()
            << (it->is_directory() ? "/" : "") << "\n";
    } catch (const std::exception& e) {
      std::fprintf(stderr, "list the overlay: %s\n", e.what());
      ::_exit(1);
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return {};
  std::vector<std::string> view;
  std::ifstream in(work / "view");
  for (std::string line; std::getline(in, line);) view.push_back(line);
  std::sort(view.begin(), view.end());
  return view;
}

}  // namespace

TEST_CASE("whiteouts and opaque directories give the right merged view") {
  STACK_REQUIRE_ROOT();
  test::TempDir tmp("stack-overlay");
  test::write_tar(tmp / "lower.tar",
                  {test::tar_file("a", "a"), test::tar_dir("d/"), test::tar_file("d/x", "x"),
                   test::tar_file("d/y", "y"), test::tar_dir("o/"), test::tar_file("o/1", "1"),
                   test::tar_dir("o/sub/"), test::tar_file("o/sub/2", "2"), test::tar_dir("gone/"),
                   test::tar_file("gone/z", "z"), test::tar_file("keep", "k")});
  test::write_tar(tmp / "upper.tar",
                  {test::tar_file(".wh.a"), test::tar_file("d/.wh.x"), test::tar_dir("o/"),
                   test::tar_file("o/.wh..wh..opq"), test::tar_file("o/new", "n"),
                   test::tar_file(".wh.gone"), test::tar_file("added", "+")},
                  test::TarCompression::gzip);
  fs::ImageStore store(tmp / "images");
  auto lower = store.import("lower", tmp / "lower.tar");
  auto upper = store.import("upper", tmp / "upper.tar");
  REQUIRE_MESSAGE(lower, (lower ? "" : lower.error().message));
  REQUIRE_MESSAGE(upper, (upper ? "" : upper.error().message));

  auto joined = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out.append(s).append(" ");
    return out;
  };
  CHECK(joined(merged_view({upper->layers[0], lower->layers[0]}, tmp.path())) ==
        "added d/ d/y keep o/ o/new ");
  // Without the upper layer (an empty one in its place), everything is there.
  stdfs::create_directories(tmp / "empty");
  CHECK(joined(merged_view({tmp / "empty", lower->layers[0]}, tmp.path())) ==
        "a d/ d/x d/y gone/ gone/z keep o/ o/1 o/sub/ o/sub/2 ");
}
