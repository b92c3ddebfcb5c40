/* stack-init: the container's own mounts (volumes, binds, tmpfs, secrets, cgroups), made before
 * pivot_root as root in the container's mount namespace. Targets are resolved inside the
 * container's root (inroot.c) and a volume's subpath inside the volume: no symlink of the
 * image or of a volume's content makes stack mount or copy anything outside them. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "wire.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* linux/mount.h, which musl does not ship. */
struct mount_attr_ {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define OPEN_TREE_CLONE_ 1
#define MOUNT_ATTR_RDONLY_ 0x1
#define MOUNT_ATTR_NOSUID_ 0x2
#define MOUNT_ATTR_NODEV_ 0x4
#define MOUNT_ATTR_NOEXEC_ 0x8
#define MOUNT_ATTR__ATIME_ 0x70
#define MOUNT_ATTR_RELATIME_ 0x0
#define MOUNT_ATTR_NOATIME_ 0x10
#define MOUNT_ATTR_STRICTATIME_ 0x20
#define MOUNT_ATTR_NODIRATIME_ 0x80
#define MOUNT_ATTR_IDMAP_ 0x00100000
#define MOUNT_ATTR_NOSYMFOLLOW_ 0x00200000
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x4
#define MOVE_MOUNT_T_EMPTY_PATH_ 0x40
#define FSOPEN_CLOEXEC_ 0x1
#define FSMOUNT_CLOEXEC_ 0x1
#define FSCONFIG_SET_STRING_ 1
#define FSCONFIG_CMD_CREATE_ 6
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

enum { SEED_MAX_DEPTH = 64 };

static int is_empty_dir(int dirfd) {
  int fd = dup(dirfd);
  if (fd < 0) return 0;
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return 0;
  }
  struct dirent* e;
  int empty = 1;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      empty = 0;
      break;
    }
  closedir(d);
  return empty;
}

static int copy_file(int from, int to) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return (int)n;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(to, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return -1;
      off += w;
    }
  }
}

/* Copies the content of directory SRC into directory DST, owners and modes kept. Nothing is
 * followed: a symlink is copied as a symlink, every open is relative and O_NOFOLLOW. */
