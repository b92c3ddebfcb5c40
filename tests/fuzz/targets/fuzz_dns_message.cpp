// libFuzzer entry point of the dns_message target (tests/fuzz/fuzz_targets.h).
#include <cstddef>
#include <cstdint>

#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  stack::fuzz::dns_message(data, size);
  return 0;
}
