// Fixtures shared by the integration and e2e tests: a BusyBox root filesystem built once per
// build tree, and running a command to capture its output.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace stack::test {

// <build>/test-fixtures/busybox, made by scripts/make-busybox-rootfs.sh on first use.
const std::filesystem::path& busybox_rootfs();

struct RunResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs ARGV (no shell), with extra ENV entries, capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              const std::string& stdin_text = "");

bool is_root();

// Prints "SKIPPED: REASON": CTest reports such a test as skipped (SKIP_REGULAR_EXPRESSION in
// tests/CMakeLists.txt), never as passed.
void report_skip(const std::string& reason);


}  // namespace stack::test

// The first line of a test that needs root: without it the test is reported skipped, with why.
#define STACK_REQUIRE_ROOT()                                                              \
  do {                                                                                    \
    if (!::stack::test::is_root()) {                                                      \
      ::stack::test::report_skip("needs root (namespaces, mounts, cgroups, netlink)");    \
      return;                                                                             \
    }                                                                                     \
  } while (0)

