// LayerWriter: every entry's parent is resolved inside the layer (openat2(2), RESOLVE_IN_ROOT:
// ".." stops at the layer's root, an absolute symlink starts there), then the entry is made with
// a *at(2) call on that descriptor that never follows its last component (O_NOFOLLOW,
// AT_SYMLINK_NOFOLLOW, symlinkat, mknodat, linkat without AT_SYMLINK_FOLLOW). Directory modes
// and times are set at the end, so a read-only directory still receives its entries.
#include "fs/layer_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

#include "fs/fs_try.h"
#include "fs/layer_unpack.h"

namespace stack::fs {

namespace {

constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

int openat2_in(int dir, const char* path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = kResolve;
  for (int i = 0; i < 64; i++) {
    long fd = ::syscall(SYS_openat2, dir, path, &how, sizeof how);
    // RESOLVE_IN_ROOT answers EAGAIN when a rename raced with the lookup (openat2(2)).
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
  }
  return -1;
}

std::string parent_rel(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

std::string base_name(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

// Removes NAME in DIR and everything under it, never following a symlink.
Result<void> remove_at(int dir, const char* name) {
  struct stat st {};
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? Result<void>{} : fail_errno(std::string("stat ") + name);
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir, name, 0) != 0 && errno != ENOENT)
      return fail_errno(std::string("remove ") + name);
    return {};
  }
  int fd = ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fail_errno(std::string("open ") + name);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return fail_errno(std::string("open ") + name);
  }
  Result<void> r;
  while (dirent* de = ::readdir(d)) {
    if (!std::strcmp(de->d_name, ".") || !std::strcmp(de->d_name, "..")) continue;
    if (r = remove_at(fd, de->d_name); !r) break;
  }
  ::closedir(d);
  if (!r) return r;
  if (::unlinkat(dir, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
    return fail_errno(std::string("remove ") + name);
  return {};
}

bool overlay_xattr(std::string_view name) {
  // Only whiteout conversion may set these: overlayfs acts on them (redirects, metacopy,
  // opaque) in ways a layer's author must not control.
  return name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.");
}

}  // namespace

Result<LayerWriter> LayerWriter::open(const std::filesystem::path& target) {
  UniqueFd root(::open(target.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root) return fail_errno("open " + target.string());
  LayerWriter w(std::move(root));
  w.privileged_ = ::geteuid() == 0;
  return w;
}

Result<UniqueFd> LayerWriter::open_dir(const std::string& rel, bool create, bool readable) {
  const int mode = (readable ? O_RDONLY : O_PATH) | O_DIRECTORY;
  std::string path = rel.empty() ? "." : rel;
  int fd = openat2_in(root_.get(), path.c_str(), mode);
  if (fd >= 0) return UniqueFd(fd);
  if (errno == ENOTDIR) return fail("\"" + rel + "\" is not a directory");
  if (errno != ENOENT || !create) return fail_errno("open directory \"" + rel + "\"");
  // Missing directories on the way, made one by one, each resolved inside the layer again.
  std::string prefix;
  size_t start = 0;
  while (start < rel.size()) {
    size_t slash = rel.find('/', start);
    std::string comp =
        rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    std::string next = prefix.empty() ? comp : prefix + "/" + comp;
    int probe = openat2_in(root_.get(), next.c_str(), O_PATH | O_DIRECTORY);
    if (probe < 0) {
      if (errno == ENOTDIR) return fail("\"" + next + "\" is not a directory");
      if (errno != ENOENT) return fail_errno("open directory \"" + next + "\"");
      UniqueFd parent = FS_TRY(open_dir(prefix, false));
      if (::mkdirat(parent.get(), comp.c_str(), 0755) != 0) {
        struct stat st {};
        // As docker's extraction: a symlink whose target is not a directory of the layer is not
        // followed out of it, nor is the missing target made up.
        if (errno == EEXIST &&
            ::fstatat(parent.get(), comp.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode))
          return fail("\"" + next + "\" is a symlink to no directory of the layer");
        if (errno != EEXIST) return fail_errno("create directory \"" + next + "\"");
      }
      probe = openat2_in(root_.get(), next.c_str(), O_PATH | O_DIRECTORY);
      if (probe < 0) return fail_errno("open directory \"" + next + "\"");
    }
    ::close(probe);
    prefix = next;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  fd = openat2_in(root_.get(), path.c_str(), mode);
  if (fd < 0) return fail_errno("open directory \"" + rel + "\"");
  return UniqueFd(fd);
}

Result<int> LayerWriter::parent_of(const std::string& rel) {
  std::string parent = parent_rel(rel);
  if (cached_ && cached_rel_ == parent) return cached_.get();
  auto fd = open_dir(parent, true);
  if (!fd) return fail(fd.error());
  cached_ = std::move(*fd);
  cached_rel_ = parent;
  return cached_.get();
}

Result<void> LayerWriter::remove_existing(int dir, const std::string& name,
                                          const std::string& rel) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return {};
  if (auto r = remove_at(dir, name.c_str()); !r)
    return fail(r.error().wrap("replace \"" + rel + "\""));
  // A directory or symlink gone changes how later paths resolve: the cache may name another.
  // (DIR may be the cached descriptor: callers ask parent_of again after this.)
  if (S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)) forget_cache();
  return {};
}

Result<void> LayerWriter::write_data(archive* in, int fd, int64_t size) {
  for (;;) {
    const void* buf = nullptr;
    size_t n = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(in, &buf, &n, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      const char* msg = archive_error_string(in);
      return fail(std::string("read: ") + (msg ? msg : "unknown libarchive error"));
    }
    const char* p = static_cast<const char*>(buf);
    while (n > 0) {
      ssize_t w = ::pwrite(fd, p, n, offset);
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail_errno("write");
      }
      p += w;
      n -= static_cast<size_t>(w);
      offset += w;
    }
  }
  // A sparse file's trailing hole.
  if (::ftruncate(fd, size) != 0) return fail_errno("truncate");
  return {};
}

