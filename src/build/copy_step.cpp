// COPY, ADD and WORKDIR: the stage's layers mounted as an overlay with a fresh upper directory
// in the builder's mount namespace, files written into it with every path resolved inside the
// image's root (openat2(2) RESOLVE_IN_ROOT: an image's symlink never leads a write to the host),
// unmounted, the upper directory stored as the step's layer. Root on the host.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "build/builder.h"
#include "common/files.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"
#include "engine/container.h"
#include "fs/image_store.h"

namespace stack::build {

namespace stdfs = std::filesystem;

namespace {

int openat2_in_root(int root, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  for (;;) {
    long fd = ::syscall(SYS_openat2, root, rel.empty() ? "." : rel.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
  }
}

// An overlay mounted for one step; unmounted (lazily, if busy) when it goes.
class OverlayMount {
 public:
  OverlayMount() = default;
  OverlayMount(const OverlayMount&) = delete;
  OverlayMount& operator=(const OverlayMount&) = delete;
  ~OverlayMount() { unmount(); }
  // LOWERS lowest first (overlayfs wants the topmost first); no UPPER: read-only.
  Result<void> mount(const std::vector<stdfs::path>& lowers, const stdfs::path& upper,
                     const stdfs::path& work, const stdfs::path& target) {
    std::string opts = "lowerdir=";
    for (auto it = lowers.rbegin(); it != lowers.rend(); ++it)
      opts += (it == lowers.rbegin() ? "" : ":") + it->string();
    if (!upper.empty()) opts += ",upperdir=" + upper.string() + ",workdir=" + work.string();
    // mount(2) takes one page of options.
    if (opts.size() >= 4000)
      return fail("the image has too many layers to mount (" + std::to_string(lowers.size()) + ")");
    if (::mount("overlay", target.c_str(), "overlay", MS_NODEV, opts.c_str()) != 0)
      return fail_errno("mount overlay on " + target.string());
    target_ = target;
    return {};
  }
  Result<void> unmount() {
    if (target_.empty()) return {};
    stdfs::path t = std::exchange(target_, {});
    if (::umount2(t.c_str(), 0) != 0 && ::umount2(t.c_str(), MNT_DETACH) != 0)
      return fail_errno("unmount " + t.string());
    return {};
  }

 private:
  stdfs::path target_;
};

Result<void> make_dir(const stdfs::path& p, mode_t mode = 0700) {
  std::error_code ec;
  stdfs::create_directories(p, ec);
  if (ec) return fail("create " + p.string() + ": " + ec.message(), ec.value());
  ::chmod(p.c_str(), mode);
  return {};
}

struct Owner {
  std::optional<uid_t> uid;  // unset: the source's (COPY --from) or root's (the context)
  std::optional<gid_t> gid;
  bool keep_source = false;
  std::optional<mode_t> chmod;
};

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

// The relative form of an absolute path in the image ("/usr/bin/" -> "usr/bin").
std::string rel_of(const std::string& abs) {
  std::string out;
  size_t i = 0;
  while (i < abs.size()) {
    size_t j = abs.find('/', i);
    if (j == std::string::npos) j = abs.size();
    std::string c = abs.substr(i, j - i);
    if (c == "..") {
      size_t s = out.rfind('/');
      out = s == std::string::npos ? "" : out.substr(0, s);
    } else if (!c.empty() && c != ".") {
      out = join(out, c);
    }
    i = j + 1;
  }
  return out;
}

// REL's directories made inside ROOT (as mkdir -p), new ones owned by OWNER; REL opened.
Result<UniqueFd> make_dirs(int root, const std::string& rel, const Owner& owner) {
  std::string done;
  size_t i = 0;
  while (i <= rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    std::string c = rel.substr(i, j - i);
    i = j + 1;
    if (c.empty()) continue;
    std::string next = join(done, c);
    int fd = openat2_in_root(root, next, O_PATH | O_DIRECTORY);
    if (fd < 0 && errno == ENOENT) {
      UniqueFd parent(openat2_in_root(root, done, O_PATH | O_DIRECTORY));
      if (!parent) return fail_errno("open /" + done);
      if (::mkdirat(parent.get(), c.c_str(), 0755) != 0 && errno != EEXIST)
        return fail_errno("mkdir /" + next);
      if (owner.uid || owner.gid)
        ::fchownat(parent.get(), c.c_str(), owner.uid.value_or(0), owner.gid.value_or(0),
                   AT_SYMLINK_NOFOLLOW);
      fd = openat2_in_root(root, next, O_PATH | O_DIRECTORY);
    }
    if (fd < 0) return fail_errno("open /" + next + " in the image");
    ::close(fd);
    done = next;
  }
  UniqueFd out(openat2_in_root(root, done, O_PATH | O_DIRECTORY));
  if (!out) return fail_errno("open /" + done);
  return out;
}

Result<void> copy_data(int in, int out, const std::string& what) {
  for (;;) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
    if (n == 0) return {};
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
      return fail_errno("copy " + what);
    break;
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read " + what);
    if (n == 0) return {};
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out, buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail_errno("write " + what);
      off += w;
    }
  }
}

// SRC (whose lstat is ST) made as NAME in the directory DIR of the image.
Result<void> copy_entry(const stdfs::path& src, const struct stat& st, int dir,
                        const std::string& name, const Owner& owner, const std::string& shown) {
  uid_t uid = owner.keep_source ? st.st_uid : 0;
  gid_t gid = owner.keep_source ? st.st_gid : 0;
  if (owner.uid) uid = *owner.uid;
  if (owner.gid) gid = *owner.gid;
  mode_t perm = owner.chmod ? *owner.chmod : (st.st_mode & 07777);
  struct stat cur {};
  bool exists = ::fstatat(dir, name.c_str(), &cur, AT_SYMLINK_NOFOLLOW) == 0;
  timespec times[2] = {st.st_mtim, st.st_mtim};
  if (S_ISDIR(st.st_mode)) {
    if (exists && !S_ISDIR(cur.st_mode)) {
      if (::unlinkat(dir, name.c_str(), 0) != 0) return fail_errno("replace " + shown);
      exists = false;
    }
    if (!exists && ::mkdirat(dir, name.c_str(), 0700) != 0) return fail_errno("mkdir " + shown);
    UniqueFd d(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) return fail_errno("open " + shown);
    if (::fchown(d.get(), uid, gid) != 0) return fail_errno("chown " + shown);
    if (::fchmod(d.get(), perm) != 0) return fail_errno("chmod " + shown);
    return {};  // directory times are set after their content (see copy_item)
  }
  if (exists) {
    if (S_ISDIR(cur.st_mode))
      return fail("cannot copy " + shown + ": a directory of that name is in the image");
    if (::unlinkat(dir, name.c_str(), 0) != 0) return fail_errno("replace " + shown);
  }
  if (S_ISREG(st.st_mode)) {
    UniqueFd in(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in) return fail_errno("open " + src.string());
    UniqueFd out(::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          0600));
    if (!out) return fail_errno("create " + shown);
    if (auto r = copy_data(in.get(), out.get(), shown); !r) return r;
    // chown before chmod: chown clears the set-user-ID bits.
    if (::fchown(out.get(), uid, gid) != 0) return fail_errno("chown " + shown);
    if (::fchmod(out.get(), perm) != 0) return fail_errno("chmod " + shown);
    ::futimens(out.get(), times);
    return {};
  }
  if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(src.c_str(), buf, sizeof buf - 1);
    if (n < 0) return fail_errno("readlink " + src.string());
    buf[n] = 0;
    if (::symlinkat(buf, dir, name.c_str()) != 0) return fail_errno("symlink " + shown);
    ::fchownat(dir, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
    ::utimensat(dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return {};
  }
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return {};  // a whiteout: nothing to copy
    if (::mknodat(dir, name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0)
      return fail_errno("mknod " + shown);
    ::fchownat(dir, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
    ::fchmodat(dir, name.c_str(), perm, 0);
    return {};
  }
  return {};  // sockets: nothing a layer can hold
}

// ITEM (from SRC) copied to DEST_REL in the image: a directory's content into it, a file as it.
Result<void> copy_item(const SourceRoot& src, const SourceItem& item, int root,
                       const std::string& dest_rel, const Owner& owner) {
  auto entries = src.walk(item);
  if (!entries) return fail(entries.error());
  std::vector<std::pair<std::string, timespec>> dir_times;
  Owner dirs = owner;
  for (const auto& sub : *entries) {
    stdfs::path from = sub.empty() ? item.path : item.path / sub;
    struct stat st {};
    if (::lstat(from.c_str(), &st) != 0) return fail_errno("stat " + from.string());
    if (sub.empty() && item.is_dir) {
      // The destination directory itself: made when missing (owned as --chown says).
      auto d = make_dirs(root, dest_rel, dirs);
      if (!d) return fail(d.error());
      continue;
    }
    std::string target = item.is_dir ? join(dest_rel, sub) : dest_rel;
    size_t slash = target.rfind('/');
    std::string parent = slash == std::string::npos ? "" : target.substr(0, slash);
    std::string name = slash == std::string::npos ? target : target.substr(slash + 1);
    auto pfd = make_dirs(root, parent, dirs);
    if (!pfd) return fail(pfd.error());
    UniqueFd pd(::openat(pfd->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pd) return fail_errno("open /" + parent);
    if (auto r = copy_entry(from, st, pd.get(), name, owner, "/" + target); !r) return r;
    if (S_ISDIR(st.st_mode)) dir_times.emplace_back(target, st.st_mtim);
  }
  for (auto it = dir_times.rbegin(); it != dir_times.rend(); ++it) {
    UniqueFd d(openat2_in_root(root, it->first, O_RDONLY | O_DIRECTORY));
    timespec t[2] = {it->second, it->second};
    if (d) ::futimens(d.get(), t);
  }
  return {};
}

bool is_url(const std::string& s) {
  return s.find("://") != std::string::npos || s.rfind("git@", 0) == 0;
}

}  // namespace

Result<void> Builder::workdir_step(const Instruction& ins, StageState& st) {
  auto v = expand_word(ins.text, st.vars(), df_.escape);
  if (!v) return fail(at(ins.line) + ": WORKDIR: " + v.error().message);
  std::string dir = *v;
  if (dir.empty()) return fail(at(ins.line) + ": WORKDIR is empty");
  if (dir.front() != '/') {
    std::string base = st.recipe.config.working_dir.empty() ? "/" : st.recipe.config.working_dir;
    dir = base + "/" + dir;
  }
  dir = "/" + rel_of(dir);
  st.recipe.config.working_dir = dir;
  std::string key = next_state_id(st.id, "WORKDIR " + dir);
  if (auto hit = cached(key, st, ins.source()); !hit) return fail(hit.error());
  else if (*hit) return {};
  // The directory is made, as mkdir -p, when the image lacks it: a layer only then.
  stdfs::path work = scratch("workdir");
  stdfs::path upper = work / "upper", ovl = work / "work", merged = work / "merged";
  for (const auto& p : {upper, ovl, merged})
    if (auto r = make_dir(p, 0755); !r) return fail(r.error());
  auto rm = ScopeGuard([&] { (void)remove_tree(work); });
  bool made = false;
  {
    OverlayMount m;
    stdfs::path root_dir = upper;
    if (!st.recipe.layers.empty()) {
      if (auto r = m.mount(st.layer_dirs(host_.images), upper, ovl, merged); !r)
        return fail(r.error().wrap(at(ins.line)));
      root_dir = merged;
    }
    UniqueFd root(::open(root_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return fail_errno("open " + root_dir.string());
    UniqueFd existing(openat2_in_root(root.get(), rel_of(dir), O_PATH | O_DIRECTORY));
    if (!existing) {
      auto d = make_dirs(root.get(), rel_of(dir), Owner{});
      if (!d) return fail(d.error().wrap(at(ins.line) + ": WORKDIR"));
      made = true;
    }
    if (auto r = m.unmount(); !r) return fail(r.error());
  }
  if (!made) {
    st.id = key;
    st.recipe.history.push_back(ins.source());
    return {};
  }
  return add_layer(key, upper, st, ins.source());
}

Result<void> Builder::copy_step(const Instruction& ins, const Stage& stage, StageState& st) {
  const bool add = ins.keyword == "ADD";
  Vars vars = st.vars();
  auto err = [&](const std::string& why) { return fail(at(ins.line) + ": " + ins.keyword + " " + why); };
  std::vector<std::string> args = ins.exec;
  if (!ins.exec_form) {
    auto words = expand_words(ins.text, vars, df_.escape);
    if (!words) return err(words.error().message);
    args = *words;
  }
  if (args.empty()) return err("needs a destination");
  std::string dest = args.back();
  args.pop_back();
  stdfs::path work = scratch("copy");
  auto rm = ScopeGuard([&] { (void)remove_tree(work); });
  if (auto r = make_dir(work, 0700); !r) return fail(r.error());

  // Where the sources come from: the context, a stage, an image, or the heredocs.
  Owner owner;
  std::string from_id;
  std::optional<SourceRoot> src;
  OverlayMount from_mount;
  if (!ins.heredocs.empty()) {
    stdfs::path docs = work / "heredocs";
    if (auto r = make_dir(docs, 0755); !r) return fail(r.error());
    std::vector<std::string> kept;
    for (const auto& a : args) {
      bool is_doc = false;
      for (const auto& h : ins.heredocs)
        if (a == "<<" + h.name || a == "<<-" + h.name || a == "<<\"" + h.name + "\"" ||
            a == "<<'" + h.name + "'" || a == "<<" + h.name) {
          std::string content = h.content;
          if (h.expand) {
            auto e = expand_vars_only(content, vars, df_.escape);
            if (!e) return err(e.error().message);
            content = *e;
          }
          if (auto r = write_file(docs / h.name, content); !r) return fail(r.error());
          ::chmod((docs / h.name).c_str(), 0644);
          kept.push_back(h.name);
          is_doc = true;
        }
      if (!is_doc) return err("mixes heredocs and files: not supported");
    }
    args = kept;
    src.emplace(docs);
    from_id = "heredoc";
  } else if (const Flag* f = ins.flag("from")) {
    auto v = expand_word(f->value, vars, df_.escape);
    if (!v) return err("--from: " + v.error().message);
    int ref = stage_ref(plan_, *v, stage.index);
    StageState other;
    if (ref >= 0) {
      other = done_.at(ref);
    } else {
      auto s = image_state(*v, "", ins.line);
      if (!s) return fail(s.error());
      other = std::move(*s);
    }
    from_id = other.id;
    stdfs::path mnt = work / "from";
    if (auto r = make_dir(mnt, 0755); !r) return fail(r.error());
    auto dirs = other.layer_dirs(host_.images);
    if (dirs.size() == 1) {
      src.emplace(dirs.front());
    } else {
      if (!dirs.empty())
        if (auto r = from_mount.mount(dirs, {}, {}, mnt); !r) return fail(r.error().wrap(at(ins.line)));
      src.emplace(mnt);
    }
    owner.keep_source = true;
  } else {
    src.emplace(req_.context, rules_);
    from_id = "context";
  }
  if (args.empty()) return err("needs at least one source");

  if (const Flag* f = ins.flag("chown")) {
    auto v = expand_word(f->value, vars, df_.escape);
    if (!v) return err("--chown: " + v.error().message);
    engine::ProcessSpec p;
    auto layers = st.layer_dirs(host_.images);
    if (auto r = engine::resolve_user(*v, layers, p); !r) return err("--chown=" + *v + ": " + r.error().message);
    owner.uid = p.uid;
    // Docker: a user without a group gives the same number as the group.
    owner.gid = v->find(':') == std::string::npos ? static_cast<gid_t>(p.uid) : p.gid;
  }
  if (const Flag* f = ins.flag("chmod")) {
    const std::string& m = f->value;
    if (m.empty() || m.size() > 4 || !std::all_of(m.begin(), m.end(), [](char c) { return c >= '0' && c <= '7'; }))
      return err("--chmod=" + m + ": an octal mode is needed (e.g. 0755)");
    owner.chmod = static_cast<mode_t>(std::stoul(m, nullptr, 8));
  }

  std::vector<std::pair<SourceItem, bool>> items;  // item, is an archive to extract (ADD)
  for (const auto& a : args) {
    if (is_url(a)) {
      if (add)
        return err(a + ": ADD of a URL is not supported: a build reaches no network for its "
                       "sources; download the file into the build context");
      return err(a + ": COPY takes no URL");
    }
    auto found = src->resolve(a);
    if (!found) return err(found.error().message);
    for (auto& i : *found) items.emplace_back(std::move(i), false);
  }
  std::vector<SourceItem> plain;
  for (const auto& [i, _] : items) plain.push_back(i);
  auto hash = src->content_hash(plain);
  if (!hash) return fail(hash.error().wrap(at(ins.line)));

  std::string workdir = st.recipe.config.working_dir.empty() ? "/" : st.recipe.config.working_dir;
  std::string dest_abs = dest.front() == '/' ? dest : workdir + "/" + dest;
  bool dest_is_dir = dest.back() == '/' || (dest.size() >= 2 && dest.substr(dest.size() - 2) == "/.") ||
                     dest == ".";
  if (items.size() > 1 && !dest_is_dir)
    return err("with more than one source file, the destination must be a directory ending in /");
  std::string key_text = ins.keyword + " from=" + from_id + " chown=" +
                         (owner.uid ? std::to_string(*owner.uid) + ":" + std::to_string(*owner.gid) : "") +
                         " chmod=" + (owner.chmod ? std::to_string(*owner.chmod) : "") + " dest=" +
                         dest_abs + (dest_is_dir ? "/" : "") + " content=" + *hash;
  for (const auto& a : args) key_text += " src=" + a;
  std::string key = next_state_id(st.id, key_text);
  if (auto hit = cached(key, st, ins.source()); !hit) return fail(hit.error());
  else if (*hit) return {};

  stdfs::path upper = work / "upper", ovl = work / "work", merged = work / "merged";
  for (const auto& p : {upper, ovl, merged})
    if (auto r = make_dir(p, 0755); !r) return fail(r.error());
  {
    OverlayMount m;
    stdfs::path root_dir = upper;
    if (!st.recipe.layers.empty()) {
      if (auto r = m.mount(st.layer_dirs(host_.images), upper, ovl, merged); !r)
        return fail(r.error().wrap(at(ins.line)));
      root_dir = merged;
    }
    UniqueFd root(::open(root_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return fail_errno("open " + root_dir.string());
    std::string dest_rel = rel_of(dest_abs);
    if (!dest_is_dir) {
      // An existing directory of that name takes the file inside, as Docker does.
      UniqueFd d(openat2_in_root(root.get(), dest_rel, O_PATH | O_DIRECTORY));
      dest_is_dir = static_cast<bool>(d);
    }
    int n = 0;
    for (const auto& [item, _] : items) {
      std::string target = item.is_dir || !dest_is_dir ? dest_rel : join(dest_rel, item.name);
      if (add && !item.is_dir && from_id == "context") {
        // ADD: a local tar archive is unpacked into the destination directory.
        stdfs::path x = work / ("x" + std::to_string(++n));
        if (auto r = make_dir(x, 0755); !r) return fail(r.error());
        auto unpacked = fs::unpack_if_archive(item.path, x);
        if (!unpacked) return fail(unpacked.error().wrap(at(ins.line) + ": ADD"));
        if (*unpacked) {
          SourceRoot xr(x);
          Owner keep = owner;
          keep.keep_source = true;
          auto r = copy_item(xr, SourceItem{x, "", item.name, true}, root.get(), dest_rel, keep);
          if (!r) return fail(r.error().wrap(at(ins.line) + ": ADD " + item.name));
          continue;
        }
      }
      if (auto r = copy_item(*src, item, root.get(), target, owner); !r)
        return fail(r.error().wrap(at(ins.line) + ": " + ins.keyword + " " + item.name));
    }
    root.reset();
    if (auto r = from_mount.unmount(); !r) return fail(r.error());
    if (auto r = m.unmount(); !r) return fail(r.error());
  }
  return add_layer(key, upper, st, ins.source());
}

}  // namespace stack::build
