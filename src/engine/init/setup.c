/* stack-init setup: reads the container's configuration from the engine, builds the root
 * filesystem inside the new mount namespace, and turns a forked child into the service process.
 * Runs as root in the container's fresh namespaces, single-threaded, before the service exists. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "init.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int read_full(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void strv_push(struct strv *s, const char *x) {
  if (s->n + 1 >= s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v) abort();
  }
  s->v[s->n++] = x;
  s->v[s->n] = NULL;
}

/* The configuration is a length (uint32, host order) then NUL-separated key/value pairs.
 * Repeated keys build lists; "bind" starts a mount that "bind_dst"/"bind_ro" complete. */
int read_config(int fd, struct config *cfg, char *err, size_t errlen) {
  uint32_t len;
  if (read_full(fd, &len, sizeof len) != 0) return ERR("read config length: %s", strerror(errno));
  if (len > (64u << 20)) return ERR("config too large (%u bytes)", len);
  char *buf = malloc(len + 1);
  if (!buf || read_full(fd, buf, len) != 0) return ERR("read config: %s", strerror(errno));
  buf[len] = 0;
  memset(cfg, 0, sizeof *cfg);
  cfg->cwd = "/";
  cfg->log_max_size = 10 << 20;
  cfg->log_max_files = 3;
  size_t cap_binds = 0;
  for (char *p = buf; p < buf + len;) {
    char *key = p;
    p += strlen(p) + 1;
    if (p >= buf + len + 1) return ERR("config: key %s has no value", key);
    char *val = p;
    p += strlen(p) + 1;
    if (!strcmp(key, "rootfs")) cfg->rootfs = val;
    else if (!strcmp(key, "upper")) cfg->upper = val;
    else if (!strcmp(key, "work")) cfg->work = val;
    else if (!strcmp(key, "lowerdirs")) cfg->lowerdirs = val;
    else if (!strcmp(key, "hostname")) cfg->hostname = val;
    else if (!strcmp(key, "arg")) strv_push(&cfg->args, val);
    else if (!strcmp(key, "env")) strv_push(&cfg->env, val);
    else if (!strcmp(key, "cwd")) cfg->cwd = val;
    else if (!strcmp(key, "uid")) cfg->uid = (uid_t)strtoul(val, NULL, 10);
    else if (!strcmp(key, "gid")) cfg->gid = (gid_t)strtoul(val, NULL, 10);
    else if (!strcmp(key, "group")) {
      if (cfg->ngroups < sizeof cfg->groups / sizeof *cfg->groups)
        cfg->groups[cfg->ngroups++] = (gid_t)strtoul(val, NULL, 10);
    } else if (!strcmp(key, "caps")) cfg->caps = strtoull(val, NULL, 16);
    else if (!strcmp(key, "log_max_size")) cfg->log_max_size = strtoll(val, NULL, 10);
    else if (!strcmp(key, "log_max_files")) cfg->log_max_files = atoi(val);
    else if (!strcmp(key, "bind")) {
      if (cfg->nbinds == cap_binds) {
        cap_binds = cap_binds ? cap_binds * 2 : 8;
        cfg->binds = realloc(cfg->binds, cap_binds * sizeof *cfg->binds);
        if (!cfg->binds) abort();
      }
      cfg->binds[cfg->nbinds++] = (struct bind){val, NULL, 0};
    } else if (!strcmp(key, "bind_dst") && cfg->nbinds) cfg->binds[cfg->nbinds - 1].dst = val;
    else if (!strcmp(key, "bind_ro") && cfg->nbinds) cfg->binds[cfg->nbinds - 1].ro = atoi(val);
    else return ERR("config: unknown key %s", key);
  }
  if (cfg->args.n == 0) return ERR("config: no command to run");
  return 0;
}

/* mkdir -p relative to the current directory (the new root before pivot_root). */
static int mkdirs(const char *path, mode_t mode) {
  char tmp[4096];
  size_t n = strlen(path);
  if (n >= sizeof tmp) return errno = ENAMETOOLONG, -1;
  memcpy(tmp, path, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -1;
  return 0;
}

/* A bind target inside the rootfs: "./etc/hosts" for "/etc/hosts", created as the kind of
 * object the source is, so a file can be bound over a file. */
static int make_target(const char *src, const char *rel) {
  struct stat st;
  if (stat(src, &st) != 0) return -1;
  if (S_ISDIR(st.st_mode)) return mkdirs(rel, 0755);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", rel);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    if (mkdirs(dir, 0755) != 0) return -1;
  }
  int fd = open(rel, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && errno != EISDIR) return -1;
  if (fd >= 0) close(fd);
  return 0;
}

