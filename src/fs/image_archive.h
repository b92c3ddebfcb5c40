// Images in and out of files: an OCI image layout (a directory, or a tar of one) or a
// `docker save` tarball read into the store, and `image save`'s tar written from it. Private
// to src/fs. Reads whatever a user hands it: every blob is verified against its digest, every
// layer against its diff_id, and a malformed archive is an error naming the entry.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"
#include "fs/image_store.h"
#include "fs/oci_layout.h"
#include "fs/store_internal.h"

namespace stack::fs {

enum class SourceKind { rootfs_dir, rootfs_tar, oci_dir, oci_tar, docker_tar };

// What PATH is: a directory with an oci-layout file is an OCI layout, any other directory a
// rootfs; a tar (plain, gzip or zstd) holding oci-layout or index.json is an OCI archive, one
// holding manifest.json a `docker save` tarball, any other a rootfs tarball.
[[nodiscard]] Result<SourceKind> detect_source(const std::filesystem::path& path);

struct ArchivedImage {
  std::vector<std::string> names;  // canonical references the archive gives it (maybe none)
  Descriptor manifest;             // its manifest blob, config, layer blobs and layers in place
};

// Copies every image of the archive at PATH into the store: blobs verified, layers unpacked
// (under temporary names, renamed when whole). Nothing is named yet: the caller commits.
// An index entry that is itself an index gives its PLATFORM image. KEEP pins what the images
// use until the caller has named them; blobs of the archive no image uses are removed again.
[[nodiscard]] Result<std::vector<ArchivedImage>> read_archive(
    ImageStore::Internal& store, const std::filesystem::path& path, SourceKind kind,
    const ImportOptions& options, const Platform& platform, ImageStore::Internal::Pin& keep);

// Writes IMAGES (each with the names to give it) as a tar to SINK: an OCI image layout (oci-layout,
// index.json with one entry per name, blobs/sha256/...) and docker's manifest.json beside it.
struct SavedImage {
  Image image;
  std::vector<std::string> names;  // canonical
};
[[nodiscard]] Result<void> write_archive(const std::filesystem::path& root,
                                         const std::vector<SavedImage>& images,
                                         const ByteSink& sink, const ImportOptions& options);

}  // namespace stack::fs
