// Replays every file of tests/fuzz/corpus/<target>/ through its fuzz target (built here with
// g++, without libFuzzer): the seeds and each crash the fuzzers found stay fixed. A crash is a
// crashed test; under the sanitizer build (STACK_SANITIZE) a memory error is one too.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz_targets.h"

namespace {

namespace fs = std::filesystem;

size_t replay(const std::string& target, void (*fn)(const std::uint8_t*, std::size_t)) {
  size_t n = 0;
  for (const auto& e :
       fs::directory_iterator(fs::path(STACK_SOURCE_DIR) / "tests/fuzz/corpus" / target)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CAPTURE(e.path().string());
    fn(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("fuzz corpus: api_request inputs replay without a crash") {
  CHECK(replay("api_request", stack::fuzz::api_request) > 0);
}

TEST_CASE("fuzz corpus: dns_message inputs replay without a crash") {
  CHECK(replay("dns_message", stack::fuzz::dns_message) > 0);
}

TEST_CASE("fuzz corpus: stack_file inputs replay without a crash") {
  CHECK(replay("stack_file", stack::fuzz::stack_file) > 0);
}