struct node {
  const char* name;
  unsigned major, minor;
};

static int make_dev(char *err, size_t errlen) {
  if (mkdirs("dev", 0755) != 0) return ERR("mkdir /dev: %s", strerror(errno));
  if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") != 0)
    return ERR("mount tmpfs on /dev: %s", strerror(errno));
  static const struct node nodes[] = {{"dev/null", 1, 3},    {"dev/zero", 1, 5},
                                      {"dev/full", 1, 7},    {"dev/random", 1, 8},
                                      {"dev/urandom", 1, 9}, {"dev/tty", 5, 0}};
  for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
    if (mknod(nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) != 0)
      return ERR("mknod /%s: %s", nodes[i].name, strerror(errno));
    chmod(nodes[i].name, 0666); /* mknod honours the umask */
  }
  mkdir("dev/pts", 0755);
  if (mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5") != 0)
    return ERR("mount devpts: %s", strerror(errno));
  mkdir("dev/shm", 01777);
  if (mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"))
    return ERR("mount /dev/shm: %s", strerror(errno));
  mkdir("dev/mqueue", 0755);
  mount("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  static const char *links[][2] = {{"pts/ptmx", "dev/ptmx"},       {"/proc/self/fd", "dev/fd"},
                                   {"/proc/self/fd/0", "dev/stdin"}, {"/proc/self/fd/1", "dev/stdout"},
                                   {"/proc/self/fd/2", "dev/stderr"}};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++) symlink(links[i][0], links[i][1]);
  return 0;
}

/* Paths of /proc and /sys that would tell a container about the host or let it change it,
 * hidden or made read-only as Docker's default profile does. Run after pivot_root. */
static void mask_paths(void) {
  static const char *masked_files[] = {"/proc/kcore", "/proc/keys", "/proc/latency_stats",
                                       "/proc/timer_list", "/proc/sched_debug"};
  static const char *masked_dirs[] = {"/proc/acpi", "/proc/scsi", "/sys/firmware",
                                      "/sys/devices/virtual/powercap"};
  static const char *readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                   "/proc/sysrq-trigger"};
  for (size_t i = 0; i < sizeof masked_files / sizeof *masked_files; i++)
    mount("/dev/null", masked_files[i], NULL, MS_BIND, NULL);
  for (size_t i = 0; i < sizeof masked_dirs / sizeof *masked_dirs; i++)
    mount("tmpfs", masked_dirs[i], "tmpfs", MS_RDONLY, "size=0");
  for (size_t i = 0; i < sizeof readonly / sizeof *readonly; i++)
    if (mount(readonly[i], readonly[i], NULL, MS_BIND | MS_REC, NULL) == 0)
      mount(readonly[i], readonly[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL);
}

