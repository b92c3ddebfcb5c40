// The content-addressed image store under <root>/images: OCI image layout (blobs by sha256,
// index.json naming references), layers unpacked once into layers/<diff_id>/ and shared by every
// container made from them. Root on the host; no mounts are made here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace stack::fs {

// The parts of an OCI image config that a container needs.
struct ImageConfig {
  std::vector<std::string> env;  // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
};

struct Image {
  std::string reference;  // "busybox:latest"
  std::string id;         // "sha256:<hex>" of the config blob
  std::string manifest_digest;
  int64_t size = 0;       // bytes of the layer blobs
  int64_t created = 0;    // unix seconds
  ImageConfig config;
  // Unpacked layer directories, lowest first (overlayfs wants them highest first).
  std::vector<std::filesystem::path> layers;
};

// "busybox" -> "busybox:latest"; "reg:5000/a/b:1" stays. Error for an invalid reference.
[[nodiscard]] Result<std::string> normalize_reference(std::string_view ref);

// Bounds of an import (README, "Limits"). An import keeps the file as a blob and unpacks it:
// a 1 GB tarball takes 2 GB or more. It is refused before anything is written when the space
// it needs at least is not free, and stopped, its partial files removed, when it passes its
// size limit or the file system runs low while it unpacks.
inline constexpr uint64_t kDefaultMaxImportBytes = 16ULL << 30;  // the layer, unpacked
inline constexpr uint64_t kImportReserveBytes = 256ULL << 20;    // left free, always

struct ImportOptions {
  uint64_t max_bytes = kDefaultMaxImportBytes;
  uint64_t reserve_bytes = kImportReserveBytes;
  // Called from the importing thread every 16 MiB and at the end of each phase: "copy" (a
  // tarball becomes a blob), "pack" (a directory becomes one), "unpack"; TOTAL is 0 when
  // unknown (a compressed layer's unpacked size).
  std::function<void(std::string_view phase, uint64_t done, uint64_t total)> progress;
  // Bytes free for root on the file system holding a path (statvfs); tests replace it.
  std::function<Result<uint64_t>(const std::filesystem::path&)> free_bytes;
};

class ImageStore {
 public:
  explicit ImageStore(std::filesystem::path root);  // <root> is e.g. /var/lib/stack/images

  // Imports PATH (a rootfs directory, or a tarball: plain, gzip or zstd) as a one-layer image
  // named REFERENCE, replacing an older image of that name. Unpacking is safe against
  // absolute paths, "..", and links pointing out of the layer. Bounded by OPTIONS.
  [[nodiscard]] Result<Image> import(std::string_view reference, const std::filesystem::path& path,
                                     const ImportOptions& options = {});
  [[nodiscard]] Result<Image> get(std::string_view reference) const;
  [[nodiscard]] Result<std::vector<Image>> list() const;
  // Removes the name; blobs and layers no other image uses are deleted.
  [[nodiscard]] Result<void> remove(std::string_view reference);

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

}  // namespace stack::fs
