// Issue 10 item 10: an import is bounded. Over its size limit (a large file, a large tree, a
// small gzip that unpacks big) or without the space it needs it is refused or stopped, with a
// message naming what it needs and what is free, and leaves nothing behind; progress is
// reported as it goes. Free space is a fake here: the store asks ImportOptions::free_bytes.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "fs/image_store.h"
#include "image_test_tar.h"
#include "support/temp_dir.h"

using namespace stack;
namespace stdfs = std::filesystem;

namespace {

constexpr uint64_t MiB = 1 << 20;

// Nothing but the store's own directories and lock: no blob, layer or temporary file.
std::vector<std::string> leftovers(const stdfs::path& images) {
  std::vector<std::string> out;
  for (const char* d : {"blobs/sha256", "layers"})
    for (const auto& e : stdfs::directory_iterator(images / d)) out.push_back(e.path().string());
  return out;
}

fs::ImportOptions with_free(uint64_t free, uint64_t reserve) {
  fs::ImportOptions o;
  o.reserve_bytes = reserve;
  o.free_bytes = [free](const stdfs::path&) -> Result<uint64_t> { return free; };
  return o;
}

}  // namespace

TEST_CASE("import: a file or a tree over the size limit is refused before anything is written") {
  test::TempDir tmp("stack-import-limits");
  fs::ImageStore store(tmp / "images");
  test::write_tar(tmp / "big.tar", {test::tar_file("blob", std::string(2 * MiB, 'x'))});
  fs::ImportOptions o;
  o.max_bytes = MiB;
  auto r = store.import("big", tmp / "big.tar", o);
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "import big:latest from " + (tmp / "big.tar").string() +
                                 ": the file is 2.0 MiB, larger than the import limit of 1 MiB");
  CHECK(leftovers(tmp / "images").empty());

  test::write_text(tmp / "tree/a", std::string(MiB, 'a'));
  test::write_text(tmp / "tree/b/c", std::string(MiB, 'c'));
  r = store.import("tree", tmp / "tree", o);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("the files are larger than the import limit of 1 MiB") !=
        std::string::npos);
  CHECK(leftovers(tmp / "images").empty());
  o.max_bytes = 4 * MiB;
  CHECK(store.import("tree", tmp / "tree", o));  // the same, under a limit raised for it
}

TEST_CASE("import: a small gzip that unpacks past the limit is stopped at the limit") {
  test::TempDir tmp("stack-import-limits");
  fs::ImageStore store(tmp / "images");
  test::write_tar(tmp / "bomb.tar.gz", {test::tar_file("zeros", std::string(32 * MiB, '\0'))},
                  test::TarCompression::gzip);
  REQUIRE(stdfs::file_size(tmp / "bomb.tar.gz") < MiB);
  fs::ImportOptions o;
  o.max_bytes = 8 * MiB;
  auto r = store.import("bomb", tmp / "bomb.tar.gz", o);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("the image is larger than the import limit of 8 MiB (unpack "
                               "stopped at") != std::string::npos);
  CHECK(leftovers(tmp / "images").empty());
}

TEST_CASE("import: refused when the space it needs is not free, naming need and free") {
  test::TempDir tmp("stack-import-limits");
  fs::ImageStore store(tmp / "images");
  test::write_tar(tmp / "app.tar", {test::tar_file("data", std::string(3 * MiB, 'd'))});
  const uint64_t size = stdfs::file_size(tmp / "app.tar");
  // Twice the file (blob and unpacked) and the reserve: one byte short.
  auto r = store.import("app", tmp / "app.tar", with_free(2 * size + 8 * MiB - 1, 8 * MiB));
  REQUIRE_FALSE(r);
  CAPTURE(r.error().message);
  CHECK(r.error().message.find("not enough space in " + (tmp / "images").string() +
                               ": the import needs at least 6.0 MiB (the 3.0 MiB file, kept as "
                               "a blob and unpacked), 14.0 MiB is free and 8 MiB must stay "
                               "free") != std::string::npos);
  CHECK(leftovers(tmp / "images").empty());
  CHECK(store.import("app", tmp / "app.tar", with_free(2 * size + 8 * MiB, 8 * MiB)));
}

TEST_CASE("import: stopped when the file system runs low while unpacking, leaving nothing") {
  test::TempDir tmp("stack-import-limits");
  fs::ImageStore store(tmp / "images");
  test::write_tar(tmp / "big.tar.gz", {test::tar_file("zeros", std::string(40 * MiB, '\0'))},
                  test::TarCompression::gzip);
  fs::ImportOptions o;
  o.reserve_bytes = 64 * MiB;
  int calls = 0;
  // Plenty at the start; then another writer fills the disk.
  o.free_bytes = [&calls](const stdfs::path&) -> Result<uint64_t> {
    return ++calls == 1 ? uint64_t{1} << 40 : 10 * MiB;
  };
  auto r = store.import("big", tmp / "big.tar.gz", o);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("is almost full (10 MiB free, 64 MiB must stay free): unpack "
                               "stopped after 16 MiB") != std::string::npos);
  CHECK(leftovers(tmp / "images").empty());
}

TEST_CASE("import: progress is reported by phase, ending with the whole size") {
  test::TempDir tmp("stack-import-limits");
  fs::ImageStore store(tmp / "images");
  test::write_tar(tmp / "big.tar", {test::tar_file("data", std::string(40 * MiB, 'p'))});
  std::vector<std::string> seen;
  fs::ImportOptions o;
  o.progress = [&seen](std::string_view phase, uint64_t done, uint64_t total) {
    seen.push_back(std::string(phase) + " " + std::to_string(done / MiB) + "/" +
                   std::to_string(total / MiB));
  };
  REQUIRE(store.import("big", tmp / "big.tar", o));
  REQUIRE(seen.size() >= 4);
  CHECK(seen.front() == "copy 16/40");
  CHECK(std::find(seen.begin(), seen.end(), "copy 40/40") != seen.end());
  CHECK(seen.back().rfind("unpack 40/40", 0) == 0);
}
