// Layer unpacking: libarchive reads the (possibly compressed) stream twice-nested so the
// uncompressed tar bytes can be hashed for the diff_id in the same pass that extracts them;
// LayerWriter makes each entry with descriptors resolved inside the layer (no chdir, no path
// outside it: other threads share the cwd, and the tar is not trusted).
#include "fs/layer_unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <cstring>
#include <memory>
#include <vector>

#include "common/files.h"
#include "common/unique_fd.h"
#include "fs/fs_try.h"
#include "fs/import_meter.h"
#include "fs/layer_writer.h"
#include "fs/sha256.h"

namespace stack::fs {

namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kWhiteoutPrefix = ".wh.";
// openat2(2) takes at most PATH_MAX.
constexpr size_t kMaxPath = 4000;

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ArchiveReadDeleter>;

Error archive_error(archive* a, std::string_view context) {
  const char* msg = archive_error_string(a);
  return Error{std::string(context) + ": " + (msg ? msg : "unknown libarchive error"),
               archive_errno(a) > 0 ? archive_errno(a) : 0};
}

// The decompressed stream, read ahead on a thread of its own: decompressing and hashing the
// next pieces overlap with writing the files (as `tar -xz` runs gzip in another process). The
// outer reader (format "raw") decompresses; the inner tar reader pulls from it through
// read_decompressed. The reader thread is the only user of OUTER once started.
class Stream {
 public:
  Stream(archive* outer, ImportMeter* meter) : outer_(outer), meter_(meter) {
    for (size_t i = 0; i < kBuffers; i++) {
      buffers_[i].resize(kBufferSize);
      free_.push_back(i);
    }
    thread_ = std::thread([this] { read_ahead(); });
  }
  ~Stream() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // The next piece (valid until the next call); 0 at the end; -1 with *ERROR set.
  la_ssize_t next(const void** out, Error* error) {
    std::unique_lock lock(mu_);
    if (held_ != kNone) {
      free_.push_back(held_);
      held_ = kNone;
      cv_.notify_all();
    }
    cv_.wait(lock, [&] { return !full_.empty() || end_; });
    if (!full_.empty()) {
      auto [index, n] = full_.front();
      full_.pop_front();
      held_ = index;
      *out = buffers_[index].data();
      return static_cast<la_ssize_t>(n);
    }
    if (error_) {
      *error = *error_;
      return -1;
    }
    if (!padded_) {
      // Some writers (umoci 0.4) end a layer without the last entry's padding and the
      // end-of-archive blocks; Go's archive/tar, which docker, containerd and podman use, takes
      // that as the end. So do we: zeros to the next block and the end marker, not part of the
      // diff_id (which covers the bytes as they are).
      padded_ = true;
      size_t pad = (512 - total_ % 512) % 512 + 1024;
      *out = kZeros;
      return static_cast<la_ssize_t>(pad);
    }
    return 0;
  }
  // Once next() has returned 0: the digest of every byte read.
  std::string hex_digest() {
    thread_.join();
    thread_ = std::thread([] {});
    return hash_.hex_digest();
  }

 private:
  static constexpr size_t kBuffers = 4, kBufferSize = 256 << 10, kNone = SIZE_MAX;
  static inline const char kZeros[2048] = {};

  void read_ahead() {
    for (;;) {
      size_t index;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !free_.empty(); });
        if (stop_) return;
        index = free_.back();
        free_.pop_back();
      }
      la_ssize_t n = archive_read_data(outer_, buffers_[index].data(), kBufferSize);
      std::optional<Error> error;
      if (n < 0) {
        const char* msg = archive_error_string(outer_);
        error = Error{msg ? msg : "read error", archive_errno(outer_) > 0 ? archive_errno(outer_) : 0};
      } else if (n > 0) {
        total_ += static_cast<uint64_t>(n);
        // The unpacked layer is about as large as the tar stream: its bound is checked here, as
        // the bytes arrive (a gzip bomb is stopped at the limit, not after).
        if (meter_ != nullptr)
          if (auto r = meter_->add(static_cast<uint64_t>(n)); !r) error = Error{r.error().message, EFBIG};
        if (!error) hash_.update(buffers_[index].data(), static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        if (error || n == 0) {
          error_ = error;
          end_ = true;
          free_.push_back(index);
        } else {
          full_.emplace_back(index, static_cast<size_t>(n));
        }
      }
      cv_.notify_all();
      if (error || n == 0) return;
    }
  }

  archive* outer_;
  ImportMeter* meter_;
  Sha256 hash_;
  uint64_t total_ = 0;  // written by the reader before end_, read by next() after it
  std::mutex mu_;
  std::condition_variable cv_;
  std::array<std::vector<char>, kBuffers> buffers_;
  std::vector<size_t> free_;
  std::deque<std::pair<size_t, size_t>> full_;  // buffer, bytes
  size_t held_ = kNone;                          // the piece the tar reader is reading
  bool end_ = false, stop_ = false, padded_ = false;
  std::optional<Error> error_;
  std::thread thread_;
};

la_ssize_t read_decompressed(archive* inner, void* client, const void** out) {
  Error error;
  la_ssize_t n = static_cast<Stream*>(client)->next(out, &error);
  if (n < 0) archive_set_error(inner, error.sys_errno, "%s", error.message.c_str());
  return n;
}

