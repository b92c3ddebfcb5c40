// The content-addressed image store under <root>/images: an OCI image layout (blobs by sha256,
// verified as they are written; index.json naming references), layers unpacked once into
// layers/<diff_id>/ and shared by every image and container made from them. The public face of
// src/fs for images (registry pulls: fs/pull.h). Root on the host; no mounts are made here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "fs/reference.h"

namespace stack::fs {

// An image's HEALTHCHECK, as its config carries it (durations in nanoseconds; 0: not set).
struct HealthConfig {
  std::vector<std::string> test;  // ["CMD", ...], ["CMD-SHELL", "..."], ["NONE"]
  int64_t interval_ns = 0;
  int64_t timeout_ns = 0;
  int64_t start_period_ns = 0;
  int64_t start_interval_ns = 0;
  int retries = 0;
};

// The parts of an OCI image config that a container needs: the defaults a service overrides.
struct ImageConfig {
  std::vector<std::string> env;  // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
  std::vector<std::string> exposed_ports;  // "80/tcp", sorted
  std::vector<std::string> volumes;        // "/data": anonymous volumes (issue 13), sorted
  std::optional<HealthConfig> healthcheck;
  std::map<std::string, std::string> labels;
};

struct Image {
  std::string reference;          // canonical: "docker.io/library/busybox:latest"; "" if untagged
  std::vector<std::string> tags;  // every reference naming the same manifest, sorted
  std::string id;                 // "sha256:<hex>" of the config blob
  std::string manifest_digest;
  std::string repo_digest;  // "NAME@sha256:..." as the registry served it; "" if not pulled
  int64_t size = 0;         // bytes of the layer blobs
  int64_t created = 0;      // unix seconds
  int64_t pulled_at = 0;    // unix seconds of the last pull of REFERENCE; 0: never pulled
  std::string os, architecture, variant;
  ImageConfig config;
  std::vector<std::string> diff_ids;  // "sha256:<hex>", lowest first
  // Unpacked layer directories, lowest first (overlayfs wants them highest first).
  std::vector<std::filesystem::path> layers;
};

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
  // tarball becomes a blob), "pack" (a directory becomes one), "unpack", "write" (save);
  // TOTAL is 0 when unknown (a compressed layer's unpacked size).
  std::function<void(std::string_view phase, uint64_t done, uint64_t total)> progress;
  // Bytes free for root on the file system holding a path (statvfs); tests replace it.
  std::function<Result<uint64_t>(const std::filesystem::path&)> free_bytes;
};

// What `image rm` and `image prune` removed.
struct Removal {
  std::vector<std::string> untagged;  // references
  std::vector<std::string> deleted;   // image ids
  uint64_t reclaimed = 0;             // bytes of blobs and layers deleted
};

// Image ids (config digests) that containers use, each with the name of one such container:
// never deleted, at most untagged.
using InUse = std::map<std::string, std::string>;

// A tar's bytes as they arrive from a client: up to N bytes into BUF, 0 at the end.
using ByteSource = std::function<Result<size_t>(char* buf, size_t n)>;
// Where a tar's bytes go, in order.
using ByteSink = std::function<Result<void>(std::string_view data)>;

class ImageStore {
 public:
  explicit ImageStore(std::filesystem::path root);  // <root> is e.g. /var/lib/stack/images
  ~ImageStore();

  // Imports PATH as REFERENCE: a rootfs (directory, or tarball plain, gzip or zstd) becomes a
  // one-layer image; an OCI image layout (directory or tar) or a `docker save` tarball keeps its
  // layers and config. An image the name had before stays, untagged, until pruned. Unpacking is
  // contained in each layer's directory. Bounded by OPTIONS.
  [[nodiscard]] Result<Image> import(std::string_view reference, const std::filesystem::path& path,
                                     const ImportOptions& options = {});
  // `image load`: every image of an OCI archive or `docker save` tarball under the names it
  // carries (untagged when it carries none).
  [[nodiscard]] Result<std::vector<Image>> load(const std::filesystem::path& path,
                                                const ImportOptions& options = {});
  // `image save`: REFERENCES as one tar holding an OCI image layout and docker's manifest.json,
  // which `skopeo copy oci-archive:`, `podman load` and `docker load` read. Written under a
  // temporary name next to OUT, renamed at the end.
  [[nodiscard]] Result<void> save(const std::vector<std::string>& references,
                                  const std::filesystem::path& out,
                                  const ImportOptions& options = {}) const;

  // The same three for a tar a client streams (the daemon opens no host path a request names:
  // the CLI reads and writes the user's files with the user's rights). SOURCE's bytes are
  // written straight into a blob of the store (a rootfs tarball stays that blob; an archive's
  // is dropped once read), bounded by OPTIONS as they come. SIZE is what the client says the
  // stream holds, 0 when it does not know (stdin): checked against the limit and the free
  // space before the first byte, and held to (a stream longer than it is cut off).
  [[nodiscard]] Result<Image> import_stream(std::string_view reference, const ByteSource& source,
                                            uint64_t size, const ImportOptions& options = {});
  [[nodiscard]] Result<std::vector<Image>> load_stream(const ByteSource& source, uint64_t size,
                                                       const ImportOptions& options = {});
  [[nodiscard]] Result<void> save_stream(const std::vector<std::string>& references,
                                         const ByteSink& sink,
                                         const ImportOptions& options = {}) const;

  // By reference ("busybox", "reg:5000/a:1", "a@sha256:..."), image id ("sha256:<hex>"), or a
  // unique prefix of at least 4 hex digits of an id.
  [[nodiscard]] Result<Image> get(std::string_view reference) const;
  // Every reference, and every untagged image, sorted by reference (untagged last).
  [[nodiscard]] Result<std::vector<Image>> list() const;
  // TARGET names the image SOURCE names (a previous image of TARGET stays, untagged).
  [[nodiscard]] Result<Image> tag(std::string_view source, std::string_view target);
  // Removes the name REFERENCE (or an id: every name of it). The image itself is deleted when no
  // name is left and no container uses it: refused then without FORCE, untagged with it. Blobs
  // and layers no remaining image uses are deleted.
  [[nodiscard]] Result<Removal> remove(std::string_view reference, const InUse& in_use,
                                       bool force = false);
  // Deletes untagged images no container uses (ALL: every image no container uses), then the
  // blobs and layers nothing references, and temporary files of crashed imports or pulls.
  [[nodiscard]] Result<Removal> prune(const InUse& in_use, bool all = false);

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

  // Internal to src/fs (the importers and the puller): see store_internal.h.
  struct Internal;
  Internal& internal() { return *internal_; }

 private:
  std::filesystem::path root_;
  std::unique_ptr<Internal> internal_;
};

}  // namespace stack::fs
