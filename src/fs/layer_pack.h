// Packing a rootfs directory into a gzip-compressed tar layer. Private to src/fs. Reads the
// directory only; never follows symlinks in it. Same content and mtimes give the same bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/result.h"

namespace stack::fs {

struct PackedBlob {
  std::string digest;  // hex sha256 of the compressed bytes written
  int64_t size = 0;
};

// Writes DIR's tree (not DIR itself) to FD as tar+gzip: entries sorted by name, modes, numeric
// owners, mtimes, symlinks, hardlinks, device nodes and xattrs kept; sockets skipped.
// METER, when given, counts the file bytes read: past its limit, or with the file system
// running low, packing stops with its message. OVERLAY_UPPER: DIR is an overlayfs upper
// directory (a build step's diff): its whiteouts (character devices 0/0) are written as
// ".wh.NAME", its opaque directories (trusted.overlay.opaque=y) get a ".wh..wh..opq", and no
// trusted.overlay.* attribute is kept.
class ImportMeter;
[[nodiscard]] Result<PackedBlob> pack_directory(const std::filesystem::path& dir, int fd,
                                                ImportMeter* meter = nullptr,
                                                bool overlay_upper = false);

}  // namespace stack::fs