static int copy_tree(int src, int dst, int depth, char* err, size_t errlen) {
  if (depth > SEED_MAX_DEPTH) return ERR("seed volume: deeper than %d directories", depth);
  int fd = dup(src);
  DIR* d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    if (fd >= 0) close(fd);
    return ERR("seed volume: read directory: %s", strerror(errno));
  }
  int rc = 0;
  struct dirent* e;
  while (rc == 0 && (e = readdir(d))) {
    const char* n = e->d_name;
    if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
    struct stat st;
    if (fstatat(src, n, &st, AT_SYMLINK_NOFOLLOW) != 0) continue; /* gone meanwhile */
    if (S_ISDIR(st.st_mode)) {
      int s = openat(src, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (s < 0 || mkdirat(dst, n, 0700) != 0) {
        rc = ERR("seed volume: directory %s: %s", n, strerror(errno));
        if (s >= 0) close(s);
        break;
      }
      int t = openat(dst, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (t < 0) {
        rc = ERR("seed volume: open %s: %s", n, strerror(errno));
      } else {
        rc = copy_tree(s, t, depth + 1, err, errlen);
        if (rc == 0 && (fchown(t, st.st_uid, st.st_gid) != 0 || fchmod(t, st.st_mode & 07777) != 0))
          rc = ERR("seed volume: owner of %s: %s", n, strerror(errno));
        close(t);
      }
      close(s);
    } else if (S_ISREG(st.st_mode)) {
      int s = openat(src, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      int t = openat(dst, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (s < 0 || t < 0 || copy_file(s, t) != 0 || fchown(t, st.st_uid, st.st_gid) != 0 ||
          fchmod(t, st.st_mode & 07777) != 0)
        rc = ERR("seed volume: file %s: %s", n, strerror(errno));
      if (s >= 0) close(s);
      if (t >= 0) close(t);
    } else if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t len = readlinkat(src, n, target, sizeof target - 1);
      if (len < 0) continue;
      target[len] = 0;
      if (symlinkat(target, dst, n) != 0 ||
          fchownat(dst, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
        rc = ERR("seed volume: symlink %s: %s", n, strerror(errno));
    } /* devices, fifos and sockets are not copied up */
  }
  closedir(d);
  return rc;
}

/* Docker's copy-up: a volume still empty gets the image's content at its mount point, and the
 * mount point's owner and mode. Nothing there (or not a directory): nothing to copy. */
static int seed(int root, const char* src, const char* dst, char* err, size_t errlen) {
  int vol = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (vol < 0) return ERR("volume %s: %s", src, strerror(errno));
  int rc = 0;
  if (is_empty_dir(vol)) {
    char ignored[8];
    int at = open_in_root(root, dst, IR_NONE, ignored, sizeof ignored);
    if (at >= 0) {
      struct stat st;
      int image = fstat(at, &st) == 0 && S_ISDIR(st.st_mode)
                      ? openat(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                      : -1;
      if (image >= 0) {
        rc = copy_tree(image, vol, 0, err, errlen);
        if (rc == 0 &&
            (fchown(vol, st.st_uid, st.st_gid) != 0 || fchmod(vol, st.st_mode & 07777) != 0))
          rc = ERR("seed volume %s: %s", src, strerror(errno));
        close(image);
      }
      close(at);
    }
  }
  close(vol);
  return rc;
}

/* B's propagation (MS_SHARED, ...) on the mount just made at its target, if it asks one. */
static int propagate(int root, const struct bind* b, char* err, size_t errlen) {
  if (!b->propagation) return 0;
  /* Resolved again: the path now names the new mount, whose propagation mount(2) changes. */
  int target = open_in_root(root, b->dst, IR_NONE, err, errlen);
  if (target < 0) return -1;
  char path[32];
  snprintf(path, sizeof path, "/proc/self/fd/%d", target);
  int rc = mount(NULL, path, NULL, b->propagation, NULL);
  int saved = errno;
  close(target);
  if (rc != 0) return ERR("propagation of %s: %s", b->dst, strerror(saved));
  return 0;
}

/* TREE (a detached mount) moved onto DST resolved in ROOT, then given its propagation. */
static int attach(int root, int tree, const struct bind* b, char* err, size_t errlen) {
  struct stat st;
  if (fstat(tree, &st) != 0) return ERR("bind %s: %s", b->src, strerror(errno));
  int target = open_in_root(root, b->dst, S_ISDIR(st.st_mode) ? IR_DIR : IR_FILE, err, errlen);
  if (target < 0) return -1;
  int rc = (int)syscall(SYS_move_mount, tree, "", target, "",
                        MOVE_MOUNT_F_EMPTY_PATH_ | MOVE_MOUNT_T_EMPTY_PATH_);
  close(target);
  if (rc != 0) return ERR("bind %s on %s: %s", b->src, b->dst, strerror(errno));
  return propagate(root, b, err, errlen);
}

/* An image's layers (SRC "a:b:c", topmost first) as one tree, a descriptor of its root: one
 * layer is its directory (cloned read-only by the caller), more a detached read-only overlay
 * of them alone. overlayfs refuses a single lowerdir without an upperdir (EINVAL), hence the
 * two ways. */
static int image_tree(const struct bind* b, char* err, size_t errlen) {
  if (!strchr(b->src, ':')) {
    int t = open(b->src, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return t >= 0 ? t : ERR("image layer %s: %s", b->src, strerror(errno));
  }
  int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC_);
  if (fs < 0) return ERR("fsopen overlay: %s", strerror(errno));
  syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "source", "overlay", 0);
  for (const char* p = b->src; *p;) {
    const char* end = strchrnul(p, ':');
    char layer[4096];
    snprintf(layer, sizeof layer, "%.*s", (int)(end - p), p);
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "lowerdir+", layer, 0) != 0) {
      close(fs);
      return ERR("image mount %s: layer %s: %s", b->dst, layer, strerror(errno));
    }
    p = *end ? end + 1 : end;
  }
  int mnt = -1;
  if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE_, NULL, NULL, 0) != 0)
    (void)ERR("image mount %s: create overlay: %s", b->dst, strerror(errno));
  else if ((mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC_, MOUNT_ATTR_RDONLY_)) < 0)
    (void)ERR("image mount %s: fsmount: %s", b->dst, strerror(errno));
  close(fs);
  return mnt;
}

