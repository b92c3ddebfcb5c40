// Image layers for a user-namespaced container: idmapped mounts where the kernel and the
// layer's filesystem allow them, else a copy of each layer with every owner shifted into the
// container's range, made once per mapping and layer and shared by every container that uses
// them. Root on the host; the copies live under a directory the reconciler names (0700).
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/unique_fd.h"
#include "engine/userns.h"

namespace stack::engine {

namespace {

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
struct MountAttr {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

// The container's id for a host file's ID: shifted into the range, or the overflow id (65534,
// "nobody") for one the range cannot hold, as the kernel shows unmapped ids.
uint32_t shifted(uint32_t id, uint32_t base, uint32_t count) {
  return base + (id < count ? id : 65534u);
}

// Copies every extended attribute (overlay opaque directories, file capabilities, ACLs) of the
// entry FROM to TO; one the destination refuses is left out.
void copy_xattrs(const std::string& from, const std::string& to) {
  std::vector<char> names(65536);
  ssize_t n = ::llistxattr(from.c_str(), names.data(), names.size());
  for (ssize_t i = 0; i < n;) {
    const char* name = names.data() + i;
    std::vector<char> value(65536);
    ssize_t len = ::lgetxattr(from.c_str(), name, value.data(), value.size());
    if (len >= 0) (void)::lsetxattr(to.c_str(), name, value.data(), static_cast<size_t>(len), 0);
    i += static_cast<ssize_t>(std::strlen(name)) + 1;
  }
}

Result<void> copy_file(const std::string& from, const std::string& to, mode_t mode) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!in) return fail_errno("open " + from);
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777));
  if (!out) return fail_errno("create " + to);
  for (;;) {  // copy_file_range: in the kernel, and a reflink where the filesystem can
    ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
    if (n == 0) return {};
    if (n < 0) return fail_errno("copy " + from);
  }
}

class ShiftedCopy {
 public:
  ShiftedCopy(const IdMapping& map) : map_(map) {}

  // Copies the tree FROM to TO (which must not exist), depth first.
  Result<void> copy(const std::string& from, const std::string& to) {
    struct stat st {};
    if (::lstat(from.c_str(), &st) != 0) return fail_errno("stat " + from);
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(to.c_str(), 0700) != 0) return fail_errno("mkdir " + to);
      std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(from.c_str()), ::closedir);
      if (!dir) return fail_errno("open " + from);
      while (auto* e = ::readdir(dir.get())) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        if (auto r = copy(from + "/" + name, to + "/" + name); !r) return r;
      }
    } else if (S_ISREG(st.st_mode)) {
      // Hard links stay hard links: the first copy of an inode is linked to by the others.
      auto key = std::pair{st.st_dev, st.st_ino};
      if (st.st_nlink > 1) {
        if (auto it = links_.find(key); it != links_.end()) {
          if (::link(it->second.c_str(), to.c_str()) != 0) return fail_errno("link " + to);
          return {};
        }
        links_[key] = to;
      }
      if (auto r = copy_file(from, to, st.st_mode); !r) return r;
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(from.c_str(), target.data(), target.size());
      if (n < 0) return fail_errno("readlink " + from);
      target.resize(static_cast<size_t>(n));
      if (::symlink(target.c_str(), to.c_str()) != 0) return fail_errno("symlink " + to);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
      // Device nodes include overlayfs whiteouts (0/0 character devices).
      if (::mknod(to.c_str(), st.st_mode, st.st_rdev) != 0) return fail_errno("mknod " + to);
    } else {
      return {};  // a socket: nothing to copy
    }
    copy_xattrs(from, to);
    if (::lchown(to.c_str(), shifted(st.st_uid, map_.uid_base, map_.count),
                 shifted(st.st_gid, map_.gid_base, map_.count)) != 0)
      return fail_errno("chown " + to);
    // After the chown, which clears setuid and setgid bits.
    if (!S_ISLNK(st.st_mode) && ::chmod(to.c_str(), st.st_mode & 07777) != 0)
      return fail_errno("chmod " + to);
    timespec times[2] = {st.st_atim, st.st_mtim};
    (void)::utimensat(AT_FDCWD, to.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return {};
  }

 private:
  IdMapping map_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

}  // namespace

bool idmap_supported(const std::filesystem::path& layer, int userns_fd) {
  // Probed once per filesystem: what one layer's filesystem allows, all of them there do.
  static std::mutex mutex;
  static std::map<dev_t, bool> known;
  struct stat st {};
  if (::stat(layer.c_str(), &st) != 0) return false;
  std::lock_guard lock(mutex);
  if (auto it = known.find(st.st_dev); it != known.end()) return it->second;
  UniqueFd tree(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, layer.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  MountAttr attr{MOUNT_ATTR_IDMAP, 0, 0, static_cast<uint64_t>(userns_fd)};
  bool ok = tree && ::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr,
                              sizeof attr) == 0;
  known[st.st_dev] = ok;
  return ok;
}

Result<std::filesystem::path> shifted_layer(const std::filesystem::path& layer,
                                            const IdMapping& map,
                                            const std::filesystem::path& cache) {
  auto dir = cache / (std::to_string(map.uid_base) + "-" + std::to_string(map.gid_base) + "-" +
                      std::to_string(map.count));
  auto target = dir / layer.filename();
  if (::access(target.c_str(), F_OK) == 0) return target;
  if (auto r = make_dirs(dir, 0700); !r) return fail(r.error());
  // Made under a temporary name and renamed: a copy interrupted half-way is never taken for
  // whole, and two containers copying the same layer at once both end with the one that won.
  std::mt19937_64 rng(std::random_device{}());
  auto temp = dir / (".tmp-" + layer.filename().string() + "-" + std::to_string(rng()));
  ShiftedCopy copier(map);
  auto made = copier.copy(layer.string(), temp.string());
  if (made && ::rename(temp.c_str(), target.c_str()) == 0) return target;
  int err = errno;
  (void)remove_tree(temp);
  if (!made) return fail(made.error().wrap("copy layer " + layer.string() + " for a user namespace"));
  if (err == EEXIST || err == ENOTEMPTY) return target;  // another start made it first
  return fail_errno("rename " + temp.string(), err);
}

}  // namespace stack::engine
