// See private_root.h. Modes are changed through a descriptor opened with O_NOFOLLOW, so a
// symlink planted in the tree (by a container, in its own directory) never redirects a chmod.
#include "common/private_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>
#include <system_error>

#include "common/unique_fd.h"

namespace stack {

namespace fs = std::filesystem;

namespace {

// Removes group and other bits from PATH if it is a directory or regular file (not a symlink,
// device or socket). A missing PATH is not an error: it was never made, or is being removed.
Result<void> tighten(const fs::path& path, bool want_dir) {
  // O_PATH cannot fchmod; O_RDONLY on a directory or an ordinary file has no side effect.
  // O_NONBLOCK: a FIFO someone put there must not hang the open.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) {
    if (errno == ENOENT || errno == ELOOP || errno == ENXIO) return {};
    return fail_errno("open " + path.string());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("stat " + path.string());
  if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) return {};
  mode_t mode = st.st_mode & 07777;
  if ((mode & 077) == 0) return {};
  if (::fchmod(fd.get(), mode & ~static_cast<mode_t>(077)) != 0)
    return fail_errno("chmod " + path.string());
  return {};
}

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    out.push_back(it->path());
  return out;
}

// Every regular file directly in DIR, except the names in KEEP.
Result<void> tighten_files_in(const fs::path& dir, const std::set<std::string>& keep = {}) {
  for (const fs::path& p : entries(dir))
    if (!keep.count(p.filename().string()))
      if (auto r = tighten(p, false); !r) return r;
  return {};
}

}  // namespace

Result<void> make_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail("create directory " + dir.string() + ": " + ec.message(), ec.value());
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + dir.string());
  if (::fchmod(fd.get(), 0700) != 0) return fail_errno("chmod " + dir.string());
  return {};
}

Result<void> secure_state_root(const fs::path& root) {
  const std::string ctx = "secure state root " + root.string();
  for (const fs::path& d : {root, root / "containers", root / "images"})
    if (auto r = make_private_dir(d); !r) return fail(r.error().wrap(ctx));
  // state.db, its -wal and -shm, state.key, and whatever else stack keeps at the top.
  if (auto r = tighten_files_in(root); !r) return fail(r.error().wrap(ctx));
  // A container's directory: its logs and exit record are private; hosts, hostname and
  // resolv.conf are bind-mounted into it and read by its non-root users. rootfs/, upper/ and
  // work/ are the container's own tree: untouched (upper/ is its "/", 0755 on purpose).
  for (const fs::path& c : entries(root / "containers")) {
    if (auto r = tighten(c, true); !r) return fail(r.error().wrap(ctx));
    if (auto r = tighten_files_in(c, {"hosts", "hostname", "resolv.conf"}); !r)
      return fail(r.error().wrap(ctx));
  }
  const fs::path images = root / "images";
  for (const fs::path& d : {images / "blobs", images / "blobs/sha256", images / "layers"})
    if (auto r = tighten(d, true); !r) return fail(r.error().wrap(ctx));
  for (const fs::path& d : {images, images / "blobs/sha256"})
    if (auto r = tighten_files_in(d); !r) return fail(r.error().wrap(ctx));
  if (auto r = tighten(root / "volumes", true); !r) return fail(r.error().wrap(ctx));
  return {};
}

}  // namespace stack