/* An image of several layers: its overlay attached at DST; with a subpath, the path inside it
 * cloned and put there in its place. The clone is taken once the overlay is attached: open_tree(2)
 * of a path in the still detached overlay fails here (EINVAL). */
static int mount_overlay_image(int root, const struct bind* b, char* err, size_t errlen) {
  int image = image_tree(b, err, errlen);
  if (image < 0) return -1;
  struct bind whole = *b;
  whole.propagation = 0;
  int rc = attach(root, image, &whole, err, errlen);
  close(image);
  if (rc != 0 || !b->subpath) return rc;
  int top = open_in_root(root, b->dst, IR_NONE, err, errlen); /* the overlay's root */
  if (top < 0) return -1;
  /* The image is a root of its own: a symlink in it ("/", "../..") cannot lead out. */
  int at = open_in_root(top, b->subpath, IR_NONE, err, errlen);
  int tree = at < 0 ? -1
                    : (int)syscall(SYS_open_tree, at, "",
                                   OPEN_TREE_CLONE_ | O_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
  if (at >= 0 && tree < 0) (void)ERR("image mount %s: %s: %s", b->dst, b->subpath, strerror(errno));
  if (at >= 0) close(at);
  char path[32];
  snprintf(path, sizeof path, "/proc/self/fd/%d", top);
  if (umount2(path, MNT_DETACH) != 0 && tree >= 0) {
    (void)ERR("image mount %s: take the whole image off: %s", b->dst, strerror(errno));
    close(tree);
    tree = -1;
  }
  close(top);
  if (tree < 0) return -1;
  rc = attach(root, tree, b, err, errlen);
  close(tree);
  return rc;
}

/* MAP (uid_map(5) lines) into PROC/PID/FILE, in one write(2) as the kernel wants it. */
static int write_map(int proc, pid_t pid, const char* file, const char* map, char* err,
                     size_t errlen) {
  char path[64];
  snprintf(path, sizeof path, "%d/%s", (int)pid, file);
  int fd = openat(proc, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ERR("open %s: %s", path, strerror(errno));
  size_t n = strlen(map);
  ssize_t w = write(fd, map, n);
  int saved = errno;
  close(fd);
  if (w != (ssize_t)n) return ERR("write %s \"%s\": %s", file, map, strerror(w < 0 ? saved : EIO));
  return 0;
}

/* A user namespace holding B's maps, only to idmap B through (mount_setattr(2) wants a
 * namespace, not maps): a child unshares one and waits on a pipe while its maps are written
 * from here, root of the parent namespace; its descriptor outlives the child. */
static int idmap_userns(int root, const struct bind* b, char* err, size_t errlen) {
  /* The child's pid is one of the init's PID namespace: the container's /proc (mounted in the
   * root already, step 3) names it, the host's would name another process. */
  int procdir = open_in_root(root, "/proc", IR_NONE, err, errlen);
  if (procdir < 0) return -1;
  int proc = openat(procdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  close(procdir);
  if (proc < 0) return ERR("idmapped mount %s: open /proc: %s", b->dst, strerror(errno));
  int done[2], ready[2];
  if (pipe2(done, O_CLOEXEC) != 0) {
    close(proc);
    return ERR("idmapped mount %s: pipe: %s", b->dst, strerror(errno));
  }
  if (pipe2(ready, O_CLOEXEC) != 0) {
    close(proc);
    close(done[0]);
    close(done[1]);
    return ERR("idmapped mount %s: pipe: %s", b->dst, strerror(errno));
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(done[1]); /* else its own copy keeps the EOF it waits for from coming */
    close(ready[0]);
    char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1 || c != 'y') _exit(1);
    _exit(read(done[0], &c, 1) < 0); /* EOF: the parent is done with us */
  }
  close(done[0]);
  close(ready[1]);
  int ns = -1;
  char c = 0;
  if (pid < 0) {
    (void)ERR("idmapped mount %s: fork: %s", b->dst, strerror(errno));
  } else if (read(ready[0], &c, 1) != 1 || c != 'y') {
    (void)ERR("idmapped mount %s: no user namespace for its maps", b->dst);
  } else if (write_map(proc, pid, "uid_map", b->idmap_uids, err, errlen) == 0 &&
             write_map(proc, pid, "gid_map", b->idmap_gids, err, errlen) == 0) {
    char own[64];
    snprintf(own, sizeof own, "%d/ns/user", (int)pid);
    ns = openat(proc, own, O_RDONLY | O_CLOEXEC);
    if (ns < 0) (void)ERR("idmapped mount %s: open %s: %s", b->dst, own, strerror(errno));
  }
  close(done[1]);
  close(ready[0]);
  close(proc);
  if (pid > 0) waitpid(pid, NULL, 0);
  return ns;
}

/* The attributes B asks of the detached TREE: read-only, nosuid, nodev, noexec (the whole
 * tree; read-only on its top mount only with bind.recursive writable), then its idmapping (its
 * top mount, or with WIRE_MOUNT_IDMAP_REC every one: "ridmap"). The kernel refuses an
 * idmapping of a filesystem without FS_ALLOW_IDMAP: said so, naming the mount. */
static int set_attrs(int root, int tree, const struct bind* b, char* err, size_t errlen) {
  unsigned a = b->attrs;
  int ro_top_only = b->recursive == 2;
  uint64_t set = (b->ro && !ro_top_only ? MOUNT_ATTR_RDONLY_ : 0) |
                 (a & WIRE_MOUNT_NOSUID ? MOUNT_ATTR_NOSUID_ : 0) |
                 (a & WIRE_MOUNT_NODEV ? MOUNT_ATTR_NODEV_ : 0) |
                 (a & WIRE_MOUNT_NOEXEC ? MOUNT_ATTR_NOEXEC_ : 0) |
                 (a & WIRE_MOUNT_NODIRATIME ? MOUNT_ATTR_NODIRATIME_ : 0) |
                 (a & WIRE_MOUNT_NOSYMFOLLOW ? MOUNT_ATTR_NOSYMFOLLOW_ : 0);
  /* The atime mode is one field of three values: cleared as a whole, then set. */
  uint64_t clr = 0;
  if (a & (WIRE_MOUNT_RELATIME | WIRE_MOUNT_NOATIME | WIRE_MOUNT_STRICTATIME)) {
    clr = MOUNT_ATTR__ATIME_;
    set |= a & WIRE_MOUNT_NOATIME       ? MOUNT_ATTR_NOATIME_
           : a & WIRE_MOUNT_STRICTATIME ? MOUNT_ATTR_STRICTATIME_
                                        : MOUNT_ATTR_RELATIME_;
  }
  if (set || clr) {
    struct mount_attr_ attr = {set, clr, 0, 0};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr))
      return ERR("bind %s: set its attributes: %s", b->src, strerror(errno));
  }
  if (b->ro && ro_top_only) { /* mount_setattr(2) without AT_RECURSIVE: the top mount only */
    struct mount_attr_ attr = {MOUNT_ATTR_RDONLY_, 0, 0, 0};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr))
      return ERR("bind %s: make it read-only: %s", b->src, strerror(errno));
  }
  if (!b->idmap_uids) return 0;
  int ns = idmap_userns(root, b, err, errlen);
  if (ns < 0) return -1;
  struct mount_attr_ attr = {MOUNT_ATTR_IDMAP_, 0, 0, (uint64_t)ns};
  int rc = (int)syscall(SYS_mount_setattr, tree, "",
                        AT_EMPTY_PATH | (b->attrs & WIRE_MOUNT_IDMAP_REC ? AT_RECURSIVE : 0), &attr,
                        sizeof attr);
  int saved = errno;
  close(ns);
  if (rc == 0) return 0;
  if (saved == EINVAL)
    return ERR("idmapped mount %s on %s: its filesystem does not support idmapped mounts here "
               "(mount_setattr: %s)", b->src, b->dst, strerror(saved));
  return ERR("idmapped mount %s on %s: %s", b->src, b->dst, strerror(saved));
}

