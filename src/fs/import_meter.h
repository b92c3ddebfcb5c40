// The running count of an import against its bounds (ImportOptions): bytes processed in one
// phase, the size limit, the free space the file system must keep, and the progress
// callback. Private to src/fs; used by the copy, the packer and the unpacker.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/result.h"
#include "fs/image_store.h"

namespace stack::fs {

class ImportMeter {
 public:
  // PHASE names the work for progress and messages; ON is a path on the file system written
  // to; TOTAL is the phase's expected size, 0 when unknown.
  ImportMeter(const ImportOptions& options, std::filesystem::path on, std::string phase,
              uint64_t total);
  // Counts N more bytes: an error once past the size limit, or when the file system is
  // found with less than the reserve free (checked every 16 MiB).
  [[nodiscard]] Result<void> add(uint64_t n);
  // The phase is over: a last progress report.
  void done();

 private:
  const ImportOptions& options_;
  std::filesystem::path on_;
  std::string phase_;
  uint64_t total_ = 0, count_ = 0, next_check_ = 0;
};

// Bytes free for root on the file system holding PATH (statvfs f_bfree: the root-reserved
// blocks count, as the daemon writes as root), or what OPTIONS.free_bytes says.
[[nodiscard]] Result<uint64_t> free_bytes(const ImportOptions& options,
                                          const std::filesystem::path& path);

}  // namespace stack::fs
