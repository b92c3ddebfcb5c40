// libFuzzer entry point of the api_request target (tests/fuzz/fuzz_targets.h).
#include <cstddef>
#include <cstdint>

#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  stack::fuzz::api_request(data, size);
  return 0;
}
