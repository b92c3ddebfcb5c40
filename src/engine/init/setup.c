/* stack-init setup: builds the root filesystem inside the new mount namespace. Runs as root in
 * the container's fresh namespaces, single-threaded, before the service exists. Every path in
 * the container goes through inroot.c: the image's symlinks never lead out of its root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "init.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int make_dev(int rootfd, const struct config *cfg, unsigned skip, char *err, size_t errlen);

/* One kernel filesystem (KFS_*): /dev with those of its own not in SKIP (they come later, or,
 * /sys and mqueue with a user namespace, from enter_userns). */
static int kernel_mount(int root, const struct config *cfg, unsigned which, unsigned skip,
                        char *err, size_t errlen) {
  char shm[64];
  switch (which) {
  case KFS_PROC:
    return mount_in_root(root, "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
                         err, errlen);
  case KFS_SYS:
    return mount_in_root(root, "/sys", "sysfs", "sysfs",
                         (cfg->sys_rw ? 0 : MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
                         err, errlen);
  case KFS_DEV:
    return make_dev(root, cfg, skip, err, errlen);
  case KFS_PTS:
    return mount_in_root(root, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                         "newinstance,ptmxmode=0666,mode=0620,gid=5", err, errlen);
  case KFS_SHM:
    snprintf(shm, sizeof shm, "mode=1777,size=%lldk",
             cfg->shm_size > 0 ? (cfg->shm_size + 1023) / 1024 : 65536);
    return mount_in_root(root, "/dev/shm", "tmpfs", "shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, shm,
                         err, errlen);
  case KFS_MQUEUE:
    /* Not fatal, as ever: the IPC namespace may not let us. */
    mount_in_root(root, "/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
                  err, errlen);
    return 0;
  }
  return ERR("kernel filesystem %u: unknown", which);
}

/* The container's /dev: a fresh tmpfs, the device nodes the engine listed (minimal, or the
 * host's for a privileged container), then its own devpts, shm and mqueue but those in SKIP. */
static int make_dev(int rootfd, const struct config *cfg, unsigned skip, char *err, size_t errlen) {
  if (mount_in_root(rootfd, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                    "mode=755,size=65536k", err, errlen) != 0)
    return -1;
  /* Resolved again: the descriptor now names the fresh tmpfs, which holds no symlink. */
  int dev = open_in_root(rootfd, "/dev", IR_NONE, err, errlen);
  if (dev < 0) return -1;
  int devfd = openat(dev, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  close(dev);
  if (devfd < 0) return ERR("open /dev: %s", strerror(errno));
  int rc = -1;
  for (size_t i = 0; i < cfg->ndevices; i++) {
    const struct device *d = &cfg->devices[i];
    if (strncmp(d->path, "/dev/", 5) != 0 || strstr(d->path, "/../")) {
      (void)ERR("device %s: not a path under /dev", d->path);
      goto out;
    }
    const char *rel = d->path + 5;
    for (const char *slash = rel; (slash = strchr(slash, '/')); slash++) { /* /dev/input/... */
      char dir[256];
      snprintf(dir, sizeof dir, "%.*s", (int)(slash - rel), rel);
      mkdirat(devfd, dir, 0755);
    }
    dev_t num = d->type == 'p' ? 0 : makedev(d->major, d->minor);
    mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
    if (mknodat(devfd, rel, type | (d->mode & 07777), num) != 0) {
      (void)ERR("mknod %s: %s", d->path, strerror(errno));
      goto out;
    }
    /* The owner first: chown(2) clears the set-user-ID and set-group-ID bits fchmodat sets. */
    if ((d->uid || d->gid) && fchownat(devfd, rel, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) != 0) {
      (void)ERR("chown %s: %s", d->path, strerror(errno));
      goto out;
    }
    fchmodat(devfd, rel, d->mode & 07777, 0); /* mknod honours the umask */
  }
  mkdirat(devfd, "pts", 0755);
  mkdirat(devfd, "shm", 01777);
  mkdirat(devfd, "mqueue", 0755);
  static const char *links[][2] = {{"pts/ptmx", "ptmx"},         {"/proc/self/fd", "fd"},
                                   {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                                   {"/proc/self/fd/2", "stderr"}};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++)
    symlinkat(links[i][0], devfd, links[i][1]);
  static const unsigned below[] = {KFS_PTS, KFS_SHM, KFS_MQUEUE};
  for (size_t i = 0; i < sizeof below / sizeof *below; i++)
    if (!(skip & below[i]) && kernel_mount(rootfd, cfg, below[i], skip, err, errlen) != 0)
      goto out;
  rc = 0;
out:
  close(devfd);
  return rc;
}

/* Docker's masked and read-only paths (the engine sends the list), after pivot_root: a masked
 * file gets /dev/null over it, a masked directory an empty read-only tmpfs; read-only paths are
 * bound onto themselves and remounted read-only. A path this kernel lacks is skipped. */
static int mask_paths(const struct config *cfg, char *err, size_t errlen) {
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return ERR("open /: %s", strerror(errno));
  int rc = -1;
  for (size_t i = 0; i < cfg->masked.n; i++) {
    const char *p = cfg->masked.v[i];
    int fd = open_in_root(root, p, IR_NONE, err, errlen);
    if (fd < 0 && errno == ENOENT) continue;
    if (fd < 0) goto out;
    struct stat st;
    fstat(fd, &st);
    close(fd);
    if (S_ISDIR(st.st_mode)) {
      if (mount_in_root(root, p, "tmpfs", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "size=0,mode=755", err, errlen) != 0)
        goto out;
    } else if (bind_in_root(root, "/dev/null", p, 1, err, errlen) != 0) {
      goto out;
    }
  }
  for (size_t i = 0; i < cfg->readonly.n; i++) {
    const char *p = cfg->readonly.v[i];
    int fd = open_in_root(root, p, IR_NONE, err, errlen);
    if (fd < 0 && errno == ENOENT) continue;
    if (fd < 0) goto out;
    char self[32];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int r = bind_in_root(root, self, p, 1, err, errlen);
    close(fd);
    if (r != 0) goto out;
  }
  rc = 0;
out:
  close(root);
  return rc;
}

/* stdin, stdout and stderr of the init were the host's /dev/null: the container's from now on. */
static void reopen_stdio(void) {
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  for (int i = 0; i < 3; i++) dup3(fd, i, 0);
  if (fd > 2) close(fd);
}

/* One lower layer's path: the engine's, or with a user namespace an idmapped copy of its mount
 * (the image's root-owned files become the container root's) named by /proc/self/fd/N, its
 * descriptor in *TREE (-1 without one). Layers the engine copied with shifted owners (a
 * filesystem without idmapped mounts) go as they are. */
static int lower_path(const struct config *cfg, const char *path, char *out, size_t outlen,
                      int *tree, char *err, size_t errlen) {
  *tree = -1;
  if (!cfg->userns || cfg->layers_shifted) {
    if (snprintf(out, outlen, "%s", path) >= (int)outlen) return ERR("layer path too long");
    return 0;
  }
  *tree = idmapped_tree(path, USERNS_FD, err, errlen);
  if (*tree < 0) return -1;
  snprintf(out, outlen, "/proc/self/fd/%d", *tree);
  return 0;
}

/* The new mount API (linux/mount.h; musl lacks it). */
#define FSOPEN_CLOEXEC 0x1
#define FSMOUNT_CLOEXEC 0x1
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x4
#define OVERLAY_MAX_LAYERS 500 /* fs/overlayfs: OVL_MAX_STACK */

/* The overlay through fsopen(2)/fsconfig(2), each layer its own "lowerdir+" parameter (Linux
 * 6.8): no page-sized option string bounds how many layers an image has (a 128-layer image's
 * paths take ~10 KiB), only overlayfs' own limit of 500. Returns 1, having done nothing, on a
 * kernel without "lowerdir+": the caller falls back to mount(2). */
static int mount_overlay_fsconfig(const struct config *cfg, char *err, size_t errlen) {
  int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fs < 0) return errno == ENOSYS ? 1 : ERR("fsopen overlay: %s", strerror(errno));
  /* An idmapped tree is a detached mount: closing its last descriptor unmounts it, so they
   * stay open until the overlay exists. */
  int trees[OVERLAY_MAX_LAYERS];
  size_t ntrees = 0;
  int rc = -1, first = 1;
  syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", "overlay", 0); /* as mount(2)'s */
  for (const char *p = cfg->lowerdirs; *p;) {
    const char *end = strchrnul(p, ':');
    char path[4096], lower[4096];
    snprintf(path, sizeof path, "%.*s", (int)(end - p), p);
    if (ntrees == OVERLAY_MAX_LAYERS) {
      (void)ERR("more than %d layers (overlayfs' limit)", OVERLAY_MAX_LAYERS);
      goto out;
    }
    int tree;
    if (lower_path(cfg, path, lower, sizeof lower, &tree, err, errlen) != 0) goto out;
    if (tree >= 0) trees[ntrees++] = tree;
    int r = (int)syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "lowerdir+", lower, 0);
    if (r != 0 && first && errno == EINVAL) {
      rc = 1; /* an older overlayfs: no "lowerdir+" */
      goto out;
    }
    if (r != 0) {
      (void)ERR("overlay lower layer %s: %s", path, strerror(errno));
      goto out;
    }
    first = 0;
    p = *end ? end + 1 : end;
  }
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "upperdir", cfg->upper, 0) != 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "workdir", cfg->work, 0) != 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) {
    (void)ERR("create overlay for %s: %s", cfg->rootfs, strerror(errno));
    goto out;
  }
  int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
  if (mnt < 0) {
    (void)ERR("mount overlay: %s", strerror(errno));
    goto out;
  }
  if (syscall(SYS_move_mount, mnt, "", AT_FDCWD, cfg->rootfs, MOVE_MOUNT_F_EMPTY_PATH_) != 0)
    (void)ERR("mount overlay on %s: %s", cfg->rootfs, strerror(errno));
  else
    rc = 0;
  close(mnt);
