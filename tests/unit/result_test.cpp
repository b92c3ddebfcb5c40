#include <doctest/doctest.h>

#include "common/files.h"
#include "common/result.h"
#include "support/temp_dir.h"

using namespace stack;

TEST_CASE("an error gains context from each layer") {
  Error e = Error::from_errno("mount overlay", EPERM);
  CHECK(e.sys_errno == EPERM);
  CHECK(e.wrap("start demo-web-1").message ==
        "start demo-web-1: mount overlay: Operation not permitted");
}

TEST_CASE("write_file_atomic replaces content and leaves no temporary file") {
  test::TempDir dir;
  auto path = dir / "state";
  REQUIRE(write_file_atomic(path, "one"));
  REQUIRE(write_file_atomic(path, "two"));
  CHECK(read_file(path).value() == "two");
  CHECK(!std::filesystem::exists(dir / "state.tmp"));
}

TEST_CASE("read_file of a missing file names it") {
  auto r = read_file("/nonexistent/stack-file");
  REQUIRE(!r);
  CHECK(r.error().message.find("/nonexistent/stack-file") != std::string::npos);
  CHECK(r.error().sys_errno == ENOENT);
}
