#include "common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <system_error>
#include <vector>

#include "common/unique_fd.h"

namespace stack {

namespace fs = std::filesystem;

Result<std::string> read_file(const fs::path& path) {
  return read_file(path, SIZE_MAX - 1, "");
}

Result<std::string> read_file(const fs::path& path, size_t max_bytes, std::string_view what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path.string());
  auto too_large = [&] {
    return fail(path.string() + " is larger than the limit of " + format_size(max_bytes) +
                (what.empty() ? std::string() : " for " + std::string(what)),
                EFBIG);
  };
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode)) {
    if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_large();
  }
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) return too_large();
  }
  return out;
}

std::string format_size(uint64_t bytes) {
  // The largest unit it reaches; exact when it divides, else one decimal: "16 MiB", "2.0 GiB".
  static const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  int u = 0;
  uint64_t unit = 1024;
  while (u < 3 && bytes >= unit * 1024) {
    unit *= 1024;
    ++u;
  }
  if (bytes % unit == 0) return std::to_string(bytes / unit) + " " + units[u];
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", static_cast<double>(bytes) / static_cast<double>(unit),
                units[u]);
  return buf;
}

static Result<void> write_all(int fd, std::string_view content, const fs::path& path) {
  while (!content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write " + path.string());
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<void> write_file(const fs::path& path, std::string_view content) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return fail_errno("open " + path.string());
  return write_all(fd.get(), content, path);
}

Result<void> write_file_atomic(const fs::path& path, std::string_view content, unsigned mode) {
  fs::path tmp = path;
  tmp += ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return fail_errno("open " + tmp.string());
  if (auto r = write_all(fd.get(), content, tmp); !r) return r;
  if (::fsync(fd.get()) != 0) return fail_errno("fsync " + tmp.string());
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail_errno("rename " + tmp.string());
  return {};
}

Result<void> make_dirs(const fs::path& path, unsigned mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return fail("create directory " + path.string() + ": " + ec.message(), ec.value());
  ::chmod(path.c_str(), mode);
  return {};
}

namespace {

// The mount NAME (under DIR; "" for DIR itself) is on, by statx's mount id (Linux 5.8): a
// bind mount of a directory of the same file system has the same st_dev, so st_dev cannot
// tell it apart. Its type in MODE.
Result<uint64_t> mount_of(int dir, const char* name, mode_t* mode = nullptr) {
  struct statx stx {};
  int flags = AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC | (*name ? 0 : AT_EMPTY_PATH);
  if (::statx(dir, name, flags, STATX_TYPE | STATX_MNT_ID, &stx) != 0)
    return fail_errno(std::string("statx ") + name);
  if (!(stx.stx_mask & STATX_MNT_ID))
    return fail("statx gave no mount id (Linux 5.8 or later is needed)", ENOSYS);
  if (mode) *mode = stx.stx_mode;
  return stx.stx_mnt_id;
}

// Removes what DIR (open, at PATH) holds without entering another mount than MNT: a mount found
// below is left as it is, with the directories above it, and added to STOPPED.
Result<void> remove_contents(int dir, const fs::path& path, uint64_t mnt,
                             std::vector<std::string>& stopped) {
  std::vector<std::string> names;
  {
    int copy = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
    DIR* d = copy < 0 ? nullptr : ::fdopendir(copy);
    if (!d) {
      if (copy >= 0) ::close(copy);
      return fail_errno("read directory " + path.string());
    }
    // Read whole before anything is removed: removing while reading may skip entries.
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
  }
  for (const auto& name : names) {
    fs::path at = path / name;
    mode_t mode = 0;
    auto on = mount_of(dir, name.c_str(), &mode);
    if (!on) {
      if (on.error().sys_errno == ENOENT) continue;
      return fail(on.error().wrap("remove " + at.string()));
    }
    if (*on != mnt) {  // something is mounted here (a bind mount left behind): not ours to empty
      stopped.push_back(at.string());
      continue;
    }
    if (S_ISDIR(mode)) {
      UniqueFd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) {
        if (errno == ENOENT) continue;
        return fail_errno("open " + at.string());
      }
      size_t before = stopped.size();
      if (auto r = remove_contents(sub.get(), at, mnt, stopped); !r) return r;
      if (stopped.size() != before) continue;  // it holds a mount: it stays
      if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return fail_errno("remove " + at.string());
    } else if (::unlinkat(dir, name.c_str(), 0) != 0 && errno != ENOENT) {
      return fail_errno("remove " + at.string());
    }
  }
  return {};
}

}  // namespace

Result<void> remove_tree(const fs::path& path) {
  mode_t mode = 0;
  auto on = mount_of(AT_FDCWD, path.c_str(), &mode);
  if (!on) {
    // A path the kernel refuses as too long was never made either.
    int e = on.error().sys_errno;
    if (e == ENOENT || e == ENAMETOOLONG || e == ENOTDIR) return {};
    return fail(on.error().wrap("remove " + path.string()));
  }
  if (!S_ISDIR(mode)) {  // a file, or a symlink (removed, never followed)
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + path.string());
    return {};
  }
  fs::path parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  auto parent_on = mount_of(AT_FDCWD, parent.c_str());
  if (!parent_on) return fail(parent_on.error().wrap("remove " + path.string()));
  if (*parent_on != *on)
    return fail("remove " + path.string() + ": it is a mount point (still mounted): not removed",
                EBUSY);
  UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) {
    if (errno == ENOENT) return {};
    return fail_errno("open " + path.string());
  }
  std::vector<std::string> stopped;
  if (auto r = remove_contents(dir.get(), path, *on, stopped); !r) return r;
  if (!stopped.empty()) {
    std::string list;
    for (const auto& m : stopped) list += (list.empty() ? "" : ", ") + m;
    return fail("remove " + path.string() + ": stopped at " + list +
                (stopped.size() == 1 ? ", a mount" : ", mounts") +
                " still in place (a bind mount left behind?): nothing on " +
                (stopped.size() == 1 ? "it" : "them") +
                " was removed; unmount, then remove again",
                EBUSY);
  }
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + path.string());
  return {};
}

}  // namespace stack