out:
  for (size_t i = 0; i < ntrees; i++) close(trees[i]);
  close(fs);
  return rc;
}

/* mount(2) with the whole option string, for kernels before 6.8: at most a page, so fewer
 * layers (an error says so). */
static int mount_overlay_legacy(const struct config *cfg, char *err, size_t errlen) {
  char lowers[3072], data[4096];
  int fds[128];
  size_t nfds = 0, used = 0;
  int rc = -1;
  for (const char *p = cfg->lowerdirs; *p;) {
    const char *end = strchrnul(p, ':');
    char path[4096], lower[4096];
    snprintf(path, sizeof path, "%.*s", (int)(end - p), p);
    if (nfds == 128) {
      (void)ERR("more than 128 layers");
      goto out;
    }
    if (lower_path(cfg, path, lower, sizeof lower, &fds[nfds], err, errlen) != 0) goto out;
    if (fds[nfds] >= 0) nfds++;
    int n = snprintf(lowers + used, sizeof lowers - used, "%s%s", used ? ":" : "", lower);
    if (n < 0 || (size_t)n >= sizeof lowers - used) {
      (void)ERR("too many layers for this kernel's overlay options (one page)");
      goto out;
    }
    used += (size_t)n;
    p = *end ? end + 1 : end;
  }
  int n = snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s", lowers, cfg->upper,
                   cfg->work);
  if (n < 0 || (size_t)n >= sizeof data) {
    (void)ERR("overlay options longer than a page");
    goto out;
  }
  if (mount("overlay", cfg->rootfs, "overlay", 0, data) != 0)
    (void)ERR("mount overlay on %s: %s", cfg->rootfs, strerror(errno));
  else
    rc = 0;
