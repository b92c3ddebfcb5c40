// Incremental SHA-256 through OpenSSL's EVP interface, for blob digests and layer diff_ids.
// Private to src/fs. Digests are lower-case hex without the "sha256:" prefix.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

struct evp_md_ctx_st;

namespace stack::fs {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Finishes the hash; the object must not be updated afterwards (until reset).
  [[nodiscard]] std::string hex_digest();
  // Starts again from no data (a download restarted from its first byte).
  void reset();

 private:
  evp_md_ctx_st* ctx_;
};

[[nodiscard]] std::string sha256_hex(std::string_view data);
[[nodiscard]] Result<std::string> sha256_file_hex(const std::filesystem::path& path);
// True for exactly 64 lower-case hex digits.
[[nodiscard]] bool is_sha256_hex(std::string_view s);

}  // namespace stack::fs