Result<void> LayerWriter::set_metadata(int dir, const std::string& name, int fd, archive_entry* e,
                                       bool is_link) {
  // chown first: it clears setuid bits and file capabilities (chown(2)), which chmod and the
  // security.capability xattr then restore.
  if (privileged_) {
    uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    int r = fd >= 0 ? ::fchown(fd, uid, gid)
                    : ::fchownat(dir, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r != 0) return fail_errno("chown");
  }
  mode_t perm = archive_entry_mode(e) & 07777;
  if (!is_link) {
    int r = fd >= 0 ? ::fchmod(fd, perm) : ::fchmodat(dir, name.c_str(), perm, 0);
    if (r != 0) return fail_errno("chmod");
  }
  if (archive_entry_xattr_reset(e) > 0) {
    std::string via = "/proc/self/fd/" + std::to_string(dir) + "/" + name;
    const char* key = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
      if (overlay_xattr(key)) continue;
      int r = fd >= 0 ? ::fsetxattr(fd, key, value, size, 0)
                      : ::lsetxattr(via.c_str(), key, value, size, 0);
      // Without root, trusted.* is refused; symlinks take no user.* attributes: skipped, as
      // docker does.
      if (r != 0 && (errno == ENOTSUP || (errno == EPERM && (!privileged_ || is_link)))) continue;
      if (r != 0) return fail_errno(std::string("set xattr ") + key);
    }
  }
  timespec times[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                       {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
  if (archive_entry_atime_is_set(e))
    times[0] = {archive_entry_atime(e), archive_entry_atime_nsec(e)};
  int r =
      fd >= 0 ? ::futimens(fd, times) : ::utimensat(dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
  if (r != 0) return fail_errno("set times");
  return {};
}

Result<void> LayerWriter::add(archive* in, archive_entry* e, const std::string& rel) {
  const mode_t type = archive_entry_filetype(e);
  if (rel.empty()) {  // "./": the layer's root itself
    if (type != AE_IFDIR) return fail("the layer's root is not a directory");
    UniqueFd fd = FS_TRY(open_dir("", false, true));
    mode_t perm = archive_entry_mode(e) & 07777;
    archive_entry_set_perm(e, 0700);
    if (auto r = set_metadata(-1, "", fd.get(), e, false); !r) return r;
    dir_times_.push_back({"", perm, {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}});
    return {};
  }
  const std::string name = base_name(rel);
  int dir = FS_TRY(parent_of(rel));

  if (const char* link = archive_entry_hardlink(e)) {
    auto target = clean_entry_path(link);
    if (!target) return fail(target.error().wrap("hardlink target \"" + std::string(link) + "\""));
    if (target->empty() || *target == rel) return fail("hardlink to \"" + std::string(link) + "\"");
    auto tdir = open_dir(parent_rel(*target), false);
    if (!tdir) return fail(tdir.error().wrap("hardlink target \"" + std::string(link) + "\""));
    if (auto r = remove_existing(dir, name, rel); !r) return r;
    dir = FS_TRY(parent_of(rel));
    if (::linkat(tdir->get(), base_name(*target).c_str(), dir, name.c_str(), 0) != 0)
      return fail_errno("hardlink to \"" + std::string(link) + "\"");
    return {};
  }

  switch (type) {
    case AE_IFDIR: {
      struct stat st {};
      bool exists = ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
      if (exists && !S_ISDIR(st.st_mode)) {
        if (auto r = remove_existing(dir, name, rel); !r) return r;
        dir = FS_TRY(parent_of(rel));
        exists = false;
      }
      if (!exists && ::mkdirat(dir, name.c_str(), 0700) != 0) return fail_errno("mkdir");
      int raw = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (raw < 0) return fail_errno("open");
      UniqueFd fd(raw);
      // The mode waits for finish(): a 0555 directory must still take its entries.
      mode_t perm = archive_entry_mode(e) & 07777;
      archive_entry_set_perm(e, 0700);
      if (auto r = set_metadata(dir, name, fd.get(), e, false); !r) return r;
      dir_times_.push_back({rel, perm, {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}});
      return {};
    }
    case AE_IFREG: {
      if (auto r = remove_existing(dir, name, rel); !r) return r;
      dir = FS_TRY(parent_of(rel));
      int raw =
          ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (raw < 0) return fail_errno("create");
      UniqueFd fd(raw);
      if (auto r = write_data(in, fd.get(), archive_entry_size(e)); !r) return r;
      return set_metadata(dir, name, fd.get(), e, false);
    }
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(e);
      if (!target) return fail("symlink without a target");
      if (auto r = remove_existing(dir, name, rel); !r) return r;
      dir = FS_TRY(parent_of(rel));
      if (::symlinkat(target, dir, name.c_str()) != 0) return fail_errno("symlink");
      forget_cache();  // a later path may go through it
      dir = FS_TRY(parent_of(rel));
      return set_metadata(dir, name, -1, e, true);
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      if (type != AE_IFIFO && !privileged_) return fail("a device node needs root");
      if (auto r = remove_existing(dir, name, rel); !r) return r;
      dir = FS_TRY(parent_of(rel));
      mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
      if (::mknodat(dir, name.c_str(), kind | 0600, archive_entry_rdev(e)) != 0)
        return fail_errno("mknod");
      return set_metadata(dir, name, -1, e, false);
    }
    case AE_IFSOCK:
      return {};  // a socket is nothing without its process
    default:
      return fail("unknown file type");
  }
}

Result<void> LayerWriter::whiteout(const std::string& rel, std::string_view base) {
  if (base == kOpaqueWhiteout) {
    UniqueFd dir = FS_TRY(open_dir(parent_rel(rel), true, true));
    if (::fsetxattr(dir.get(), "trusted.overlay.opaque", "y", 1, 0) != 0)
      return fail_errno("make \"" + parent_rel(rel) + "\" opaque");
    return {};
  }
  std::string name(base.substr(kWhiteoutPrefix.size()));
  // aufs' own metadata (.wh..wh.plnk, .wh..wh.aufs): nothing for overlayfs.
  if (name.starts_with(kWhiteoutPrefix)) return {};
  if (name.empty() || name == "." || name == "..") return fail("invalid whiteout name");
  int dir = FS_TRY(parent_of(rel));
  if (auto r = remove_existing(dir, name, rel); !r) return r;
  dir = FS_TRY(parent_of(rel));
  // overlayfs: a whiteout is a character device 0/0 (Documentation/filesystems/overlayfs.rst).
  if (::mknodat(dir, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
    return fail_errno("create whiteout");
  return {};
}

Result<void> LayerWriter::finish() {
  forget_cache();
  // Deepest first: a parent made read-only must not stop a child's change.
  for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
    auto fd = open_dir(it->rel, false, true);
    if (!fd) return fail(fd.error());
    if (::fchmod(fd->get(), it->mode) != 0) return fail_errno("chmod \"" + it->rel + "\"");
    timespec times[2] = {it->mtime, it->mtime};
    if (::futimens(fd->get(), times) != 0) return fail_errno("set times of \"" + it->rel + "\"");
  }
  return {};
}

}  // namespace stack::fs
