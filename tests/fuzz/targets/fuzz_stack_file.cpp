// libFuzzer entry point of the stack_file target (tests/fuzz/fuzz_targets.h).
#include <cstddef>
#include <cstdint>

#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  stack::fuzz::stack_file(data, size);
  return 0;
}
