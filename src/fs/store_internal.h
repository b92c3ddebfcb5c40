// The image store's insides, shared by its files (the store, the importers, the archive reader
// and writer, the puller): paths, the store lock, blobs written verified (temporary name, fsync,
// rename), layers unpacked once, index.json, and pins that keep what a running pull or import
// has already put in place from garbage collection. Private to src/fs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "fs/fs_try.h"
#include "fs/image_store.h"
#include "fs/oci_layout.h"
#include "fs/sha256.h"

namespace stack::fs {

namespace stdfs = std::filesystem;

class ImportMeter;

inline constexpr std::string_view kTmpPrefix = ".tmp-";

stdfs::path blobs_dir(const stdfs::path& root);
stdfs::path layers_dir(const stdfs::path& root);
stdfs::path index_path(const stdfs::path& root);
stdfs::path blob_path(const stdfs::path& root, std::string_view hex);
// ".tmp-<pid>-XXXXXX": a template for mkstemp/mkdtemp. A name whose process still runs belongs
// to work in progress; others are leftovers of a crash, collected by the next GC.
std::string tmp_template();
bool is_live_temp(std::string_view name);

// Root's alone (common/private_root.h): layers hold device nodes and a 1777 /tmp that every
// container of the image shares.
[[nodiscard]] Result<void> ensure_dirs(const stdfs::path& root);

// flock(root/stack.lock): renames into place, index.json changes and GC happen under it, so a
// concurrent GC never sees a blob or layer in place but not yet named by index.json.
class StoreLock {
 public:
  [[nodiscard]] static Result<StoreLock> acquire(const stdfs::path& root);

 private:
  explicit StoreLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing releases the flock
};

// A blob being written: bytes go to a temporary file in blobs/sha256 and through SHA-256; commit
// checks the digest (and size) it must have, fsyncs and renames it to its digest. Nothing whose
// digest does not match ever carries a digest's name, crash or not.
class BlobWriter {
 public:
  // ON_DIGEST, when set, hears the digest before the blob takes its name (to pin it).
  [[nodiscard]] static Result<BlobWriter> create(
      const stdfs::path& root, std::function<void(const std::string& hex)> on_digest = {});
  BlobWriter(BlobWriter&& o) noexcept;
  BlobWriter& operator=(BlobWriter&&) = delete;
  ~BlobWriter();

  [[nodiscard]] Result<void> write(const void* data, size_t n);
  // Back to no bytes: a download that restarts from its beginning.
  [[nodiscard]] Result<void> restart();
  [[nodiscard]] uint64_t size() const { return size_; }
  [[nodiscard]] const stdfs::path& path() const { return path_; }
  // EXPECTED: "sha256:<hex>", or empty to take whatever the bytes are; EXPECTED_SIZE < 0: any.
  // Returns the hex digest. An existing blob of that digest is kept (same bytes by definition).
  // EXISTED, when given, says whether the store had that blob already.
  [[nodiscard]] Result<std::string> commit(std::string_view expected, int64_t expected_size = -1,
                                           bool* existed = nullptr);

 private:
  BlobWriter(stdfs::path root, stdfs::path path, UniqueFd fd)
      : root_(std::move(root)), path_(std::move(path)), fd_(std::move(fd)) {}
  stdfs::path root_, path_;
  std::function<void(const std::string&)> on_digest_;
  UniqueFd fd_;
  std::unique_ptr<Sha256> hash_ = std::make_unique<Sha256>();
  uint64_t size_ = 0;
  bool done_ = false;
};

// A small document as a blob (manifest, config). Returns its descriptor-ready hex.
[[nodiscard]] Result<std::string> put_blob(const stdfs::path& root, std::string_view content,
                                           std::string_view expected = {});
[[nodiscard]] bool has_blob(const stdfs::path& root, std::string_view hex);
// A small blob (at most 4 MiB: a manifest, an index, a config) read and checked against its
// digest: a corrupt store gives an error, never a wrong image.
[[nodiscard]] Result<std::string> read_blob(const stdfs::path& root, std::string_view digest);

[[nodiscard]] bool has_layer(const stdfs::path& root, std::string_view diff_hex);
// Unpacks BLOB into layers/<diff_id> unless that layer is there already: under a temporary name,
// renamed into place once complete. EXPECTED_DIFF (hex), when given, is checked against the
// tar stream's digest. Returns the diff_id hex.
[[nodiscard]] Result<std::string> ensure_layer(const stdfs::path& root, const stdfs::path& blob,
                                               std::string_view expected_diff,
                                               ImportMeter* meter = nullptr);

// index.json. References are canonical: a store of the first version (names like
// "busybox:latest") is read as docker.io/library/busybox:latest and written back so.
[[nodiscard]] Result<OciIndex> load_index(const stdfs::path& root);
[[nodiscard]] Result<void> save_index(const stdfs::path& root, const OciIndex& index);
std::string ref_name(const Descriptor& d);

// An image built in the store: its manifest blob (with config and layer blobs, and layers
// unpacked) is in place.
struct NewImage {
  std::string reference;  // canonical; empty: untagged (a load without a name)
  Descriptor manifest;
  int64_t pulled_at = 0;
  std::string repo_digest;
};

struct ImageStore::Internal {
  stdfs::path root;
  mutable std::mutex mu;
  std::multiset<std::string> pins;  // blob and diff_id hexes GC must keep

  // Keeps HEXES from GC while it lives.
  class Pin {
   public:
    Pin(Internal* in, std::vector<std::string> hexes);
    Pin(Pin&& o) noexcept : in_(std::exchange(o.in_, nullptr)), hexes_(std::move(o.hexes_)) {}
    Pin& operator=(Pin&&) = delete;
    ~Pin();
    void add(const std::string& hex);

   private:
    Internal* in_;
    std::vector<std::string> hexes_;
  };
  Pin pin(std::vector<std::string> hexes = {}) { return Pin(this, std::move(hexes)); }
  std::set<std::string> pinned() const;

  // Names IMAGE.reference -> IMAGE.manifest under the lock. The image the name had before stays
  // untagged when nothing else names it. Returns the image as stored.
  [[nodiscard]] Result<Image> commit(const NewImage& image);
  // Deletes blobs and layers neither INDEX nor a pin uses, and temporary files of dead
  // processes. Caller holds the lock. Returns the bytes freed.
  [[nodiscard]] Result<uint64_t> collect_garbage(const OciIndex& index);
};

// What BlobWriter::create takes to pin a blob's digest into PIN before the blob is in place.
inline std::function<void(const std::string&)> pin_to(ImageStore::Internal::Pin& pin) {
  return [&pin](const std::string& hex) { pin.add(hex); };
}

// The image INDEX names with entry D (its tags gathered from the whole index).
[[nodiscard]] Result<Image> load_image(const stdfs::path& root, const OciIndex& index,
                                       const Descriptor& d);
// The layers the build cache's records name (blob and diff_id): garbage collection keeps them.
struct BuildLayer;
std::vector<BuildLayer> cache_layers(const stdfs::path& root);

// Bytes of the files under DIR (symlinks not followed).
uint64_t tree_bytes(const stdfs::path& dir);

}  // namespace stack::fs
