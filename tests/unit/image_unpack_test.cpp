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
#include <map>
#include <string>
#include <vector>

#include "fs/image_store.h"
#include "fs/layer_unpack.h"
#include "fs/sha256.h"
#include "image_test_tar.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack;
namespace stdfs = std::filesystem;

namespace {

bool empty_dir(const stdfs::path& dir) {
  return stdfs::directory_iterator(dir) == stdfs::directory_iterator();
}

TEST_CASE("image layer entry paths are cleaned and may not climb out") {
  CHECK(fs::clean_entry_path("./a//b/./c/").value() == "a/b/c");
  CHECK(fs::clean_entry_path("/abs/x").value() == "abs/x");
  CHECK(fs::clean_entry_path("./").value() == "");
  CHECK(!fs::clean_entry_path("../evil"));
  CHECK(!fs::clean_entry_path("a/../../evil"));
  CHECK(!fs::clean_entry_path("a/.."));
}

// Everything under DIR but SKIP, with what a change would show: type, size, mode, owner, target.
std::map<std::string, std::string> snapshot(const stdfs::path& dir, const stdfs::path& skip) {
  std::map<std::string, std::string> out;
  for (auto it = stdfs::recursive_directory_iterator(dir);
       it != stdfs::recursive_directory_iterator(); ++it) {
    if (it->path() == skip) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    std::string v = std::to_string(st.st_mode);
    v.append(" ").append(std::to_string(st.st_size)).append(" ").append(std::to_string(st.st_uid));
    v.append(" ").append(std::to_string(st.st_nlink));
    if (S_ISLNK(st.st_mode)) v.append(" -> ").append(stdfs::read_symlink(it->path()).string());
    if (S_ISREG(st.st_mode)) v.append(" ").append(test::read_text(it->path()));
    out[it->path().string()] = v;
  }
  return out;
}

}  // namespace

// Each way a layer could reach outside its directory: refused (a ".." name, a hardlink whose
// target leaves the layer or is not in it) or contained (an absolute name, a symlink an earlier
// entry made, followed as if the layer were "/", as it will be in the container). The files
// around the store are compared before and after: nothing outside the layer changes.
TEST_CASE("image layer unpacking never writes outside the layer") {
  test::TempDir tmp;
  // The store sits deep enough that "../" chains from a layer still land inside TMP.
  fs::ImageStore store(tmp / "a" / "b" / "images");
  const std::string host = tmp.path().string();  // an absolute path outside the layer
  test::write_text(tmp / "secret", "host secret");
  test::write_text(tmp / "victim" / "file", "keep me");
  stdfs::create_directories(tmp / "a");
  const std::string marker = "stack-unpack-test-" + std::to_string(::getpid());
  struct Case {
    const char* what;
    std::vector<test::TarEntry> entries;
    const char* error;   // nullptr: contained, the import succeeds
    const char* inside;  // contained: where the write landed, relative to the layer
  };
  const std::string abs_inside = host.substr(1) + "/" + marker;
  const std::string tmp_inside = "tmp/" + marker;
  const Case cases[] = {
      {"dot-dot entry", {test::tar_file("ok"), test::tar_file("../evil", "x")}, "\"..\"", nullptr},
      {"deep dot-dot entry",
       {test::tar_dir("d/"), test::tar_file("d/../../../../evil2")},
       "\"..\"",
       nullptr},
      {"absolute entry name",
       {test::tar_file(host + "/" + marker, "pwned")},
       nullptr,
       abs_inside.c_str()},
      {"write through a symlink to an absolute directory",
       {test::tar_symlink("etc", host), test::tar_file("etc/" + marker, "pwned")},
       "symlink",
       nullptr},
      {"write through a relative symlink that climbs",
       {test::tar_symlink("up", "../../../../.."), test::tar_file("up/" + marker, "pwned")},
       nullptr,
       marker.c_str()},
      {"write through an absolute symlink to a directory of the layer",
       {test::tar_dir("tmp/"), test::tar_symlink("t", "/tmp"), test::tar_file("t/" + marker, "p")},
       nullptr,
       tmp_inside.c_str()},
      {"a directory entry over a symlink an earlier entry made",  // the directory replaces it
       {test::tar_symlink("d", host + "/victim"), test::tar_dir("d/"),
        test::tar_file("d/file", "pwned")},
       nullptr,
       "d/file"},
      {"whiteout through a symlink",
       {test::tar_symlink("w", host + "/victim"), test::tar_file("w/.wh.file")},
       "symlink",
       nullptr},
      {"symlink chain out",
       {test::tar_symlink("a", "b"), test::tar_symlink("b", "../../../" + marker),
        test::tar_file("a/x", "pwned")},
       "symlink",
       nullptr},
      {"hardlink out of the layer",
       {test::tar_hardlink("h", "../../../../secret")},
       "\"..\"",
       nullptr},
      {"hardlink to an absolute host path",
       {test::tar_hardlink("h", host + "/secret")},
       "hardlink",
       nullptr},
      {"hardlink through a symlink",
       {test::tar_symlink("s", host), test::tar_hardlink("h", "s/secret")},
       "hardlink",
       nullptr},
  };
  for (const auto& c : cases) {
    INFO(std::string(c.what));
    auto before = snapshot(tmp.path(), tmp / "a");
    test::write_tar(tmp / "a" / "evil.tar", c.entries);
    auto r = store.import("evil", tmp / "a" / "evil.tar");
    if (c.error) {
      REQUIRE(!r);
      CHECK(r.error().message.find(c.error) != std::string::npos);
      CHECK(r.error().message.find("layer entry") != std::string::npos);
      CHECK(empty_dir(store.root() / "layers"));  // no half layer left behind
      CHECK(empty_dir(store.root() / "blobs" / "sha256"));
    } else {
      REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
      if (c.inside) CHECK(stdfs::exists(r->layers.back() / c.inside));
    }
    CHECK(snapshot(tmp.path(), tmp / "a") == before);
    CHECK(!stdfs::exists("/etc/" + marker));
    CHECK(!stdfs::exists("/" + marker));
    REQUIRE(store.prune({}, true));
  }
}

