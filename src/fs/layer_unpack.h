// Safe unpacking of one layer tarball (plain, gzip or zstd) into a directory, converting OCI
// whiteouts to overlayfs form. Private to src/fs. Runs as root on the host, so every path of the
// tarball is resolved inside the layer directory (openat2 RESOLVE_IN_ROOT): an absolute name, a
// symlink (also one an earlier entry made) or a hardlink can never make it write elsewhere.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack::fs {

enum class Compression { none, gzip, zstd };

// "application/vnd.oci.image.layer.v1.tar" with "+gzip" / "+zstd" as fits.
[[nodiscard]] std::string layer_media_type(Compression c);

struct UnpackedLayer {
  std::string diff_id;  // hex sha256 of the uncompressed tar stream
  Compression compression = Compression::none;
  int64_t newest_mtime = 0;  // latest entry mtime, unix seconds; 0 for an empty layer
};

// Unpacks BLOB into TARGET, an existing empty directory. Entry names are taken relative to the
// layer (a leading "/" as tar strips it); a ".." component is refused, naming the entry; every
// other path, a hardlink's target included, resolves inside TARGET: a symlink pointing out is
// followed as if TARGET were "/" (as it will be in the container). Owners, modes, times, xattrs
// (but never trusted.overlay.*), device nodes, symlinks and hardlinks are kept. The caller
// removes TARGET on failure.
// METER, when given, counts the uncompressed tar stream: past its limit, or with the file
// system running low, the unpack stops with its message.
class ImportMeter;
[[nodiscard]] Result<UnpackedLayer> unpack_layer(const std::filesystem::path& blob,
                                                 const std::filesystem::path& target,
                                                 ImportMeter* meter = nullptr);

// A tar entry name as a clean relative path ("" for the layer root): leading "/", empty and "."
// components dropped. Error for "..".
[[nodiscard]] Result<std::string> clean_entry_path(std::string_view name);

}  // namespace stack::fs
