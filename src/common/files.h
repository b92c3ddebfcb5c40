// Small file helpers that return Result instead of throwing (std::filesystem's throwing
// overloads are not used across module boundaries).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack {

[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& path);
// Writes through a temporary file and rename(2), so readers never see a half-written file.
[[nodiscard]] Result<void> write_file_atomic(const std::filesystem::path& path,
                                             std::string_view content, unsigned mode = 0644);
[[nodiscard]] Result<void> write_file(const std::filesystem::path& path, std::string_view content);
[[nodiscard]] Result<void> make_dirs(const std::filesystem::path& path, unsigned mode = 0755);
// Removes a tree; a missing path is not an error. Never crosses into other mounts.
[[nodiscard]] Result<void> remove_tree(const std::filesystem::path& path);

}  // namespace stack
