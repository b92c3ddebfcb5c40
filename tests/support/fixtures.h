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

}  // namespace stack::test
