// See tree_copy.h. The last component of every path written is created with O_EXCL /
// O_NOFOLLOW after whatever was there is unlinked, so a symlink already in the tree (or made
// by an earlier entry) is replaced, never written through; parents are resolved by openat2
// under the root (openat2(2): RESOLVE_IN_ROOT treats absolute links and '..' as if the root
// were '/').
#include "common/tree_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <map>
#include <vector>
#include <vector>

namespace stack::copy {

namespace {

constexpr int kMaxDepth = 256;
constexpr size_t kChunk = 64 * 1024;

// PATH as (parent, last component); "/" and "" give ("/", "").
std::pair<std::string, std::string> split(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/" || path.empty()) return {"/", ""};
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == ".") return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

struct Packer {
  const PackOptions& options;
  const std::function<Result<void>(std::string_view)>& sink;
  std::map<std::pair<dev_t, ino_t>, std::string> links;  // files with nlink > 1 seen
  std::vector<char> buf = std::vector<char>(kChunk);

  uint64_t map(const IdMap& m, uint64_t id) {
    if (!m) return id;
    return m(id).value_or(65534);
  }

  Result<void> file_data(int fd, uint64_t size, const std::string& name) {
    uint64_t left = size;
    while (left > 0) {
      ssize_t n = ::read(fd, buf.data(), static_cast<size_t>(std::min<uint64_t>(left, kChunk)));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("read " + name);
      if (n == 0) break;  // shrank while read: padded with zeros below, as tar does
      if (auto r = sink(std::string_view(buf.data(), static_cast<size_t>(n))); !r) return r;
      left -= static_cast<uint64_t>(n);
    }
    if (left > 0)
      if (auto r = sink(std::string(static_cast<size_t>(left), '\0')); !r) return r;
    return sink(std::string(tar::padding(size), '\0'));
  }

  Result<void> children(int dir, const std::string& arcname, int depth) {
    if (depth > kMaxDepth) return fail("over " + std::to_string(kMaxDepth) + " levels deep");
    int copy = ::fcntl(dir, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) return fail_errno("dup");
    DIR* d = ::fdopendir(copy);
    if (!d) {
      ::close(copy);
      return fail_errno("list " + (arcname.empty() ? std::string(".") : arcname));
    }
    std::vector<std::string> names;
    while (dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names)
      if (auto r = node(dir, n, arcname.empty() ? n : arcname + "/" + n, depth + 1); !r) return r;
    return {};
  }

