// Small file helpers that return Result instead of throwing (std::filesystem's throwing
// overloads are not used across module boundaries).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack {

[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& path);
// As read_file, but refuses a file larger than MAX_BYTES (error: "PATH is larger than the
// limit of N bytes for WHAT") without reading more than MAX_BYTES + 1 of it: a FIFO or a
// device (-f /dev/zero) ends too.
[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& path, size_t max_bytes,
                                            std::string_view what);
// "16 MiB", "512 KiB", "300 bytes": a size for messages.
[[nodiscard]] std::string format_size(uint64_t bytes);
// Writes through a temporary file and rename(2), so readers never see a half-written file.
[[nodiscard]] Result<void> write_file_atomic(const std::filesystem::path& path,
                                             std::string_view content, unsigned mode = 0644);
[[nodiscard]] Result<void> write_file(const std::filesystem::path& path, std::string_view content);
[[nodiscard]] Result<void> make_dirs(const std::filesystem::path& path, unsigned mode = 0755);
// Removes a tree; a missing path is not an error. Never enters another mount (statx mount ids,
// so a bind mount of the same file system counts): a directory still mounted below PATH (a
// bind mount left behind by a crash) keeps its files, and the error names it; PATH itself a
// mount point is refused. Symlinks are removed, never followed.
[[nodiscard]] Result<void> remove_tree(const std::filesystem::path& path);

}  // namespace stack
