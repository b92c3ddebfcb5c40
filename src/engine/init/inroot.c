/* Paths inside the container's root, resolved inside it: an image may hold any symlink
 * (etc/hosts -> /tmp/evil, dev -> ../../../tmp/x), and stack runs as root on the host before
 * pivot_root, so every lookup, creation and mount target goes through openat2(2) with
 * RESOLVE_IN_ROOT (the root's symlinks are followed as the container would see them, ".."
 * stops at the root) and mounts land on the resolved descriptor, never on a path string. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

/* The message names the path; errno stays what the kernel said (callers test it: ENOENT). */
#define ERR(...) (errsave = errno, snprintf(err, errlen, __VA_ARGS__), errno = errsave, -1)

/* linux/openat2.h and linux/mount.h, which musl does not ship. */
struct open_how {
  uint64_t flags, mode, resolve;
};
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_IN_ROOT 0x10
struct mount_attr {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define OPEN_TREE_CLONE 1
#define MOUNT_ATTR_RDONLY 0x1
#define MOUNT_ATTR_IDMAP 0x00100000
#define MOVE_MOUNT_F_EMPTY_PATH 0x4
#define MOVE_MOUNT_T_EMPTY_PATH 0x40
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

enum { MAX_LINKS = 40 }; /* as the kernel's own limit on symlinks in one lookup */

static int openat2_in(int rootfd, const char *path, int flags, uint64_t resolve) {
  struct open_how how = {(uint64_t)(flags | O_CLOEXEC), 0, resolve};
  for (int i = 0;; i++) {
    long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    /* RESOLVE_IN_ROOT answers EAGAIN when a rename raced with the lookup (openat2(2)). */
    if (fd >= 0 || errno != EAGAIN || i == 16) return (int)fd;
  }
}

/* Creates NAME in the directory RESOLVED (a symlink-free path inside the root). */
static int create_in(int rootfd, const char *resolved, const char *name, int dir) {
  int parent = openat2_in(rootfd, *resolved ? resolved : "/", O_PATH | O_DIRECTORY,
                          RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
  if (parent < 0) return -1;
  int rc;
  if (dir) {
    rc = mkdirat(parent, name, 0755);
  } else {
    rc = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (rc >= 0) rc = close(rc);
  }
  int saved = errno;
  close(parent);
  errno = saved;
  return rc != 0 && errno == EEXIST ? 0 : rc; /* made meanwhile: the walk looks at it again */
}

int open_in_root(int rootfd, const char *path, int create, char *err, size_t errlen) {
  int errsave;
  int fd = openat2_in(rootfd, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  if (fd >= 0) return fd;
  if (errno != ENOENT || create == IR_NONE) return ERR("resolve %s: %s", path, strerror(errno));

  /* Something is missing: walk it component by component, as securejoin's MkdirAll does.
   * RESOLVED is the path reached so far, with no symlink in it; TODO what is left, where a
   * symlink met on the way is spliced in (an absolute one restarts from the root). */
  char resolved[PATH_MAX] = "", todo[2 * PATH_MAX], next[2 * PATH_MAX];
  if (snprintf(todo, sizeof todo, "%s", path) >= (int)sizeof todo)
    return ERR("resolve %s: %s", path, strerror(ENAMETOOLONG));
  int links = 0;
  char *rest = todo;
  while (*rest) {
    while (*rest == '/') rest++;
    if (!*rest) break;
    char *end = strchrnul(rest, '/');
    char comp[NAME_MAX + 1];
    size_t clen = (size_t)(end - rest);
    if (clen > NAME_MAX) return ERR("resolve %s: %s", path, strerror(ENAMETOOLONG));
    memcpy(comp, rest, clen);
    comp[clen] = 0;
    rest = end;
    int last = rest[strspn(rest, "/")] == 0;
    if (!strcmp(comp, ".")) continue;
    if (!strcmp(comp, "..")) { /* the root's parent is the root */
      char *slash = strrchr(resolved, '/');
      if (slash) *slash = 0;
      continue;
    }
    char candidate[PATH_MAX];
    if (snprintf(candidate, sizeof candidate, "%s/%s", resolved, comp) >= (int)sizeof candidate)
      return ERR("resolve %s: %s", path, strerror(ENAMETOOLONG));
    int cfd =
        openat2_in(rootfd, candidate, O_PATH | O_NOFOLLOW, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
    if (cfd < 0 && errno != ENOENT)
      return ERR("resolve %s: %s: %s", path, candidate, strerror(errno));
    if (cfd < 0) {
      if (create_in(rootfd, resolved, comp, !last || create == IR_DIR) != 0)
        return ERR("create %s in the container: %s", candidate, strerror(errno));
      memcpy(resolved, candidate, strlen(candidate) + 1);
      continue;
    }
    struct stat st;
    if (fstatat(cfd, "", &st, AT_EMPTY_PATH) != 0 || !S_ISLNK(st.st_mode)) {
      close(cfd);
      memcpy(resolved, candidate, strlen(candidate) + 1);
      continue;
    }
    char target[PATH_MAX];
    ssize_t n = readlinkat(cfd, "", target, sizeof target - 1);
    close(cfd);
    if (n < 0) return ERR("resolve %s: readlink %s: %s", path, candidate, strerror(errno));
    target[n] = 0;
    if (++links > MAX_LINKS) return ERR("resolve %s: %s", path, strerror(ELOOP));
    if (target[0] == '/') resolved[0] = 0;
    if (snprintf(next, sizeof next, "%s/%s", target, rest) >= (int)sizeof next)
      return ERR("resolve %s: %s", path, strerror(ENAMETOOLONG));
    memcpy(todo, next, strlen(next) + 1);
    rest = todo;
  }
  fd =
      openat2_in(rootfd, *resolved ? resolved : "/", O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
  if (fd < 0) return ERR("resolve %s: %s", path, strerror(errno));
  return fd;
}

int mount_in_root(int rootfd, const char *path, const char *fstype, const char *source,
                  unsigned long flags, const char *data, char *err, size_t errlen) {
  int errsave;
  int fd = open_in_root(rootfd, path, IR_DIR, err, errlen);
  if (fd < 0) return -1;
  /* mount(2) follows the descriptor's magic link to the very directory resolved above. */
  char target[32];
  snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
  int rc = mount(source, target, fstype, flags, data);
  int saved = errno;
  close(fd);
  errno = saved;
  if (rc != 0) return ERR("mount %s on %s: %s", fstype, path, strerror(saved));
  return 0;
}

int bind_in_root(int rootfd, const char *src, const char *dst, int ro, char *err, size_t errlen) {
  int errsave;
  /* A detached copy of the source's mount tree, made read-only before it is attached, so the
   * container never sees it writable, then moved onto the resolved target. */
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) return ERR("bind %s: %s", src, strerror(errno));
  int rc = -1, target = -1;
  struct stat st;
  if (fstat(tree, &st) != 0) {
    (void)ERR("bind %s: %s", src, strerror(errno));
    goto out;
  }
  if (ro) {
    struct mount_attr attr = {MOUNT_ATTR_RDONLY, 0, 0, 0};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr)) {
      (void)ERR("bind %s: make read-only: %s", src, strerror(errno));
      goto out;
    }
  }
  target = open_in_root(rootfd, dst, S_ISDIR(st.st_mode) ? IR_DIR : IR_FILE, err, errlen);
  if (target < 0) goto out;
  if (syscall(SYS_move_mount, tree, "", target, "",
              MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) {
    (void)ERR("bind %s on %s: %s", src, dst, strerror(errno));
    goto out;
  }
  rc = 0;
out:
  if (target >= 0) close(target);
  close(tree);
  return rc;
}

int idmapped_tree(const char *path, int userns, char *err, size_t errlen) {
  int errsave;
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | O_CLOEXEC);
  if (tree < 0) return ERR("clone %s: %s", path, strerror(errno));
  struct mount_attr attr = {MOUNT_ATTR_IDMAP, 0, 0, (uint64_t)userns};
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    (void)ERR("idmap %s: %s", path, strerror(errno));
    close(tree);
    return -1;
  }
  return tree;
}

int remount_own(int fd, char *err, size_t errlen) {
  int errsave;
  int tree = (int)syscall(SYS_open_tree, fd, "",
                          OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
  if (tree < 0) return ERR("clone the root: %s", strerror(errno));
  if (syscall(SYS_move_mount, tree, "", fd, "",
              MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) {
    (void)ERR("mount the root on itself: %s", strerror(errno));
    close(tree);
    return -1;
  }
  return tree;
}
