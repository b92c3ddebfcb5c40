// Sealing of the state columns that hold secrets (environment values: the project's
// interpolation environment, each container's runtime record): AES-256-GCM through OpenSSL's
// EVP with a random key in <root>/state.key (0600). Private to src/state: callers of Store see
// plain values. Never logs; a value that does not unseal is an error, never garbage.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack::state {

// Stored form: "sealed:v1:" + base64(nonce[12] || ciphertext || tag[16]). A value without the
// "sealed:" prefix is a plain row written by an older version: it reads as is, and Store::open
// seals it. The prefix names the version so a later format can sit beside this one.
inline constexpr std::string_view kSealedPrefix = "sealed:";

class Sealer {
 public:
  using Key = std::array<std::uint8_t, 32>;
  explicit Sealer(const Key& key) : key_(key) {}

  // The key at PATH; with CREATE, 32 random bytes written there first (0600, atomically: of
  // two processes creating it at once, both end up with the one that was linked first).
  [[nodiscard]] static Result<Sealer> load(const std::filesystem::path& path, bool create);

  // CONTEXT (table, column, row) is authenticated with the value: a sealed value copied to
  // another row or column does not unseal there.
  [[nodiscard]] Result<std::string> seal(std::string_view plain, std::string_view context) const;
  // Plain (unsealed) values come back as they are.
  [[nodiscard]] Result<std::string> unseal(std::string_view stored, std::string_view context) const;
  [[nodiscard]] static bool is_sealed(std::string_view stored) {
    return stored.substr(0, kSealedPrefix.size()) == kSealedPrefix;
  }

 private:
  Key key_;
};

// What the store's sealed values are bound to: table, column and row.
inline std::string project_env_context(std::string_view project) {
  return "projects.environment_json/" + std::string(project);
}
inline std::string runtime_context(std::string_view container) {
  return "containers.runtime_json/" + std::string(container);
}
inline std::string history_context(std::string_view project, std::string_view service,
                                   int number) {
  return "history.runtime_json/" + std::string(project) + "/" + std::string(service) + "/" +
         std::to_string(number);
}

}  // namespace stack::state
