// SHA-256 (FIPS 180-4) of small in-memory texts, with no library: the CLI hashes service
// configurations (spec's config_hash) and must not map libcrypto for it. Image blobs are
// hashed by src/fs through OpenSSL, which is faster on large inputs.
#pragma once

#include <string>
#include <string_view>

namespace stack {

// Lower-case hex digest of DATA.
std::string sha256_hex(std::string_view data);

}  // namespace stack