int setup_rootfs(const struct config *cfg, char *err, size_t errlen) {
  /* 1. Our copy of the host's mount tree must not propagate back to the host: everything
   *    mounted from here on lives and dies with this namespace. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    return ERR("make / private: %s", strerror(errno));
  if (cfg->hostname && sethostname(cfg->hostname, strlen(cfg->hostname)) != 0)
    return ERR("sethostname: %s", strerror(errno));
  if (!cfg->rootfs || !cfg->lowerdirs || !cfg->upper || !cfg->work)
    return ERR("config: rootfs, lowerdirs, upper and work are required");
  /* 2. The overlay: image layers below, the container's own writable layer on top. */
  char data[4096];
  int n = snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s", cfg->lowerdirs,
                   cfg->upper, cfg->work);
  if (n < 0 || (size_t)n >= sizeof data) return ERR("overlay options longer than a page");
  if (mount("overlay", cfg->rootfs, "overlay", 0, data) != 0)
    return ERR("mount overlay on %s: %s", cfg->rootfs, strerror(errno));
  if (chdir(cfg->rootfs) != 0) return ERR("chdir %s: %s", cfg->rootfs, strerror(errno));
  /* 3. Kernel filesystems. /proc after the PID namespace exists (it does: we are its PID 1). */
  mkdirs("proc", 0555);
  if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
    return ERR("mount /proc: %s", strerror(errno));
  mkdirs("sys", 0555);
  if (mount("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
    return ERR("mount /sys: %s", strerror(errno));
  if (make_dev(err, errlen) != 0) return -1;
  /* 4. Bind mounts: volumes and the files stack writes (/etc/hosts, /etc/hostname). A bind is
   *    made read-only by a second, remounting call (mount(2): MS_RDONLY is ignored on the first). */
  for (size_t i = 0; i < cfg->nbinds; i++) {
    const struct bind *b = &cfg->binds[i];
    if (!b->dst || b->dst[0] != '/') return ERR("bind %s: target must be absolute", b->src);
    char rel[4096];
    snprintf(rel, sizeof rel, ".%s", b->dst);
    if (make_target(b->src, rel) != 0) return ERR("bind %s: create %s: %s", b->src, b->dst, strerror(errno));
    if (mount(b->src, rel, NULL, MS_BIND | MS_REC, NULL) != 0)
      return ERR("bind %s on %s: %s", b->src, b->dst, strerror(errno));
    if (b->ro && mount(NULL, rel, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) != 0)
      return ERR("remount %s read-only: %s", b->dst, strerror(errno));
  }
  /* 5. pivot_root(".", ".") stacks the old root under the new one; detaching it leaves the
   *    container with no path back to the host tree (pivot_root(2), NOTES). */
  if (syscall(SYS_pivot_root, ".", ".") != 0) return ERR("pivot_root: %s", strerror(errno));
  if (umount2(".", MNT_DETACH) != 0) return ERR("detach old root: %s", strerror(errno));
  if (chdir("/") != 0) return ERR("chdir /: %s", strerror(errno));
  mask_paths();
  return 0;
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

/* capset(2) without libcap: version 3 takes two 32-bit halves. */
struct cap_header {
  uint32_t version;
  int pid;
};
struct cap_data {
  uint32_t effective, permitted, inheritable;
};
#define CAP_V3 0x20080522

static int set_capabilities(uint64_t keep, uid_t uid) {
  for (int cap = 0; cap < 64; cap++) {
    if (keep & (1ull << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break; /* past the last */
  }
  /* A non-root user keeps no capabilities: setuid() cleared them (capabilities(7)). */
  uint64_t set = uid == 0 ? keep : 0;
  struct cap_header h = {CAP_V3, 0};
  struct cap_data d[2] = {{(uint32_t)set, (uint32_t)set, (uint32_t)set},
                          {(uint32_t)(set >> 32), (uint32_t)(set >> 32), (uint32_t)(set >> 32)}};
  return (int)syscall(SYS_capset, &h, d);
}

static const char *env_path(const struct config *cfg) {
  for (size_t i = 0; i < cfg->env.n; i++)
    if (!strncmp(cfg->env.v[i], "PATH=", 5)) return cfg->env.v[i] + 5;
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* execvpe(3) looks PATH up in our own environment; the container's is in cfg->env. */
static void exec_in_path(const struct config *cfg) {
  const char *file = cfg->args.v[0];
  char *const *argv = (char *const *)cfg->args.v;
  char *const *envp = (char *const *)cfg->env.v;
  static const char *empty_env[] = {NULL};
  if (!envp) envp = (char *const *)empty_env;
  if (strchr(file, '/')) {
    execve(file, argv, envp);
    return;
  }
  int saved = ENOENT;
  const char *path = env_path(cfg);
  while (*path) {
    const char *end = strchrnul(path, ':');
    char full[4096];
    int n = snprintf(full, sizeof full, "%.*s/%s", (int)(end - path), path, file);
    if (n > 0 && (size_t)n < sizeof full) {
      execve(full, argv, envp);
      if (errno == EACCES) saved = EACCES;
      else if (errno != ENOENT && errno != ENOTDIR) return;
    }
    path = *end ? end + 1 : end;
  }
  errno = saved;
}

void exec_process(const struct config *cfg, int errpipe) {
  int stage = 0; /* what failed, for the report: 0 creds, 1 caps, 2 cwd, 3 exec */
  /* An ignored signal stays ignored across execve(2): whatever the engine ignored (SIGPIPE,
   * typically) must not reach the service that way. */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (setgroups(cfg->ngroups, cfg->groups) != 0 || setresgid(cfg->gid, cfg->gid, cfg->gid) != 0 ||
      setresuid(cfg->uid, cfg->uid, cfg->uid) != 0)
    goto fail;
  stage = 1;
  if (set_capabilities(cfg->caps, cfg->uid) != 0) goto fail;
  stage = 2;
  if (chdir(cfg->cwd) != 0) goto fail;
  stage = 3;
  exec_in_path(cfg);
fail:;
  int report[2] = {stage, errno};
  ssize_t w = write(errpipe, report, sizeof report);
  (void)w;
}