  // The entry LEAF of directory PARENT, archived as ARCNAME; never follows LEAF itself.
  Result<void> node(int parent, const std::string& leaf, const std::string& arcname, int depth) {
    struct stat st {};
    if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT && depth > 0) return {};  // removed while we walked
      return fail_errno("stat " + arcname);
    }
    tar::Entry e;
    e.name = arcname;
    e.mode = st.st_mode & 07777;
    e.uid = map(options.uid, st.st_uid);
    e.gid = map(options.gid, st.st_gid);
    e.mtime = st.st_mtim.tv_sec;
    if (S_ISREG(st.st_mode)) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (st.st_nlink > 1) {
        if (auto seen = links.find(key); seen != links.end()) {
          e.kind = tar::Kind::hardlink;
          e.linkname = seen->second;
          return sink(tar::header(e));
        }
        links[key] = arcname;
      }
      // O_NONBLOCK: a file swapped for a FIFO after the stat never blocks the copy.
      UniqueFd fd(::openat(parent, leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!fd) return fail_errno("open " + arcname);
      struct stat now {};
      if (::fstat(fd.get(), &now) != 0 || !S_ISREG(now.st_mode) || now.st_ino != st.st_ino)
        return fail("copy " + arcname + ": changed while it was read");
      e.kind = tar::Kind::file;
      e.size = static_cast<uint64_t>(now.st_size);
      if (auto r = sink(tar::header(e)); !r) return r;
      return file_data(fd.get(), e.size, arcname);
    }
    if (S_ISDIR(st.st_mode)) {
      UniqueFd fd(::openat(parent, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) return fail_errno("open " + arcname);
      e.kind = tar::Kind::directory;
      if (auto r = sink(tar::header(e)); !r) return r;
      return children(fd.get(), arcname, depth);
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(4096, '\0');
      ssize_t n = ::readlinkat(parent, leaf.c_str(), target.data(), target.size());
      if (n < 0) return fail_errno("read link " + arcname);
      target.resize(static_cast<size_t>(n));
      e.kind = tar::Kind::symlink;
      e.linkname = target;
      return sink(tar::header(e));
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
      e.kind = S_ISCHR(st.st_mode)   ? tar::Kind::chardev
               : S_ISBLK(st.st_mode) ? tar::Kind::blockdev
                                     : tar::Kind::fifo;
      e.devmajor = major(st.st_rdev);
      e.devminor = minor(st.st_rdev);
      return sink(tar::header(e));
    }
    return {};  // a socket: not archived, as tar does
  }
};

Result<std::pair<uint64_t, uint64_t>> owner_of(const tar::Entry& e, const UnpackOptions& o) {
  if (o.uid || o.gid) {
    auto uid = o.uid ? o.uid(e.uid) : std::optional<uint64_t>(e.uid);
    auto gid = o.gid ? o.gid(e.gid) : std::optional<uint64_t>(e.gid);
    if (!uid || !gid)
      return fail("owner " + std::to_string(e.uid) + ":" + std::to_string(e.gid) +
                  " has no id in the container's user namespace");
    return std::make_pair(*uid, *gid);
  }
  if (o.owner) return std::make_pair(uint64_t{o.owner->first}, uint64_t{o.owner->second});
  return std::make_pair(~uint64_t{0}, ~uint64_t{0});
}

Result<void> set_owner(int fd, const std::pair<uint64_t, uint64_t>& owner) {
  if (owner.first == ~uint64_t{0}) return {};
  if (::fchown(fd, static_cast<uid_t>(owner.first), static_cast<gid_t>(owner.second)) != 0)
    return fail_errno("chown");
  return {};
}

Result<void> write_entry(const Tree& tree, const Destination& dest, int parent,
                         const std::string& leaf, const std::string& name, const tar::Entry& e,
                         tar::Reader& reader, const UnpackOptions& options, Unpacked& out) {
  auto owner = owner_of(e, options);
  if (!owner) return fail(owner.error());
  struct stat old {};
  bool exists = ::fstatat(parent, leaf.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
  if (e.kind == tar::Kind::directory) {
    if (exists && !S_ISDIR(old.st_mode)) {
      if (::unlinkat(parent, leaf.c_str(), 0) != 0) return fail_errno("replace " + name);
      exists = false;
    }
    if (!exists && ::mkdirat(parent, leaf.c_str(), 0700) != 0) return fail_errno("mkdir " + name);
    UniqueFd fd(::openat(parent, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return fail_errno("open " + name);
    if (auto r = set_owner(fd.get(), *owner); !r) return fail(r.error().wrap(name));
    if (::fchmod(fd.get(), e.mode) != 0) return fail_errno("chmod " + name);
    return {};
  }
  if (exists && S_ISDIR(old.st_mode))
    return fail("cannot overwrite directory " + name + " with a non-directory");
  if (exists && ::unlinkat(parent, leaf.c_str(), 0) != 0) return fail_errno("replace " + name);
  switch (e.kind) {
    case tar::Kind::file: {
      UniqueFd fd(::openat(parent, leaf.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!fd) return fail_errno("create " + name);
      std::vector<char> buf(kChunk);
      for (;;) {
        auto n = reader.read(buf.data(), buf.size());
        if (!n) return fail(n.error().wrap(name));
        if (*n == 0) break;
        for (size_t done = 0; done < *n;) {
          ssize_t w = ::write(fd.get(), buf.data() + done, *n - done);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return fail_errno("write " + name);
          done += static_cast<size_t>(w);
        }
        out.bytes += *n;
      }
      // chown before chmod: chown(2) clears the setuid and setgid bits.
      if (auto r = set_owner(fd.get(), *owner); !r) return fail(r.error().wrap(name));
      if (::fchmod(fd.get(), e.mode) != 0) return fail_errno("chmod " + name);
      timespec times[2] = {{0, UTIME_OMIT}, {e.mtime, 0}};
      (void)::futimens(fd.get(), times);
      return {};
    }
    case tar::Kind::symlink: {
      if (::symlinkat(e.linkname.c_str(), parent, leaf.c_str()) != 0)
        return fail_errno("symlink " + name);
      if (owner->first != ~uint64_t{0} &&
          ::fchownat(parent, leaf.c_str(), static_cast<uid_t>(owner->first),
                     static_cast<gid_t>(owner->second), AT_SYMLINK_NOFOLLOW) != 0)
        return fail_errno("chown " + name);
      return {};
    }
    case tar::Kind::hardlink: {
      auto target = tar::clean_name(e.linkname);
      if (!target) return fail(target.error());
      std::string t = *target;
      if (dest.rename) t = *dest.rename + (t.find('/') == std::string::npos
                                               ? std::string()
                                               : t.substr(t.find('/')));
      auto [tdir, tleaf] = split(join(dest.dir, t));
      auto tparent = open_in(tree, tdir, O_PATH | O_DIRECTORY);
      if (!tparent) return fail(tparent.error().wrap("link " + name));
      if (::linkat(tparent->get(), tleaf.c_str(), parent, leaf.c_str(), 0) != 0)
        return fail_errno("link " + name + " to " + e.linkname);
      return {};
    }
    default: {
      mode_t type = e.kind == tar::Kind::chardev   ? S_IFCHR
                    : e.kind == tar::Kind::blockdev ? S_IFBLK
                                                    : S_IFIFO;
      if (::mknodat(parent, leaf.c_str(), type | (e.mode & 0777),
                    makedev(e.devmajor, e.devminor)) != 0)
        return fail_errno("mknod " + name);
      if (owner->first != ~uint64_t{0} &&
          ::fchownat(parent, leaf.c_str(), static_cast<uid_t>(owner->first),
                     static_cast<gid_t>(owner->second), AT_SYMLINK_NOFOLLOW) != 0)
        return fail_errno("chown " + name);
      return {};
    }
  }
}

}  // namespace

Result<UniqueFd> open_in(const Tree& tree, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = tree.in_root ? (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) : 0;
  const std::string& p = path.empty() ? std::string(".") : path;
  for (int attempt = 0;; attempt++) {
    long fd = ::syscall(SYS_openat2, tree.root, p.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    // RESOLVE_IN_ROOT answers EAGAIN when a rename raced with the lookup (openat2(2)).
    if (errno == EAGAIN && attempt < 16) continue;
    return fail_errno(p);
  }
}

bool names_contents(std::string_view path) {
  return path == "." || (path.size() >= 2 && path.substr(path.size() - 2) == "/.");
}

Result<void> pack(const Tree& tree, const std::string& source, const PackOptions& options,
                  const std::function<Result<void>(std::string_view)>& sink) {
  Packer packer{options, sink, {}, std::vector<char>(kChunk)};
  auto [parent, leaf] = split(source);
  if (names_contents(source) || leaf.empty()) {
    auto dir = open_in(tree, source, O_RDONLY | O_DIRECTORY);
    if (!dir) return fail(dir.error());
    if (auto r = packer.children(dir->get(), "", 0); !r) return r;
  } else {
    auto dir = open_in(tree, parent, O_PATH | O_DIRECTORY);
    if (!dir) return fail(dir.error());
    const std::string& name = options.name.empty() ? leaf : options.name;
    if (auto r = packer.node(dir->get(), leaf, name, 0); !r) return r;
  }
  return sink(tar::trailer());
}

Result<std::string> follow_links(const Tree& tree, const std::string& path) {
  std::string at = path;
  for (int hops = 0; hops < 40; hops++) {  // as the kernel's own limit (path_resolution(7))
    auto fd = open_in(tree, at, O_PATH | O_NOFOLLOW);
    if (!fd) return fail(fd.error());
    struct stat st {};
    if (::fstatat(fd->get(), "", &st, AT_EMPTY_PATH) != 0) return fail_errno(at);
    if (!S_ISLNK(st.st_mode)) return at;
    std::vector<char> target(static_cast<size_t>(PATH_MAX) + 1);
    ssize_t n = ::readlinkat(fd->get(), "", target.data(), target.size() - 1);
    if (n < 0) return fail_errno("readlink " + at);
    std::string to(target.data(), static_cast<size_t>(n));
    if (to.empty() || to.front() != '/') to = split(at).first + "/" + to;
    at = to;
  }
  return fail(path + ": too many levels of symbolic links");
}

Result<Destination> destination(const Tree& tree, const std::string& dest, bool contents,
                                bool parents) {
  if (contents && parents) {  // each directory made under the one before, resolved in the tree
    std::string made;
    for (size_t i = 0; i <= dest.size();) {
      size_t slash = dest.find('/', i);
      if (slash == std::string::npos) slash = dest.size();
      std::string part = dest.substr(i, slash - i);
      i = slash + 1;
      if (part.empty() || part == ".") continue;
      if (part == "..") return fail("the destination " + dest + " has a '..'");
      auto dir = open_in(tree, made.empty() ? (dest.front() == '/' ? "/" : ".") : made,
                         O_PATH | O_DIRECTORY);
      if (!dir) return fail(dir.error());
      if (::mkdirat(dir->get(), part.c_str(), 0755) != 0 && errno != EEXIST)
        return fail_errno("mkdir " + made + "/" + part);
      made += (made.empty() && dest.front() != '/' ? "" : "/") + part;
    }
  }
  Destination out;
  out.wants_dir = !dest.empty() && dest.back() == '/';
  auto [parent, leaf] = split(dest);
  auto fd = open_in(tree, dest, O_PATH);
  if (fd) {
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return fail_errno(dest);
    if (S_ISDIR(st.st_mode)) {
      out.dir = dest;
      return out;
    }
    if (contents || out.wants_dir) return fail(dest + " is not a directory");
    out.dir = parent;
    out.rename = leaf;
    out.was_file = true;
    return out;
  }
  if (fd.error().sys_errno != ENOENT) return fail(fd.error());
  auto dir = open_in(tree, parent, O_PATH | O_DIRECTORY);
  if (!dir)
    return fail(dir.error().sys_errno == ENOENT ? "no such directory: " + parent
                                                : dir.error().message);
  if (contents) {
    if (::mkdirat(dir->get(), leaf.c_str(), 0755) != 0 && errno != EEXIST)
      return fail_errno("mkdir " + dest);
    out.dir = dest;
    return out;
  }
  out.dir = parent;
  out.rename = leaf;
  return out;
}

Result<Unpacked> unpack(const Tree& tree, const Destination& dest, tar::Reader& reader,
                        const UnpackOptions& options) {
  Unpacked out;
  bool first = true;
  for (;;) {
    auto next = reader.next();
    if (!next) return fail(next.error());
    if (!*next) break;
    const tar::Entry& e = **next;
    auto clean = tar::clean_name(e.name);
    if (!clean) return fail(clean.error());
    std::string name = *clean;
    if (name.empty()) continue;  // the archive's top directory itself ("./")
    if (dest.rename) {
      size_t slash = name.find('/');
      if (first && slash == std::string::npos) {
        if (e.kind == tar::Kind::directory && dest.was_file)
          return fail("cannot copy a directory onto the file " + join(dest.dir, *dest.rename));
        if (e.kind != tar::Kind::directory && dest.wants_dir)
          return fail(join(dest.dir, *dest.rename) + "/ is not a directory");
      }
      name = *dest.rename + (slash == std::string::npos ? std::string() : name.substr(slash));
    }
    first = false;
    auto [dir, leaf] = split(join(dest.dir, name));
    auto parent = open_in(tree, dir, O_PATH | O_DIRECTORY);
    if (!parent) return fail(parent.error().wrap("copy " + name));
    if (auto r = write_entry(tree, dest, parent->get(), leaf, name, e, reader, options, out); !r)
      return fail(r.error());
    out.entries++;
  }
  return out;
}

}  // namespace stack::copy