out:
  for (size_t i = 0; i < nfds; i++) close(fds[i]);
  return rc;
}

/* Step 3's second half with a user namespace: everything that needed root on the host is done
 * (the idmapped overlay, /proc, /dev, the binds); now the init becomes the container's root
 * and makes the namespaces that must belong to it (network: its root binds port 80 and
 * configures its interfaces; UTS; IPC; and a mount namespace of its own, where the
 * container's root owns what it mounts). *ROOT is then the rootfs in that namespace. */
static int enter_userns(const struct config *cfg, int *root, char *err, size_t errlen) {
  if (setns(USERNS_FD, CLONE_NEWUSER) != 0)
    return ERR("join the user namespace: %s", strerror(errno));
  close(USERNS_FD);
  if (setgroups(0, NULL) != 0 || setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
    return ERR("become root of the user namespace: %s", strerror(errno));
  /* unshare(2) moves our cwd into the new mount namespace's copy of it: the way to find the
   * rootfs again there, as the container's root cannot walk the host's paths to it. */
  if (fchdir(*root) != 0) return ERR("chdir %s: %s", cfg->rootfs, strerror(errno));
  /* Those joined by path the init was born in (W_NS_JOINED): kept. */
  if (unshare(CLONE_NEWNS | ((CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC) & ~cfg->ns_joined)) != 0)
    return ERR("create the container's namespaces: %s", strerror(errno));
  int copy = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) return ERR("open the rootfs: %s", strerror(errno));
  close(*root);
  *root = copy;
  if (cfg->hostname && sethostname(cfg->hostname, strlen(cfg->hostname)) != 0)
    return ERR("sethostname: %s", strerror(errno));
  /* sysfs shows the network namespace of whoever mounts it: mounted now, in the new one. */
  if (kernel_mount(*root, cfg, KFS_SYS, 0, err, errlen) != 0 ||
      mount_in_root(*root, "/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    NULL, err, errlen) != 0)
    return -1;
  /* The copied mounts are locked (mount_namespaces(7)) and pivot_root(2) refuses a locked new
   * root: the rootfs is cloned onto itself, a mount of this namespace's own. */
  int own = remount_own(*root, err, errlen);
  if (own < 0) return -1;
  close(*root);
  *root = own;
  return 0;
}

/* A mount namespace joined by path (W_NS_JOINED NEWNS, at MNTNS_FD), as crun does: the user
 * namespace first (the others belong to it, and joining it gives up the host's capabilities
 * that joining those needed no more), the namespaces it must own made then, and the mount
 * namespace last. Nothing of its tree is made private: it is not the container's own. */
static int join_mount_ns(const struct config *cfg, char *err, size_t errlen) {
  if (cfg->userns) {
    if (setns(USERNS_FD, CLONE_NEWUSER) != 0)
      return ERR("join the user namespace: %s", strerror(errno));
    close(USERNS_FD);
    if (setgroups(0, NULL) != 0 || setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
      return ERR("become root of the user namespace: %s", strerror(errno));
    int fresh = (CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC) & ~(int)cfg->ns_joined;
    if (fresh && unshare(fresh) != 0)
      return ERR("create the container's namespaces: %s", strerror(errno));
  }
  if (setns(MNTNS_FD, CLONE_NEWNS) != 0)
    return ERR("join the mount namespace: %s", strerror(errno));
  close(MNTNS_FD);
  return 0;
}

/* linux.rootfsPropagation once the root is pivoted, as crun and runc set it: the root mount
 * (and with MS_REC every mount below) shared, slave, private or unbindable. */
static int root_propagation(const struct config *cfg, char *err, size_t errlen) {
  if (!cfg->root_propagation) return 0; /* every mount is private since step 1 */
  if (mount(NULL, "/", NULL, cfg->root_propagation, NULL) != 0)
    return ERR("rootfsPropagation: %s", strerror(errno));
  return 0;
}

int setup_rootfs(const struct config *cfg, char *err, size_t errlen) {
  /* 1. Our copy of the host's mount tree must not propagate back to the host: everything
   *    mounted from here on lives and dies with this namespace. A joined one is not ours: the
   *    root is its directory there (mounts under it land in that namespace, as crun's do). */
  int joined = (cfg->ns_joined & CLONE_NEWNS) != 0;
  if (joined && !cfg->root_bind) return ERR("config: a joined mount namespace needs the root's path");
  if (joined) {
    if (join_mount_ns(cfg, err, errlen) != 0) return -1;
  } else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    return ERR("make / private: %s", strerror(errno));
  }
  if ((!cfg->userns || joined) && cfg->hostname &&
      sethostname(cfg->hostname, strlen(cfg->hostname)) != 0)
    return ERR("sethostname: %s", strerror(errno));
  if (!cfg->rootfs || (!cfg->root_bind && (!cfg->lowerdirs || !cfg->upper || !cfg->work)))
    return ERR("config: rootfs and either the root to bind or lowerdirs, upper and work are "
               "required");
  /* 2. The overlay: image layers below, the container's own writable layer on top. Its paths
   *    are the engine's, on the host. Or an OCI bundle's root bound as it is (MS_REC: podman's
   *    own overlay mounted there comes along), written in place as runc and crun do. */
  const char *rootfs = joined ? cfg->root_bind : cfg->rootfs;
  if (joined) {
    /* nothing mounted: the directory as that namespace has it */
  } else if (cfg->root_bind) {
    if (mount(cfg->root_bind, cfg->rootfs, NULL, MS_BIND | MS_REC, NULL) != 0)
      return ERR("bind the root %s: %s", cfg->root_bind, strerror(errno));
  } else {
    int mounted = mount_overlay_fsconfig(cfg, err, errlen);
    if (mounted == 1) mounted = mount_overlay_legacy(cfg, err, errlen);
    if (mounted != 0) return -1;
  }
  int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return ERR("open %s: %s", rootfs, strerror(errno));
  /* 3. Kernel filesystems. /proc after the PID namespace exists (it does: we are its PID 1).
   *    Those the mount list names (an OCI bundle's) wait for their place in it; with a user
   *    namespace of its own /sys and mqueue come from enter_userns, after the list. */
  int rc = -1;
  unsigned listed = 0, later = cfg->userns && !joined ? KFS_SYS | KFS_MQUEUE : 0;
  for (size_t i = 0; i < cfg->nbinds; i++)
    if (cfg->binds[i].kind == 4) listed |= kernel_fs(cfg->binds[i].dst);
  unsigned skip = listed | later;
  static const unsigned fixed[] = {KFS_PROC, KFS_SYS, KFS_DEV};
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
    if (!(skip & fixed[i]) && kernel_mount(root, cfg, fixed[i], skip, err, errlen) != 0) goto out;
  /* 4. Mounts: volumes, binds, tmpfs, secrets and the files stack writes (/etc/hosts,
   *    /etc/hostname), in the engine's order (a parent before what is mounted under it), or
   *    an OCI bundle's, which also places the kernel filesystems. */
  for (size_t i = 0; i < cfg->nbinds; i++) {
    const struct bind *b = &cfg->binds[i];
    if (b->kind == 4) {
      unsigned which = kernel_fs(b->dst);
      if (!(later & which) && kernel_mount(root, cfg, which, skip, err, errlen) != 0) goto out;
      continue;
    }
    if (b->dst[0] != '/') {
      (void)ERR("mount %s: target %s must be absolute", b->src ? b->src : "tmpfs", b->dst);
      goto out;
    }
    if (mount_one(root, b, err, errlen) != 0) goto out;
  }
  if (cfg->userns && !joined && enter_userns(cfg, &root, err, errlen) != 0) goto out;
  /* After every mount point was made in it (a read-only root takes no new directory). */
  if (cfg->root_readonly && root_readonly(root, err, errlen) != 0) goto out;
  /* The runtime spec's prestart, createRuntime and createContainer hooks run here: the
   * container's namespaces and mounts exist, the host's tree is still reachable (a hook's path
   * resolves on the host), pivot_root has not happened. */
  if (cfg->pause_pivot && pause_before_pivot(err, errlen) != 0) goto out;
  /* 5. pivot_root(".", ".") stacks the old root under the new one; detaching it leaves the
   *    container with no path back to the host tree (pivot_root(2), NOTES). In a joined mount
   *    namespace, whose tree is not ours to rearrange: chroot(2), as crun does. */
  if (fchdir(root) != 0) {
    (void)ERR("chdir %s: %s", rootfs, strerror(errno));
    goto out;
  }
  if (joined) {
    if (chroot(".") != 0 || chdir("/") != 0) {
      (void)ERR("chroot %s: %s", rootfs, strerror(errno));
      goto out;
    }
  } else if (syscall(SYS_pivot_root, ".", ".") != 0) {
    (void)ERR("pivot_root: %s", strerror(errno));
    goto out;
  }
  if (!joined && umount2(".", MNT_DETACH) != 0) {
    (void)ERR("detach old root: %s", strerror(errno));
    goto out;
  }
  if (chdir("/") != 0) {
    (void)ERR("chdir /: %s", strerror(errno));
    goto out;
  }
  if (!joined && root_propagation(cfg, err, errlen) != 0) goto out;
  if (!cfg->stdio_inherit) reopen_stdio();
  /* Before mask_paths: it makes /proc/sys read-only. */
  if (apply_kernel_settings(cfg, err, errlen) != 0) goto out;
  rc = mask_paths(cfg, err, errlen);
out:
  close(root);
  return rc;
}

int loopback_up(char *err, size_t errlen) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return ERR("socket: %s", strerror(errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
  return rc == 0 ? 0 : ERR("bring up lo: %s", strerror(errno));
}
