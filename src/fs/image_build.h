// What image builds (src/build) need from the store: an image's layers with their blobs, a
// build step's overlay upper directory turned into a layer, an image committed from layers and
// a config, the build cache's records (kept by garbage collection), and local archives
// unpacked (ADD). Root on the host; no mounts are made here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fs/image_store.h"

namespace stack::fs {

struct BuildLayer {
  std::string diff_id;     // "sha256:<hex>" of the tar stream
  std::string blob;        // "sha256:<hex>" of the blob as stored (compressed)
  int64_t size = 0;        // of the blob
  std::string media_type;  // of the blob
  int64_t created = 0;     // unix seconds the step that made it ran; 0 for a base image's
};

// An image as a build goes: its layers and config.
struct ImageRecipe {
  std::vector<BuildLayer> layers;  // lowest first
  ImageConfig config;
  std::vector<std::string> shell;  // SHELL; empty: ["/bin/sh", "-c"]
  std::string os = "linux", architecture = "amd64", variant;
  int64_t created = 0;                // unix seconds
  std::vector<std::string> history;   // created_by of each step ("RUN make")
};

// The unpacked directory of LAYER in STORE.
[[nodiscard]] std::filesystem::path layer_path(const ImageStore& store, const BuildLayer& layer);

// The recipe of the image REFERENCE names (its manifest's layer descriptors and its config).
[[nodiscard]] Result<ImageRecipe> image_recipe(const ImageStore& store, std::string_view reference);

// UPPER (an overlayfs upper directory, left as it is) packed as a layer: its blob in the store
// and the layer unpacked, whiteouts as overlayfs wants them.
[[nodiscard]] Result<BuildLayer> add_upper_layer(ImageStore& store,
                                                 const std::filesystem::path& upper);

// RECIPE's config and manifest written, the image named by each of REFERENCES (none: untagged).
// A name's previous image stays, untagged.
[[nodiscard]] Result<Image> commit_image(ImageStore& store, const ImageRecipe& recipe,
                                         const std::vector<std::string>& references);

// The build cache: KEY (hex) -> the layer a step made. Records live under <store>/build-cache;
// garbage collection keeps what they name. A record whose layer is gone reads as a miss.
[[nodiscard]] Result<std::optional<BuildLayer>> cache_lookup(const ImageStore& store,
                                                             std::string_view key);
[[nodiscard]] Result<void> cache_record(ImageStore& store, std::string_view key,
                                        const BuildLayer& layer);
// Forgets every record (`builder prune`): the next image prune reclaims what only they kept.
// Returns how many there were.
[[nodiscard]] Result<int> clear_build_cache(ImageStore& store);

// FILE unpacked into DEST (an existing, empty directory) when it is a tar archive (plain,
// gzip, bzip2, xz or zstd), entries contained in DEST. False, and nothing written, when it is
// not an archive.
[[nodiscard]] Result<bool> unpack_if_archive(const std::filesystem::path& file,
                                             const std::filesystem::path& dest);

}  // namespace stack::fs
