// The host side of a service's storage (see volumes.h): named volumes' directories (mounted
// as mount(8) would with driver_opts) and their removal off the loop, and secret files on a
// tmpfs under the run root, never on a disk. Nothing here reads the stack file.
#include <fcntl.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "common/files.h"
#include "common/log.h"
#include "reconciler/volumes.h"

namespace stack::reconciler {

namespace {

// STATX_ATTR_MOUNT_ROOT (statx(2), Linux 5.8): a bind of a directory of the same filesystem
// has the same st_dev as its parent, so comparing devices would miss it.
bool is_mountpoint(const std::filesystem::path& dir) {
  struct statx st {};
  if (::statx(AT_FDCWD, dir.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &st) != 0)
    return false;
  return (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
         (st.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

// mount(8)'s `-o` words that are flags; the rest is the filesystem's data.
unsigned long mount_flag(const std::string& o, bool& known) {
  static const std::map<std::string, unsigned long> flags = {{"ro", MS_RDONLY},
                                                             {"rw", 0},
                                                             {"nosuid", MS_NOSUID},
                                                             {"nodev", MS_NODEV},
                                                             {"noexec", MS_NOEXEC},
                                                             {"sync", MS_SYNCHRONOUS},
                                                             {"bind", MS_BIND},
                                                             {"rbind", MS_BIND | MS_REC},
                                                             {"noatime", MS_NOATIME},
                                                             {"relatime", MS_RELATIME},
                                                             {"nodiratime", MS_NODIRATIME},
                                                             {"defaults", 0}};
  auto it = flags.find(o);
  known = it != flags.end();
  return known ? it->second : 0;
}

bool on_tmpfs(const std::filesystem::path& dir) {
  struct statfs fs {};
  return ::statfs(dir.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

// The tmpfs write_secret_files mounted (its source names it), not a run root's own.
bool owns_tmpfs(const std::filesystem::path& dir) {
  std::ifstream mounts("/proc/self/mounts");
  for (std::string src, target, rest; mounts >> src >> target && std::getline(mounts, rest);)
    if (src == "stack-secrets" && target == dir.string()) return true;
  return false;
}

}  // namespace

Result<void> ensure_volume_dir(const Paths& paths, const model::VolumeConfig& c) {
  auto parent = paths.root / "volumes";
  if (auto r = make_dirs(parent, 0700); !r) return fail(r.error().wrap("volume " + c.name));
  ::chmod(parent.c_str(), 0700);  // host users never reach a volume's data
  auto dir = volume_dir(paths, c.name);
  bool made = ::mkdir(dir.c_str(), 0755) == 0;
  if (!made && errno != EEXIST) return fail_errno("volume " + c.name + ": mkdir " + dir.string());
  if (c.driver_opts.empty() || is_mountpoint(dir)) return {};
  std::string type = c.driver_opts.count("type") ? c.driver_opts.at("type") : "";
  std::string device = c.driver_opts.count("device") ? c.driver_opts.at("device") : "";
  std::string o = c.driver_opts.count("o") ? c.driver_opts.at("o") : "";
  unsigned long flags = 0;
  std::string data;
  for (size_t from = 0; from <= o.size() && !o.empty();) {
    size_t comma = o.find(',', from);
    if (comma == std::string::npos) comma = o.size();
    std::string word = o.substr(from, comma - from);
    from = comma + 1;
    bool known = false;
    flags |= mount_flag(word, known);
    if (!known && !word.empty()) data += (data.empty() ? "" : ",") + word;
  }
  if (type.empty() && !(flags & MS_BIND))
    return fail("volume " + c.name + ": driver_opts need a type (tmpfs, none with o: bind, ...)");
  if (device.empty()) device = type;
  // A bind ignores the read-only flag of its first mount(2) (mount(2), MS_BIND): remounted.
  int rc =
      ::mount(device.c_str(), dir.c_str(), (flags & MS_BIND) ? nullptr : type.c_str(),
              flags & ~(flags & MS_BIND ? MS_RDONLY : 0UL), data.empty() ? nullptr : data.c_str());
  if (rc == 0 && (flags & MS_BIND) && (flags & MS_RDONLY))
    rc = ::mount(nullptr, dir.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);
  if (rc != 0) {
    int saved = errno;
    ::umount2(dir.c_str(), MNT_DETACH);
    if (made) ::rmdir(dir.c_str());
    errno = saved;
    return fail_errno("volume " + c.name + ": mount " + (type.empty() ? "bind" : type) + " " +
                      device + " (driver_opts)");
  }
  return {};
}

bool volume_present(const Paths& paths, const std::string& name, bool mounted) {
  auto dir = volume_dir(paths, name);
  if (::access(dir.c_str(), F_OK) != 0) return false;
  return !mounted || is_mountpoint(dir);
}

Result<std::filesystem::path> detach_volume_dir(const Paths& paths, const std::string& name,
                                                bool mounted) {
  auto dir = volume_dir(paths, name);
  while (is_mountpoint(dir))
    if (::umount2(dir.c_str(), MNT_DETACH) != 0) return fail_errno("volume " + name + ": umount");
  // With driver_opts the data is the device's (a bound host directory is the user's): only
  // the empty mount point goes, never a tree that could still be someone's files.
  if (mounted) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
      return fail_errno("volume " + name + ": remove mount point " + dir.string());
    return std::filesystem::path();
  }
  // One rename(2) here; the unlinking of every file is the caller's, off the loop. A name
  // starting with '.' is no volume's, and the time keeps it apart from a previous daemon's.
  auto aside = paths.root / "volumes" /
               (std::string(kVolumeAsidePrefix) +
                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  if (::rename(dir.c_str(), aside.c_str()) != 0) {
    if (errno == ENOENT) return std::filesystem::path();
    return fail_errno("volume " + name + ": move " + dir.string() + " aside");
  }
  return aside;
}

Result<void> remove_volume_dir(const Paths& paths, const std::string& name, bool mounted) {
  auto aside = detach_volume_dir(paths, name, mounted);
  if (!aside) return fail(aside.error());
  if (auto r = remove_tree(*aside); !r) return fail(r.error().wrap("volume " + name));
  return {};
}

void remove_volumes_set_aside(const Paths& paths) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(paths.root / "volumes", ec))
    if (e.path().filename().string().rfind(kVolumeAsidePrefix, 0) == 0)
      (void)remove_tree(e.path());
}

Result<void> check_volumes_unchanged(const spec::Stack& stack,
                                    const planner::DesiredState& desired, state::Store& store) {
  for (const auto& d : desired.volumes) {
    if (!d.config) continue;
    auto known = store.get_volume(d.name);
    if (!known) return fail(known.error());
    // One `stack volume create` made is the user's: used as it is, as compose does.
    if (!*known || (*known)->project != stack.name) continue;
    std::string changed;
    if ((*known)->driver_opts != d.config->driver_opts) changed = "driver_opts";
    // The top-level volume's labels as compose compares them; a mount's volume.labels only
    // label a volume when it is made (a key of theirs it has is not a change).
    const spec::Volume* top = nullptr;
    for (const auto& v : stack.volumes)
      if (v.name == d.name) top = &v;
    bool labels_changed = false;
    for (const auto& [k, v] : (*known)->labels) {
      auto want = d.config->labels.find(k);
      bool from_top = top && top->labels.count(k);
      if (want == d.config->labels.end() || (from_top && want->second != v)) labels_changed = true;
    }
    if (top)
      for (const auto& [k, v] : top->labels) labels_changed |= !(*known)->labels.count(k);
    if (labels_changed) changed += changed.empty() ? "labels" : " and labels";
    if (changed.empty()) continue;
    std::string at = top ? top->pos.str() + ": " : "";
    return fail(at + "volume \"" + d.name + "\" exists but doesn't match configuration (" +
                changed + " changed): making it again loses its data; `stack down -v` removes "
                "it, or put its earlier configuration back");
  }
  return {};
}

Result<void> write_secret_files(const Paths& paths, const RuntimeRecord& r) {
  if (r.secret_files.empty() || !r.secret_contents) return {};
  auto parent = paths.run_root / "secrets";
  if (auto d = make_dirs(parent, 0700); !d) return d;
  ::chmod(parent.c_str(), 0700);
  // Secrets live in memory only: a run root that is not a tmpfs (a --run-root on disk) gets
  // one of its own here, so no secret byte is ever written to a disk.
  if (!on_tmpfs(parent))
    if (::mount("stack-secrets", parent.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=0700,size=64m") != 0)
      return fail_errno("secrets: mount a tmpfs on " + parent.string());
  auto dir = parent / r.spec.name;
  if (auto d = make_dirs(dir, 0700); !d) return d;
  ::chmod(dir.c_str(), 0700);
  for (size_t i = 0; i < r.secret_files.size() && i < r.secret_contents->size(); i++) {
    const auto& f = r.secret_files[i];
    const auto& content = (*r.secret_contents)[i];
    uid_t uid = f.uid;
    gid_t gid = f.gid;
    if (r.spec.userns) {  // the container's uid N is the host's base + N
      uid += r.spec.userns->uid_base;
      gid += r.spec.userns->gid_base;
    }
    auto tmp = f.path;
    tmp += ".tmp";
    ::unlink(tmp.c_str());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return fail_errno("write secret " + f.path.string());
    bool ok = true;
    for (size_t off = 0; ok && off < content.size();) {
      ssize_t n = ::write(fd, content.data() + off, content.size() - off);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) off += static_cast<size_t>(n);
    }
    ok = ok && ::fchown(fd, uid, gid) == 0 && ::fchmod(fd, static_cast<mode_t>(f.mode)) == 0;
    int saved = errno;
    ::close(fd);
    // rename(2): a running container keeps the inode it has; the next start gets the new one.
    if (!ok || ::rename(tmp.c_str(), f.path.c_str()) != 0) {
      if (ok) saved = errno;
      ::unlink(tmp.c_str());
      errno = saved;
      return fail_errno("write secret " + f.path.string());
    }
  }
  return {};
}

void restore_secret_files(const Paths& paths, const planner::DesiredState& desired) {
  for (const auto& s : desired.services)
    for (const auto& r : s.records) {
      if (!r || r->secret_files.empty()) continue;
      if (::access(r->spec.dir.c_str(), F_OK) != 0) continue;  // not created: its create writes
      bool missing = std::any_of(r->secret_files.begin(), r->secret_files.end(),
                                 [](const auto& f) { return ::access(f.path.c_str(), F_OK) != 0; });
      if (!missing) continue;
      if (auto w = write_secret_files(paths, *r); !w)
        log::get("reconciler")->error("restore secrets of {}: {}", r->spec.name, w.error().message);
      else
        log::get("reconciler")->info("restored secrets container={}", r->spec.name);
    }
}

Result<void> remove_secret_files(const Paths& paths, const std::string& name) {
  auto dir = paths.run_root / "secrets" / name;
  if (::access(dir.c_str(), F_OK) != 0) return {};
  if (auto r = remove_tree(dir); !r) return r;
  // The last one takes the parent (and the tmpfs stack mounted there) with it.
  auto parent = paths.run_root / "secrets";
  if (std::filesystem::is_empty(parent) && is_mountpoint(parent) && owns_tmpfs(parent))
    ::umount2(parent.c_str(), MNT_DETACH);
  ::rmdir(parent.c_str());
  return {};
}

}  // namespace stack::reconciler