TEST_CASE("image layer writes through symlinks land where the container would see them") {
  test::TempDir tmp;
  fs::ImageStore store(tmp / "images");
  test::write_tar(
      tmp / "t.tar",
      {test::tar_dir("usr/"), test::tar_dir("usr/lib/"), test::tar_symlink("lib", "/usr/lib"),
       test::tar_file("lib/libx.so", "x"), test::tar_symlink("up", "../../.."),
       test::tar_file("up/top", "t"), test::tar_file("/abs/file", "a"),
       test::tar_hardlink("hard", "/usr/lib/libx.so")});
  auto img = store.import("t", tmp / "t.tar");
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  const stdfs::path layer = img->layers[0];
  CHECK(test::read_text(layer / "usr/lib/libx.so") == "x");
  CHECK(stdfs::read_symlink(layer / "lib") == "/usr/lib");
  CHECK(test::read_text(layer / "top") == "t");
  CHECK(test::read_text(layer / "abs/file") == "a");
  struct stat a {
  }, b{};
  REQUIRE(::stat((layer / "hard").c_str(), &a) == 0);
  REQUIRE(::stat((layer / "usr/lib/libx.so").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);
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

// umoci 0.4 (Debian's) ends a layer after the last file's data, without its padding or the
// end-of-archive blocks; Go's archive/tar (docker, podman, containerd) reads that as the end.
TEST_CASE("image layer without its final padding and end blocks unpacks, as Go's tar reads it") {
  test::TempDir tmp;
  test::write_tar(tmp / "full.tar", {test::tar_dir("etc/"), test::tar_file("etc/x", "hi\n")});
  std::string full = test::read_text(tmp / "full.tar");
  // Headers of etc/ and etc/x (pax headers too), the three data bytes, and nothing after.
  size_t data = full.find("hi\n");
  REQUIRE(data != std::string::npos);
  test::write_text(tmp / "short.tar", full.substr(0, data + 3));
  fs::ImageStore store(tmp / "images");
  auto img = store.import("short", tmp / "short.tar");
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  CHECK(test::read_text(img->layers[0] / "etc/x") == "hi\n");
  // The diff_id is the digest of the bytes as they are.
  CHECK(img->layers[0].filename() == fs::sha256_file_hex(tmp / "short.tar").value());
  // Cut short a block or more before the data's end is still an error. (Within the last block
  // the missing bytes read as zeros: the padding cannot be told from the data.)
  test::write_tar(tmp / "long.tar", {test::tar_file("big", std::string(5000, 'b'))});
  std::string long_tar = test::read_text(tmp / "long.tar");
  test::write_text(tmp / "cut.tar", long_tar.substr(0, long_tar.find("bbbb") + 3000));
  auto cut = store.import("cut", tmp / "cut.tar");
  REQUIRE(!cut);
  CHECK(cut.error().message.find("layer entry \"big\"") != std::string::npos);
}
