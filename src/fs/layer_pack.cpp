// Directory -> tar+gzip with libarchive. Determinism: sorted entries, no atime/ctime, no gzip
// header timestamp, numeric owners only (no host user names), so re-packing unchanged content
// yields the same digest.
#include "fs/layer_pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "common/unique_fd.h"
#include "fs/import_meter.h"
#include "fs/sha256.h"

namespace stack::fs {

namespace {

namespace stdfs = std::filesystem;

struct Sink {
  int fd = -1;
  Sha256 hash;
  int64_t size = 0;
};

la_ssize_t write_sink(archive* a, void* client, const void* buf, size_t n) {
  auto* s = static_cast<Sink*>(client);
  const char* p = static_cast<const char*>(buf);
  size_t left = n;
  while (left > 0) {
    ssize_t w = ::write(s->fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      archive_set_error(a, errno, "write layer blob: %s", std::strerror(errno));
      return -1;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  s->hash.update(buf, n);
  s->size += static_cast<int64_t>(n);
  return static_cast<la_ssize_t>(n);
}

Error archive_error(archive* a, std::string_view context) {
  const char* msg = archive_error_string(a);
  return Error{std::string(context) + ": " + (msg ? msg : "unknown libarchive error"),
               archive_errno(a) > 0 ? archive_errno(a) : 0};
}

struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

class Packer {
 public:
  Packer(archive* out, archive* disk, stdfs::path root, ImportMeter* meter, bool overlay_upper)
      : out_(out), disk_(disk), root_(std::move(root)), meter_(meter), upper_(overlay_upper) {}

  Result<void> walk(const std::string& rel) {
    stdfs::path dir = rel.empty() ? root_ : root_ / rel;
    std::error_code ec;
    std::vector<std::string> names;
    for (stdfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      names.push_back(it->path().filename().string());
    if (ec) return fail("read directory " + dir.string() + ": " + ec.message(), ec.value());
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      std::string child = rel.empty() ? name : rel + "/" + name;
      bool is_dir = false;
      if (auto r = add(child, is_dir); !r) return r;
      if (is_dir)
        if (auto r = walk(child); !r) return r;
    }
    return {};
  }

 private:
  Result<void> add(const std::string& rel, bool& is_dir) {
    stdfs::path abs = root_ / rel;
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_copy_sourcepath(e.get(), abs.c_str());
    archive_entry_copy_pathname(e.get(), rel.c_str());
    if (archive_read_disk_entry_from_file(disk_, e.get(), -1, nullptr) < ARCHIVE_WARN)
      return fail(archive_error(disk_, "stat " + abs.string()));
    mode_t type = archive_entry_filetype(e.get());
    is_dir = type == AE_IFDIR;
    if (type == AE_IFSOCK) return {};  // tar cannot hold sockets
    if (upper_) {
      // overlayfs(5): a whiteout is a character device 0/0; the OCI layer's is ".wh.NAME".
      if (type == AE_IFCHR && archive_entry_rdev(e.get()) == 0) return add_marker(rel, false);
      strip_overlay_xattrs(e.get());
    }
    archive_entry_unset_atime(e.get());
    archive_entry_unset_ctime(e.get());
    archive_entry_unset_birthtime(e.get());
    archive_entry_sparse_clear(e.get());  // we write every byte; a sparse map would lie
    archive_entry_set_uname(e.get(), nullptr);
    archive_entry_set_gname(e.get(), nullptr);

    bool has_data = type == AE_IFREG;
    if (type == AE_IFREG && archive_entry_nlink(e.get()) > 1) {
      auto key = std::make_pair(archive_entry_dev(e.get()), archive_entry_ino64(e.get()));
      auto [it, inserted] = first_links_.try_emplace(key, rel);
      if (!inserted) {
        archive_entry_copy_hardlink(e.get(), it->second.c_str());
        archive_entry_set_size(e.get(), 0);
        has_data = false;
      }
    }
    if (archive_write_header(out_, e.get()) < ARCHIVE_WARN)
      return fail(archive_error(out_, "add " + rel));
    if (has_data) return copy_file(abs, archive_entry_size(e.get()));
    if (upper_ && is_dir) {
      char v = 0;
      if (::lgetxattr(abs.c_str(), "trusted.overlay.opaque", &v, 1) == 1 && v == 'y')
        return add_marker(rel, true);
    }
    return {};
  }

  // ".wh.NAME" in REL's directory for a whiteout of REL, or REL/".wh..wh..opq" (OPAQUE).
  Result<void> add_marker(const std::string& rel, bool opaque) {
    std::string name;
    if (opaque) {
      name = rel + "/.wh..wh..opq";
    } else {
      size_t slash = rel.rfind('/');
      name = slash == std::string::npos ? ".wh." + rel
                                        : rel.substr(0, slash + 1) + ".wh." + rel.substr(slash + 1);
    }
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_copy_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0);
    archive_entry_set_size(e.get(), 0);
    if (archive_write_header(out_, e.get()) < ARCHIVE_WARN)
      return fail(archive_error(out_, "add " + name));
    return {};
  }

  static void strip_overlay_xattrs(archive_entry* e) {
    std::vector<std::pair<std::string, std::string>> keep;
    archive_entry_xattr_reset(e);
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      std::string_view n(name);
      if (n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.")) continue;
      keep.emplace_back(n, std::string(static_cast<const char*>(value), size));
    }
    archive_entry_xattr_clear(e);
    for (const auto& [k, v] : keep) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
  }

  // Writes exactly SIZE bytes (the header is already out): a file that changed meanwhile is
  // truncated or zero-padded rather than corrupting the archive.
  Result<void> copy_file(const stdfs::path& abs, int64_t size) {
    UniqueFd fd(::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return fail_errno("open " + abs.string());
    char buf[1 << 16];
    while (size > 0) {
      ssize_t n = ::read(fd.get(), buf, static_cast<size_t>(std::min<int64_t>(size, sizeof buf)));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("read " + abs.string());
      }
      if (n == 0) {
        n = static_cast<ssize_t>(std::min<int64_t>(size, sizeof buf));
        std::memset(buf, 0, static_cast<size_t>(n));
      }
      if (meter_ != nullptr)
        if (auto r = meter_->add(static_cast<uint64_t>(n)); !r) return r;
      if (archive_write_data(out_, buf, static_cast<size_t>(n)) < 0)
        return fail(archive_error(out_, "write " + abs.string()));
      size -= n;
    }
    return {};
  }

  archive* out_;
  archive* disk_;
  stdfs::path root_;
  ImportMeter* meter_;
  bool upper_;
  std::map<std::pair<dev_t, la_int64_t>, std::string> first_links_;
};

}  // namespace

Result<PackedBlob> pack_directory(const stdfs::path& dir, int fd, ImportMeter* meter,
                                  bool overlay_upper) {
  std::unique_ptr<archive, decltype(&archive_write_free)> out(archive_write_new(),
                                                              &archive_write_free);
  std::unique_ptr<archive, decltype(&archive_read_free)> disk(archive_read_disk_new(),
                                                              &archive_read_free);
  if (!out || !disk) return fail("pack " + dir.string() + ": libarchive allocation failed");
  archive_read_disk_set_symlink_physical(disk.get());
  archive_write_set_format_pax_restricted(out.get());
  // No zero padding after the gzip stream (libarchive pads the last block to 10 KiB by default):
  // Go's gzip reader, which docker, podman and skopeo use, takes trailing zeros for a broken
  // second member and refuses the layer.
  archive_write_set_bytes_in_last_block(out.get(), 1);
  if (archive_write_add_filter_gzip(out.get()) != ARCHIVE_OK)
    return fail(archive_error(out.get(), "pack " + dir.string()));
  // NULL value means "!timestamp": no mtime in the gzip header, for reproducible blobs.
  if (archive_write_set_filter_option(out.get(), "gzip", "timestamp", nullptr) != ARCHIVE_OK)
    return fail(archive_error(out.get(), "pack " + dir.string() + ": gzip option"));
  Sink sink;
  sink.fd = fd;
  if (archive_write_open(out.get(), &sink, nullptr, write_sink, nullptr) != ARCHIVE_OK)
    return fail(archive_error(out.get(), "pack " + dir.string()));
  Packer packer(out.get(), disk.get(), dir, meter, overlay_upper);
  if (auto r = packer.walk(""); !r) return fail(r.error().wrap("pack " + dir.string()));
  if (archive_write_close(out.get()) != ARCHIVE_OK)
    return fail(archive_error(out.get(), "pack " + dir.string()));
  if (meter != nullptr) meter->done();
  return PackedBlob{sink.hash.hex_digest(), sink.size};
}

}  // namespace stack::fs