/* A tmpfs: nosuid and nodev always, the rest as B asks; with WIRE_MOUNT_TMPCOPYUP the content
 * the root has at its target copied into it (crun's tmpcopyup), owners and modes kept. */
static int mount_tmpfs(int root, const struct bind* b, char* err, size_t errlen) {
  unsigned a = b->attrs;
  unsigned long flags = MS_NOSUID | MS_NODEV | (a & WIRE_MOUNT_NOEXEC ? MS_NOEXEC : 0) |
                        (a & WIRE_MOUNT_NODIRATIME ? MS_NODIRATIME : 0) |
                        (a & WIRE_MOUNT_NOSYMFOLLOW ? MS_NOSYMFOLLOW : 0) |
                        (a & WIRE_MOUNT_NOATIME ? MS_NOATIME : 0) |
                        (a & WIRE_MOUNT_STRICTATIME ? MS_STRICTATIME : 0) |
                        (a & WIRE_MOUNT_RELATIME ? MS_RELATIME : 0);
  int below = -1; /* the directory the tmpfs covers, still readable through this descriptor */
  struct stat st;
  if (a & WIRE_MOUNT_TMPCOPYUP) {
    int at = open_in_root(root, b->dst, IR_DIR, err, errlen);
    if (at < 0) return -1;
    below = openat(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(at);
    if (below < 0 || fstat(below, &st) != 0) {
      if (below >= 0) close(below);
      return ERR("tmpcopyup %s: %s", b->dst, strerror(errno));
    }
  }
  /* Written first, then made read-only: a read-only tmpfs takes no copy. */
  int ro_later = b->ro && below >= 0;
  int rc = mount_in_root(root, b->dst, "tmpfs", "tmpfs", flags | (b->ro && !ro_later ? MS_RDONLY : 0),
                         b->data, err, errlen);
  if (rc != 0 || below < 0) {
    if (below >= 0) close(below);
    return rc;
  }
  int top = open_in_root(root, b->dst, IR_NONE, err, errlen); /* the new tmpfs */
  int fresh = top < 0 ? -1 : openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (top >= 0 && fresh < 0) (void)ERR("tmpcopyup %s: %s", b->dst, strerror(errno));
  rc = fresh < 0 ? -1 : copy_tree(below, fresh, 0, err, errlen);
  if (rc == 0 && (fchown(fresh, st.st_uid, st.st_gid) != 0 || fchmod(fresh, st.st_mode & 07777) != 0))
    rc = ERR("tmpcopyup %s: %s", b->dst, strerror(errno));
  if (rc == 0 && ro_later) {
    struct mount_attr_ attr = {MOUNT_ATTR_RDONLY_, 0, 0, 0};
    if (syscall(SYS_mount_setattr, top, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
      rc = ERR("tmpfs %s read-only: %s", b->dst, strerror(errno));
  }
  if (fresh >= 0) close(fresh);
  if (top >= 0) close(top);
  close(below);
  return rc;
}

/* The container's own cgroup of each hierarchy, as crun mounts a "cgroup" on v1: a tmpfs at
 * B's target holding, per cgroup filesystem mounted under the host's /sys/fs/cgroup, a
 * directory with the container's cgroup (B's source, relative) bound on it, read-only unless
 * asked; the host's symlinks there (cpu -> cpu,cpuacct) copied. Only the container's own
 * directories: a hierarchy it has no cgroup in is left out, never its host root. */
static int mount_cgroups(int root, const struct bind* b, char* err, size_t errlen) {
  if (mount_in_root(root, b->dst, "tmpfs", "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME,
                    "mode=755,size=1024k", err, errlen) != 0)
    return -1;
  int top = open_in_root(root, b->dst, IR_NONE, err, errlen);
  if (top < 0) return -1;
  int dir = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int hostfd = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int hostdup = hostfd < 0 ? -1 : dup(hostfd);
  DIR* host = hostdup < 0 ? NULL : fdopendir(hostdup);
  int rc = 0;
  if (dir < 0 || !host) {
    rc = ERR("cgroup mount %s: %s", b->dst, strerror(errno));
    if (hostdup >= 0 && !host) close(hostdup);
  }
  struct dirent* e;
  while (rc == 0 && (e = readdir(host))) {
    const char* n = e->d_name;
    struct stat st;
    if (n[0] == '.' || fstatat(hostfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[256];
      ssize_t len = readlinkat(hostfd, n, target, sizeof target - 1);
      if (len <= 0) continue;
      target[len] = 0;
      if (symlinkat(target, dir, n) != 0) rc = ERR("cgroup mount: symlink %s: %s", n, strerror(errno));
      continue;
    }
    char path[4096];
    struct statfs sfs;
    snprintf(path, sizeof path, "/sys/fs/cgroup/%s/%s", n, b->src);
    if (!S_ISDIR(st.st_mode) || statfs(path, &sfs) != 0 ||
        (sfs.f_type != CGROUP_SUPER_MAGIC && sfs.f_type != CGROUP2_SUPER_MAGIC))
      continue; /* not a hierarchy, or the container has no cgroup in it */
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE_ | O_CLOEXEC);
    struct mount_attr_ attr = {
        (b->ro ? MOUNT_ATTR_RDONLY_ : 0) | MOUNT_ATTR_NOSUID_ | MOUNT_ATTR_NODEV_ | MOUNT_ATTR_NOEXEC_,
        0, 0, 0};
    if (tree < 0 || mkdirat(dir, n, 0755) != 0 ||
        syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0 ||
        syscall(SYS_move_mount, tree, "", dir, n, MOVE_MOUNT_F_EMPTY_PATH_) != 0)
      rc = ERR("cgroup mount: bind %s on %s/%s: %s", path, b->dst, n, strerror(errno));
    if (tree >= 0) close(tree);
  }
  if (host) closedir(host);
  if (hostfd >= 0) close(hostfd);
  if (dir >= 0) close(dir);
  if (rc == 0 && b->ro) {
    struct mount_attr_ attr = {MOUNT_ATTR_RDONLY_, 0, 0, 0};
    if (syscall(SYS_mount_setattr, top, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
      rc = ERR("cgroup mount %s read-only: %s", b->dst, strerror(errno));
  }
  close(top);
  return rc;
}

int mount_one(int root, const struct bind* b, char* err, size_t errlen) {
  if (b->kind == 1)
    return mount_tmpfs(root, b, err, errlen) != 0 ? -1 : propagate(root, b, err, errlen);
  if (b->kind == 3) return mount_cgroups(root, b, err, errlen);
  if (b->seed && !b->subpath && seed(root, b->src, b->dst, err, errlen) != 0) return -1;
  int from = AT_FDCWD, srcroot = -1;
  const char* path = b->src;
  if (b->kind == 2 && strchr(b->src, ':')) return mount_overlay_image(root, b, err, errlen);
  if (b->kind == 2) { /* one layer: its directory, or the subpath inside it */
    int image = image_tree(b, err, errlen);
    if (image < 0) return -1;
    if (!b->subpath) {
      from = image;
      path = "";
    } else {
      /* The image is a root of its own: a symlink in it ("/", "../..") cannot lead out. */
      from = open_in_root(image, b->subpath, IR_NONE, err, errlen);
      close(image);
      if (from < 0) return -1;
      path = "";
    }
  } else if (b->subpath) {
    srcroot = open(b->src, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (srcroot < 0) return ERR("volume %s: %s", b->src, strerror(errno));
    /* The volume is a root of its own: its content (written by containers) cannot lead out. */
    from = open_in_root(srcroot, b->subpath, IR_NONE, err, errlen);
    close(srcroot);
    if (from < 0) return -1;
    path = "";
  }
  /* Without AT_RECURSIVE (bind.recursive disabled) the clone is SRC's own mount alone: what is
   * mounted below it stays out of the container (open_tree(2)). */
  int tree = (int)syscall(SYS_open_tree, from, path,
                          OPEN_TREE_CLONE_ | O_CLOEXEC | (b->recursive == 1 ? 0 : AT_RECURSIVE) |
                              (*path ? 0 : AT_EMPTY_PATH));
  int saved = errno;
  if (from >= 0) close(from);
  if (tree < 0) return ERR("bind %s: %s", b->src, strerror(saved));
  /* Read-only (and the rest) before it is attached: the container never sees it writable. */
  int rc = set_attrs(root, tree, b, err, errlen);
  if (rc == 0) rc = attach(root, tree, b, err, errlen);
  close(tree);
  return rc;
}

int root_readonly(int root, char* err, size_t errlen) {
  struct mount_attr_ attr = {MOUNT_ATTR_RDONLY_, 0, 0, 0};
  if (syscall(SYS_mount_setattr, root, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
    return ERR("make the root read-only: %s", strerror(errno));
  return 0;
}
