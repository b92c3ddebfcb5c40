// Layer unpacking: libarchive reads the (possibly compressed) stream twice-nested so the
// uncompressed tar bytes can be hashed for the diff_id in the same pass that extracts them.
// Extraction uses absolute paths under the target (no chdir: other threads share the cwd).
#include "fs/layer_unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "common/files.h"
#include "common/unique_fd.h"
#include "fs/import_meter.h"
#include "fs/sha256.h"

namespace stack::fs {

namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";
constexpr std::string_view kOverlayXattrPrefix = "trusted.overlay.";
// Longer paths make archive_write_disk chdir(2) into deep directories, which is process-wide.
constexpr size_t kMaxPath = 3900;

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ArchiveReadDeleter>;
using WriteArchive = std::unique_ptr<archive, ArchiveWriteDeleter>;

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
  char buf[1 << 16];
};

la_ssize_t read_decompressed(archive* inner, void* client, const void** out) {
  auto* s = static_cast<Stream*>(client);
  la_ssize_t n = archive_read_data(s->outer, s->buf, sizeof s->buf);
  if (n < 0) {
    archive_set_error(inner, archive_errno(s->outer), "%s", archive_error_string(s->outer));
    return -1;
  }
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

// Fails when a directory on the way to REL (the last component too, if INCLUDE_LAST) is a
// symlink: writing through it could land anywhere on the host.
Result<void> check_no_symlinks(const stdfs::path& root, std::string_view rel, bool include_last) {
  std::string cur = root.string();
  size_t start = 0;
  while (start < rel.size()) {
    size_t slash = rel.find('/', start);
    bool last = slash == std::string_view::npos;
    if (last && !include_last) return {};
    cur.append("/").append(rel.substr(start, last ? std::string_view::npos : slash - start));
    struct stat st {};
    if (::lstat(cur.c_str(), &st) != 0) {
      if (errno == ENOENT) return {};
      return fail_errno("lstat " + cur);
    }
    if (S_ISLNK(st.st_mode))
      return fail("path goes through symlink \"" + cur.substr(root.string().size() + 1) + "\"");
    if (last) return {};
    start = slash + 1;
  }
  return {};
}

// Creates missing parent directories of REL (0755, as docker does for implied directories);
// existing ones keep their mode.
Result<void> ensure_parent(const stdfs::path& root, const std::string& rel) {
  if (auto r = check_no_symlinks(root, rel, false); !r) return r;
  stdfs::path parent = (root / rel).parent_path();
  struct stat st {};
  if (::lstat(parent.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return fail("parent of whiteout is not a directory");
    return {};
  }
  return make_dirs(parent, 0755);
}

// ".wh..wh..opq" -> trusted.overlay.opaque=y on the directory; ".wh.NAME" -> char device 0/0
// named NAME. Overlayfs reads these forms (Documentation/filesystems/overlayfs.rst).
Result<void> apply_whiteout(const stdfs::path& root, const std::string& rel,
                            std::string_view base) {
  if (auto r = ensure_parent(root, rel); !r) return r;
  stdfs::path dir = (root / rel).parent_path();
  if (base == kOpaqueWhiteout) {
    if (::lsetxattr(dir.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0)
      return fail_errno("set opaque xattr on " + dir.string());
    return {};
  }
  std::string_view name = base.substr(kWhiteoutPrefix.size());
  if (name.empty() || name == "." || name == "..") return fail("invalid whiteout name");
  stdfs::path victim = dir / std::string(name);
  if (auto r = remove_tree(victim); !r) return r;
  if (::mknod(victim.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0)
    return fail_errno("create whiteout " + victim.string());
  return {};
}

// Drops trusted.overlay.* xattrs from an entry: only whiteout conversion may set them, since
// overlayfs acts on them (redirects, metacopy) in ways a layer author must not control.
void strip_overlay_xattrs(archive_entry* e) {
  if (archive_entry_xattr_reset(e) == 0) return;
  struct Xattr {
    std::string name;
    std::string value;
  };
  std::vector<Xattr> keep;
  bool dropped = false;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (std::string_view(name).starts_with(kOverlayXattrPrefix)) {
      dropped = true;
      continue;
    }
    keep.push_back({name, std::string(static_cast<const char*>(value), size)});
  }
  if (!dropped) return;
  archive_entry_xattr_clear(e);
  for (const auto& x : keep)
    archive_entry_xattr_add_entry(e, x.name.c_str(), x.value.data(), x.value.size());
}

Result<void> copy_data(archive* in, archive* out) {
  for (;;) {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(in, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) return {};
    if (r < ARCHIVE_WARN) return fail(archive_error(in, "read"));
    if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
      return fail(archive_error(out, "write"));
  }
}

// Extracts one entry whose name is already clean.
Result<void> extract_entry(archive* in, archive* disk, archive_entry* e, const stdfs::path& root,
                           const std::string& rel) {
  if (auto r = check_no_symlinks(root, rel, false); !r) return r;
  if (const char* link = archive_entry_hardlink(e)) {
    auto clean = clean_entry_path(link);
    if (!clean) return fail(clean.error().wrap("hardlink target \"" + std::string(link) + "\""));
    if (clean->empty()) return fail("hardlink to the layer root");
    if (auto r = check_no_symlinks(root, *clean, false); !r)
      return fail(r.error().wrap("hardlink target \"" + std::string(link) + "\""));
    archive_entry_copy_hardlink(e, (root / *clean).c_str());
  }
  stdfs::path dest = rel.empty() ? root : root / rel;
  if (dest.native().size() > kMaxPath) return fail("path too long");
  archive_entry_copy_pathname(e, dest.c_str());
  strip_overlay_xattrs(e);
  if (archive_write_header(disk, e) < ARCHIVE_WARN) return fail(archive_error(disk, "create"));
  if (archive_entry_size(e) > 0)
    if (auto r = copy_data(in, disk); !r) return r;
  if (archive_write_finish_entry(disk) < ARCHIVE_WARN) return fail(archive_error(disk, "finish"));
  return {};
}

Result<void> extract_all(archive* in, archive* disk, const stdfs::path& root, int64_t& newest) {
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(in, &e);
    if (r == ARCHIVE_EOF) return {};
    if (r < ARCHIVE_WARN) return fail(archive_error(in, "read layer"));
    const char* raw = archive_entry_pathname(e);
    if (!raw) return fail("read layer: entry without a usable name");
    auto rel = clean_entry_path(raw);
    if (!rel) return fail(rel.error().wrap("layer entry \"" + std::string(raw) + "\""));
    newest = std::max<int64_t>(newest, archive_entry_mtime(e));
    std::string_view base = *rel;
    if (size_t slash = base.rfind('/'); slash != std::string_view::npos)
      base = base.substr(slash + 1);
    Result<void> done = base.starts_with(kWhiteoutPrefix) ? apply_whiteout(root, *rel, base)
                                                          : extract_entry(in, disk, e, root, *rel);
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

  WriteArchive disk(archive_write_disk_new());
  // No archive_write_disk_set_standard_lookup: owners are the numeric ids in the layer, never
  // names looked up in the host's /etc/passwd. No NOABSOLUTEPATHS: our paths are absolute by
  // construction, after clean_entry_path removed "/" and ".." from the entry's own name.
  archive_write_disk_set_options(
      disk.get(), ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                      ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME |
                      ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_UNLINK);
  if (auto done = extract_all(inner.get(), disk.get(), target, out.newest_mtime); !done)
    return fail(done.error().wrap("unpack layer"));
  // Close applies the deferred directory modes and times.
  if (archive_write_close(disk.get()) < ARCHIVE_WARN)
    return fail(archive_error(disk.get(), "unpack layer: finish"));

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
