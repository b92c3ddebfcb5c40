// Layer unpacking through ImageStore::import with hostile tarballs (nothing may land outside the
// layer directory) and OCI whiteouts (converted to overlayfs form; needs root for mknod and
// trusted.* xattrs, skipped otherwise).
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fs/image_store.h"
#include "fs/layer_unpack.h"
#include "image_test_tar.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack;
namespace stdfs = std::filesystem;

namespace {

// Every path under DIR whose file name is NAME.
std::vector<stdfs::path> find_named(const stdfs::path& dir, const std::string& name) {
  std::vector<stdfs::path> out;
  for (auto it = stdfs::recursive_directory_iterator(dir);
       it != stdfs::recursive_directory_iterator(); ++it)
    if (it->path().filename() == name) out.push_back(it->path());
  return out;
}

bool empty_dir(const stdfs::path& dir) {
  return stdfs::directory_iterator(dir) == stdfs::directory_iterator();
}

}  // namespace

TEST_CASE("image layer entry paths are cleaned and may not climb out") {
  CHECK(fs::clean_entry_path("./a//b/./c/").value() == "a/b/c");
  CHECK(fs::clean_entry_path("/abs/x").value() == "abs/x");
  CHECK(fs::clean_entry_path("./").value() == "");
  CHECK(!fs::clean_entry_path("../evil"));
  CHECK(!fs::clean_entry_path("a/../../evil"));
  CHECK(!fs::clean_entry_path("a/.."));
}

TEST_CASE("image layer unpacking never writes outside the layer") {
  test::TempDir tmp;
  // The store sits deep enough that "../" chains from a layer still land inside TMP.
  fs::ImageStore store(tmp / "a" / "b" / "images");
  struct Case {
    const char* what;
    std::vector<test::TarEntry> entries;
    const char* error;  // nullptr: the import succeeds
    const char* marker;
  };
  const std::string host_name = "stack-unpack-test-" + std::to_string(::getpid());
  const Case cases[] = {
      {"dot-dot entry", {test::tar_file("ok"), test::tar_file("../evil", "x")}, "\"..\"", "evil"},
      {"deep dot-dot entry",
       {test::tar_dir("d/"), test::tar_file("d/../../../../evil2")},
       "\"..\"",
       "evil2"},
      {"write through a symlink to an absolute directory",
       {test::tar_symlink("etc", tmp.path().string()), test::tar_file("etc/" + host_name, "pwned")},
       "symlink",
       nullptr},
      {"write through a relative symlink that climbs",
       {test::tar_symlink("up", "../../../../.."), test::tar_file("up/evil3", "pwned")},
       "symlink",
       "evil3"},
      {"hardlink out of the layer",
       {test::tar_hardlink("h", "../../../../secret")},
       "\"..\"",
       nullptr},
      {"hardlink through a symlink",
       {test::tar_symlink("s", tmp.path().string()), test::tar_hardlink("h", "s/secret")},
       "symlink",
       nullptr},
  };
  test::write_text(tmp / "secret", "host secret");
  for (const auto& c : cases) {
    INFO(c.what);
    test::write_tar(tmp / "evil.tar", c.entries);
    auto r = store.import("evil", tmp / "evil.tar");
    REQUIRE(!r);
    CHECK(r.error().message.find(c.error) != std::string::npos);
    CHECK(r.error().message.find("layer entry") != std::string::npos);
    if (c.marker) CHECK(find_named(tmp.path(), c.marker).empty());
    CHECK(find_named(tmp.path(), host_name).empty());
    CHECK(empty_dir(store.root() / "layers"));  // no half layer left behind
    CHECK(empty_dir(store.root() / "blobs" / "sha256"));
  }
  CHECK(!stdfs::exists("/etc/" + host_name));
}

TEST_CASE("image layer file replacing a symlink does not write through it") {
  test::TempDir tmp;
  test::write_text(tmp / "secret", "host secret");
  test::write_tar(tmp / "swap.tar", {test::tar_symlink("t", (tmp / "secret").string()),
                                     test::tar_file("t", "pwned")});
  fs::ImageStore store(tmp / "images");
  auto img = store.import("swap", tmp / "swap.tar");
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  CHECK(stdfs::is_regular_file(stdfs::symlink_status(img->layers[0] / "t")));
  std::ifstream in(tmp / "secret");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(content == "host secret");
}

TEST_CASE("image layer absolute entry names land inside the layer") {
  test::TempDir tmp;
  const std::string name = "stack-abs-test-" + std::to_string(::getpid());
  test::write_tar(tmp / "abs.tar",
                  {test::tar_file("/" + name + "/x", "inside"), test::tar_symlink("link", "/etc")});
  fs::ImageStore store(tmp / "images");
  auto img = store.import("abs", tmp / "abs.tar");
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  CHECK(stdfs::exists(img->layers[0] / name / "x"));
  CHECK(!stdfs::exists("/" + name));
  // A symlink to an absolute path is fine: it resolves inside the container's root later.
  CHECK(stdfs::read_symlink(img->layers[0] / "link") == "/etc");
}

TEST_CASE("image layer whiteouts become overlayfs whiteouts (root only)") {
  if (::geteuid() != 0) {
    test::report_skip("whiteouts need root for mknod and trusted.* xattrs");
    return;
  }
  test::TempDir tmp;
  test::write_tar(tmp / "wh.tar", {
                                      test::tar_dir("d/"),
                                      test::tar_file("d/keep", "k"),
                                      test::tar_file("d/.wh..wh..opq"),
                                      test::tar_file("d/.wh.gone-file"),
                                      test::tar_file(".wh.gone-dir"),
                                      test::tar_file("implied/.wh.x"),
                                  });
  fs::ImageStore store(tmp / "images");
  auto img = store.import("wh", tmp / "wh.tar");
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  stdfs::path layer = img->layers[0];

  for (auto rel : {"d/gone-file", "gone-dir", "implied/x"}) {
    CAPTURE(rel);
    struct stat st {};
    REQUIRE(::lstat((layer / rel).c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK(st.st_rdev == makedev(0, 0));
  }
  char value[8] = {};
  ssize_t n = ::lgetxattr((layer / "d").c_str(), "trusted.overlay.opaque", value, sizeof value);
  REQUIRE(n == 1);
  CHECK(value[0] == 'y');
  CHECK(::lgetxattr(layer.c_str(), "trusted.overlay.opaque", value, sizeof value) < 0);
  CHECK(stdfs::exists(layer / "d" / "keep"));
  for (auto it = stdfs::recursive_directory_iterator(layer);
       it != stdfs::recursive_directory_iterator(); ++it)
    CHECK(!it->path().filename().string().starts_with(".wh."));
}
