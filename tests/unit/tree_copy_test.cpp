// `stack cp`'s tar stream and tree copy (src/common/tar.h, tree_copy.h) in temp directories:
// a round trip keeps bytes (all 256 values, NULs), long names, links and modes; docker cp's
// rules for where an archive lands; an archive cannot write outside its destination.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/tree_copy.h"
#include "support/temp_dir.h"

using namespace stack;
namespace fs = std::filesystem;

namespace {

std::string all_bytes() {
  std::string s;
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < 256; i++) s.push_back(static_cast<char>(i));
  return s;
}

std::string pack_to_string(const fs::path& dir, const std::string& source) {
  UniqueFd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string out;
  auto r = copy::pack({root.get(), true}, source, {}, [&](std::string_view b) -> Result<void> {
    out.append(b);
    return {};
  });
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  return out;
}

Result<copy::Unpacked> unpack_string(const fs::path& dir, const std::string& dest,
                                     const std::string& archive, bool contents = false) {
  UniqueFd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  copy::Tree tree{root.get(), true};
  auto where = copy::destination(tree, dest, contents);
  if (!where) return fail(where.error());
  size_t offset = 0;
  tar::Reader reader([&](char* buf, size_t n) -> Result<size_t> {
    size_t k = std::min(n, archive.size() - offset);
    std::memcpy(buf, archive.data() + offset, k);
    offset += k;
    return k;
  });
  return copy::unpack(tree, *where, reader, {});
}

}  // namespace

TEST_CASE("cp tar round trip keeps every byte value, long names, links and modes") {
  test::TempDir src("stack-cp-src"), dst("stack-cp-dst");
  std::string long_name(150, 'n');
  fs::create_directories(src / "app/sub");
  test::write_text(src / "app/bytes.bin", all_bytes());
  test::write_text(src / ("app/sub/" + long_name), "long");
  test::write_text(src / "app/run.sh", "#!/bin/sh\n");
  ::chmod((src / "app/run.sh").c_str(), 0751);
  fs::create_symlink("/etc/passwd", src / "app/link");
  fs::create_hard_link(src / "app/run.sh", src / "app/hard");

  std::string archive = pack_to_string(src.path(), "/app");
  auto r = unpack_string(dst.path(), "/", archive);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(test::read_text(dst / "app/bytes.bin") == all_bytes());
  CHECK(test::read_text(dst / ("app/sub/" + long_name)) == "long");
  CHECK(fs::read_symlink(dst / "app/link") == "/etc/passwd");
  struct stat a {}, b {};
  REQUIRE(::stat((dst / "app/run.sh").c_str(), &a) == 0);
  REQUIRE(::stat((dst / "app/hard").c_str(), &b) == 0);
  CHECK((a.st_mode & 07777) == 0751);
  CHECK(a.st_ino == b.st_ino);
}

TEST_CASE("cp destination follows docker cp: into a directory, renamed, or the contents") {
  test::TempDir src("stack-cp-src"), dst("stack-cp-dst");
  test::write_text(src / "f.txt", "one");
  fs::create_directories(src / "d/in");
  test::write_text(src / "d/in/x", "x");
  fs::create_directories(dst / "existing");

  REQUIRE(unpack_string(dst.path(), "/existing", pack_to_string(src.path(), "/f.txt")));
  CHECK(test::read_text(dst / "existing/f.txt") == "one");
  REQUIRE(unpack_string(dst.path(), "/renamed.txt", pack_to_string(src.path(), "f.txt")));
  CHECK(test::read_text(dst / "renamed.txt") == "one");
  REQUIRE(unpack_string(dst.path(), "/newdir", pack_to_string(src.path(), "/d")));
  CHECK(test::read_text(dst / "newdir/in/x") == "x");
  REQUIRE(unpack_string(dst.path(), "/contents", pack_to_string(src.path(), "/d/."), true));
  CHECK(test::read_text(dst / "contents/in/x") == "x");

  auto missing = unpack_string(dst.path(), "/nope/deeper", pack_to_string(src.path(), "/f.txt"));
  REQUIRE(!missing);
  CHECK(missing.error().message.find("no such directory: /nope") != std::string::npos);
  auto onto_file = unpack_string(dst.path(), "/renamed.txt", pack_to_string(src.path(), "/d"));
  REQUIRE(!onto_file);
  CHECK(onto_file.error().message.find("cannot copy a directory onto the file") !=
        std::string::npos);
}

TEST_CASE("cp never writes outside its destination: planted symlinks and dot-dot names") {
  test::TempDir outside("stack-cp-outside"), dst("stack-cp-dst"), src("stack-cp-src");
  // The destination holds links that point out of it, as a container's root might.
  fs::create_symlink(outside.path(), dst / "abs");
  fs::create_symlink("../../../../../../../../" + outside.path().string(), dst / "rel");
  test::write_text(src / "f", "payload");
  for (const char* dest : {"/abs", "/rel", "/abs/", "/rel/"}) {
    (void)unpack_string(dst.path(), dest, pack_to_string(src.path(), "/f"));
    CHECK(fs::is_empty(outside.path()));
  }
  // An entry through a link the archive itself makes.
  std::string archive;
  tar::Entry link;
  link.kind = tar::Kind::symlink;
  link.name = "hop";
  link.linkname = outside.path().string();
  archive += tar::header(link);
  tar::Entry file;
  file.name = "hop/evil";
  file.size = 4;
  archive += tar::header(file) + "evil" + std::string(tar::padding(4), '\0') + tar::trailer();
  (void)unpack_string(dst.path(), "/", archive, true);
  CHECK(fs::is_empty(outside.path()));

  tar::Entry dots;
  dots.name = "../escape";
  std::string bad = tar::header(dots) + tar::trailer();
  auto r = unpack_string(dst.path(), "/", bad, true);
  REQUIRE(!r);
  CHECK(r.error().message.find("'..'") != std::string::npos);
}

TEST_CASE("cp tar reader refuses a corrupt header and a truncated entry") {
  tar::Entry e;
  e.name = "f";
  e.size = 1000;
  std::string h = tar::header(e);
  std::string corrupt = h;
  corrupt[0] = 'g';
  for (const std::string& archive : {corrupt, h + std::string(100, 'x')}) {
    size_t offset = 0;
    tar::Reader reader([&](char* buf, size_t n) -> Result<size_t> {
      size_t k = std::min(n, archive.size() - offset);
      std::memcpy(buf, archive.data() + offset, k);
      offset += k;
      return k;
    });
    auto first = reader.next();
    bool failed = !first;
    if (first) {
      char buf[2000];
      for (;;) {
        auto n = reader.read(buf, sizeof buf);
        if (!n) {
          failed = true;
          break;
        }
        if (*n == 0) break;
      }
    }
    CHECK(failed);
  }
}
