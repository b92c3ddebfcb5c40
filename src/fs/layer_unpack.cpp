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

// The decompressed stream: the outer reader (format "raw") decompresses; the inner tar reader
// pulls from it through read_decompressed, which hashes every byte on the way.
struct Stream {
  archive* outer = nullptr;
  ImportMeter* meter = nullptr;
  Sha256 hash;
  uint64_t total = 0;
  bool padded = false;
  char buf[1 << 16];
};

la_ssize_t read_decompressed(archive* inner, void* client, const void** out) {
  auto* s = static_cast<Stream*>(client);
  la_ssize_t n = archive_read_data(s->outer, s->buf, sizeof s->buf);
  if (n < 0) {
    archive_set_error(inner, archive_errno(s->outer), "%s", archive_error_string(s->outer));
    return -1;
  }
  if (n == 0 && !s->padded) {
    // Some writers (umoci 0.4) end a layer without the last entry's padding and the
    // end-of-archive blocks; Go's archive/tar, which docker, containerd and podman use, takes
    // that as the end. So do we: zeros to the next block and the end marker, not part of the
    // diff_id (which covers the bytes as they are).
    s->padded = true;
    size_t pad = (512 - s->total % 512) % 512 + 1024;
    std::memset(s->buf, 0, pad);
    *out = s->buf;
    return static_cast<la_ssize_t>(pad);
  }
  s->total += static_cast<uint64_t>(n);
  // The unpacked layer is about as large as the tar stream: its bound is checked here, as
  // the bytes arrive (a gzip bomb is stopped at the limit, not after).
  if (s->meter != nullptr)
    if (auto r = s->meter->add(static_cast<uint64_t>(n)); !r) {
      archive_set_error(inner, EFBIG, "%s", r.error().message.c_str());
      return -1;
    }
  s->hash.update(s->buf, static_cast<size_t>(n));
  *out = s->buf;
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

  auto stream = std::make_unique<Stream>();
  stream->outer = outer.get();
  stream->meter = meter;
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
  out.diff_id = stream->hash.hex_digest();
  if (meter != nullptr) meter->done();

  // The layer is renamed into place next; its content must reach the disk first.
  UniqueFd dir(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || ::syncfs(dir.get()) != 0) return fail_errno("unpack layer: sync " + target.string());
  return out;
}

}  // namespace stack::fs