// Compression formats we refuse, named for the error message.
std::string_view sniff_unsupported(const stdfs::path& blob) {
  UniqueFd fd(::open(blob.c_str(), O_RDONLY | O_CLOEXEC));
  unsigned char m[6] = {};
  if (!fd || ::read(fd.get(), m, sizeof m) != static_cast<ssize_t>(sizeof m)) return {};
  if (std::memcmp(m,
                  "\xFD"
                  "7zXZ\0",
                  6) == 0)
    return "xz";
  if (std::memcmp(m, "BZh", 3) == 0) return "bzip2";
  if (std::memcmp(m, "\x04\x22\x4D\x18", 4) == 0) return "lz4";
  if (m[0] == 0x5D && m[1] == 0 && m[2] == 0) return "lzma";
  return {};
}

Result<void> extract_all(archive* in, LayerWriter& out, int64_t& newest) {
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(in, &e);
    if (r == ARCHIVE_EOF) return {};
    if (r < ARCHIVE_WARN) return fail(archive_error(in, "read layer"));
    const char* raw = archive_entry_pathname(e);
    if (!raw) return fail("read layer: entry without a usable name");
    auto rel = clean_entry_path(raw);
    if (!rel) return fail(rel.error().wrap("layer entry \"" + std::string(raw) + "\""));
    if (rel->size() > kMaxPath)
      return fail("layer entry \"" + std::string(raw).substr(0, 80) + "...\": path too long");
    newest = std::max<int64_t>(newest, archive_entry_mtime(e));
    std::string_view base = *rel;
    if (size_t slash = base.rfind('/'); slash != std::string_view::npos)
      base = base.substr(slash + 1);
    Result<void> done =
        base.starts_with(kWhiteoutPrefix) ? out.whiteout(*rel, base) : out.add(in, e, *rel);
    if (!done) return fail(done.error().wrap("layer entry \"" + std::string(raw) + "\""));
  }
}

Result<ReadArchive> open_outer(const stdfs::path& blob) {
  ReadArchive a(archive_read_new());
  if (!a) return fail("archive_read_new failed");
  // Only the built-in gzip and zstd decoders: support_filter_all would run external programs
  // (lrzip, grzip, ...) for some formats, and the library must not spawn tools.
  if (archive_read_support_filter_gzip(a.get()) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(a.get()) != ARCHIVE_OK)
    return fail("libarchive lacks built-in gzip or zstd support");
  archive_read_support_format_raw(a.get());
  if (archive_read_open_filename(a.get(), blob.c_str(), 1 << 16) != ARCHIVE_OK)
    return fail(archive_error(a.get(), "open " + blob.string()));
  return a;
}

}  // namespace

std::string layer_media_type(Compression c) {
  switch (c) {
    case Compression::gzip:
      return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::zstd:
      return "application/vnd.oci.image.layer.v1.tar+zstd";
    case Compression::none:
      break;
  }
  return "application/vnd.oci.image.layer.v1.tar";
}

Result<std::string> clean_entry_path(std::string_view name) {
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(start, slash - start);
    start = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return fail("path escapes the layer (\"..\")");
    if (!out.empty()) out.push_back('/');
    out.append(part);
  }
  return out;
}

Result<UnpackedLayer> unpack_layer(const stdfs::path& blob, const stdfs::path& target,
                                   ImportMeter* meter) {
  if (std::string_view kind = sniff_unsupported(blob); !kind.empty())
    return fail("unsupported layer compression " + std::string(kind) +
                " (use a plain, gzip or zstd tarball)");
  ReadArchive outer = STACK_TRY_CTX(open_outer(blob), "unpack layer");
  archive_entry* raw_entry = nullptr;
  int r = archive_read_next_header(outer.get(), &raw_entry);
  if (r == ARCHIVE_EOF) return fail("unpack layer: empty file " + blob.string());
  if (r < ARCHIVE_WARN) return fail(archive_error(outer.get(), "unpack layer"));

  UnpackedLayer out;
  switch (archive_filter_code(outer.get(), 0)) {
    case ARCHIVE_FILTER_GZIP:
      out.compression = Compression::gzip;
      break;
    case ARCHIVE_FILTER_ZSTD:
      out.compression = Compression::zstd;
      break;
    default:
      out.compression = Compression::none;
      break;
  }

  auto stream = std::make_unique<Stream>(outer.get(), meter);
  ReadArchive inner(archive_read_new());
  archive_read_support_format_tar(inner.get());
  if (archive_read_open(inner.get(), stream.get(), nullptr, read_decompressed, nullptr) !=
      ARCHIVE_OK)
    return fail(archive_error(inner.get(), "unpack layer: read tar"));

  LayerWriter writer = FS_TRY(LayerWriter::open(target));
  if (auto done = extract_all(inner.get(), writer, out.newest_mtime); !done)
    return fail(done.error().wrap("unpack layer"));
  if (auto done = writer.finish(); !done) return fail(done.error().wrap("unpack layer"));

  // The tar reader stops at the end-of-archive marker; the diff_id covers the padding after it.
  for (;;) {
    const void* ignored = nullptr;
    la_ssize_t n = read_decompressed(inner.get(), stream.get(), &ignored);
    if (n < 0) return fail(archive_error(inner.get(), "unpack layer: read"));
    if (n == 0) break;
  }
  out.diff_id = stream->hex_digest();
  if (meter != nullptr) meter->done();

  // The layer is renamed into place next; its content must reach the disk first.
  UniqueFd dir(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || ::syncfs(dir.get()) != 0) return fail_errno("unpack layer: sync " + target.string());
  return out;
}

}  // namespace stack::fs
