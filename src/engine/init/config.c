/* stack-init configuration: reads the engine's message (wire.h) into struct config. Every value
 * is copied into its own NUL-terminated string; a value that must become a C string (a path, an
 * argument, an environment entry) and holds a NUL is refused, never cut short. Unknown tags and
 * malformed records are errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "init.h"
#include "wire.h"

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

/* A message body lives in pages of its own, so that free_message gives them back to the
 * kernel: the init is the only host memory a container costs, and its configuration (the
 * seccomp program alone is about 10 KiB) is no longer needed once the service runs. */
int read_message(int fd, unsigned char **body, uint32_t *len, char *err, size_t errlen) {
  unsigned char hdr[4];
  if (read_full(fd, hdr, sizeof hdr) != 0) return ERR("read message length: %s", strerror(errno));
  *len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
  if (*len > WIRE_MAX_MESSAGE) return ERR("message too large (%u bytes)", *len);
  void *m = mmap(NULL, *len ? *len : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return ERR("message of %u bytes: %s", *len, strerror(errno));
  *body = m;
  if (read_full(fd, *body, *len) != 0) return ERR("read message: %s", strerror(errno));
  return 0;
}

void free_message(unsigned char *body, uint32_t len) {
  if (body) munmap(body, len ? len : 1);
}

void release_config(struct config *cfg) {
  free_message(cfg->message, cfg->message_len);
  cfg->message = NULL;
  cfg->seccomp = NULL; /* it pointed into the message */
  cfg->seccomp_len = 0;
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

static void *grow(void *v, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return v;
  *cap = *cap ? *cap * 2 : 8;
  v = realloc(v, *cap * size);
  if (!v) abort();
  return v;
}

static const char *tag_name(uint16_t tag) {
  switch (tag) {
    case W_ARG: return "an argument";
    case W_ENV: return "an environment entry";
    case W_CWD: return "the working directory";
    case W_HOSTNAME: return "the hostname";
    case W_MOUNT_SRC: return "a mount source";
    case W_MOUNT_DST: return "a mount target";
    case W_MOUNT_DATA: return "a mount's options";
    case W_MOUNT_SUBPATH: return "a mount's subpath";
    default: return "a path";
  }
}

/* VAL as a C string; NULL (and ERR set) when it holds a NUL, which a C string cannot carry. */
static const char *cstr(uint16_t tag, const unsigned char *val, uint32_t len, char *err,
                        size_t errlen) {
  const unsigned char *nul = memchr(val, 0, len);
  if (nul) {
    if (tag == W_ENV) {
      const unsigned char *eq = memchr(val, '=', (size_t)(nul - val));
      int keylen = eq ? (int)(eq - val) : (int)(nul - val);
      snprintf(err, errlen, "environment variable %.*s holds a NUL byte", keylen, val);
    } else {
      snprintf(err, errlen, "%s holds a NUL byte", tag_name(tag));
    }
    return NULL;
  }
  char *s = malloc((size_t)len + 1);
  if (!s) abort();
  memcpy(s, val, len);
  s[len] = 0;
  return s;
}

static int u32(uint16_t tag, const unsigned char *val, uint32_t len, uint32_t *out, char *err,
               size_t errlen) {
  if (wire_u32(val, len, out) != 0)
    return ERR("config: record %u must be 4 bytes, got %u", tag, len);
  return 0;
}

unsigned kernel_fs(const char *dst) {
  static const struct {
    const char *dst;
    unsigned bit;
  } all[] = {{"/proc", KFS_PROC}, {"/sys", KFS_SYS},         {"/dev", KFS_DEV},
             {"/dev/pts", KFS_PTS}, {"/dev/shm", KFS_SHM}, {"/dev/mqueue", KFS_MQUEUE}};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (strcmp(dst, all[i].dst) == 0) return all[i].bit;
  return 0;
}

static int read_mount(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
                      size_t errlen) {
  struct bind b = {NULL, NULL, 0, 0, NULL, 0, NULL, 0, 0, NULL, NULL, 0};
  struct wire_reader r;
  wire_reader_init(&r, body, n);
  uint16_t tag;
  const unsigned char *val;
  uint32_t len, flags;
  int got;
  while ((got = wire_next(&r, &tag, &val, &len)) == 1) {
    if (tag == W_MOUNT_SRC) {
      if (!(b.src = cstr(tag, val, len, err, errlen))) return -1;
    } else if (tag == W_MOUNT_DST) {
      if (!(b.dst = cstr(tag, val, len, err, errlen))) return -1;
    } else if (tag == W_MOUNT_FLAGS) {
      if (u32(tag, val, len, &flags, err, errlen) != 0) return -1;
      b.ro = (flags & WIRE_MOUNT_RO) != 0;
      b.seed = (flags & WIRE_MOUNT_SEED) != 0;
      b.attrs = flags & (WIRE_MOUNT_NOSUID | WIRE_MOUNT_NODEV | WIRE_MOUNT_NOEXEC |
                         WIRE_MOUNT_IDMAP_REC | WIRE_MOUNT_NOSYMFOLLOW |
                         WIRE_MOUNT_NODIRATIME | WIRE_MOUNT_RELATIME | WIRE_MOUNT_NOATIME |
                         WIRE_MOUNT_STRICTATIME | WIRE_MOUNT_TMPCOPYUP);
    } else if (tag == W_MOUNT_RECURSIVE) {
      if (u32(tag, val, len, &b.recursive, err, errlen) != 0) return -1;
      if (b.recursive > 2) return ERR("config: unknown bind recursion %u", b.recursive);
    } else if (tag == W_MOUNT_KIND || tag == W_MOUNT_PROPAGATION) {
      if (u32(tag, val, len, tag == W_MOUNT_KIND ? &b.kind : &b.propagation, err, errlen) != 0)
        return -1;
      if (tag == W_MOUNT_KIND && b.kind > 4) return ERR("config: unknown mount kind %u", b.kind);
    } else if (tag == W_MOUNT_DATA) {
      if (!(b.data = cstr(tag, val, len, err, errlen))) return -1;
    } else if (tag == W_MOUNT_SUBPATH) {
      if (!(b.subpath = cstr(tag, val, len, err, errlen))) return -1;
    } else if (tag == W_MOUNT_IDMAP) {
      struct wire_reader m;
      uint16_t mtag;
      const unsigned char *mval;
      uint32_t mlen;
      int mgot;
      wire_reader_init(&m, val, len);
      while ((mgot = wire_next(&m, &mtag, &mval, &mlen)) == 1) {
        const char **map = mtag == WI_UIDS ? &b.idmap_uids : mtag == WI_GIDS ? &b.idmap_gids : NULL;
        if (!map) return ERR("config: unknown record %u in a mount's idmap", mtag);
        if (!(*map = cstr(mtag, mval, mlen, err, errlen))) return -1;
      }
      if (mgot < 0 || !b.idmap_uids || !b.idmap_gids)
        return ERR("config: a mount's idmap needs its uid and gid maps");
    } else {
      return ERR("config: unknown record %u in a mount", tag);
    }
  }
  if (got < 0) return ERR("config: a mount's record runs past its end");
  if ((!b.src && b.kind != 1 && b.kind != 4) || !b.dst)
    return ERR("config: a mount without source or target");
  if (b.kind == 4 && !kernel_fs(b.dst))
    return ERR("config: %s is not a kernel filesystem the init mounts", b.dst);
  cfg->binds = grow(cfg->binds, &cfg->cap_binds, cfg->nbinds, sizeof *cfg->binds);
  cfg->binds[cfg->nbinds++] = b;
  return 0;
}

static int read_device(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
                       size_t errlen) {
  struct device d = {NULL, 0, 0, 0, 0, 0, 0};
  struct wire_reader r;
  wire_reader_init(&r, body, n);
  uint16_t tag;
  const unsigned char *val;
  uint32_t len;
  int got;
  while ((got = wire_next(&r, &tag, &val, &len)) == 1) {
    unsigned *field = tag == W_DEV_TYPE    ? &d.type
                      : tag == W_DEV_MAJOR ? &d.major
                      : tag == W_DEV_MINOR ? &d.minor
                      : tag == W_DEV_MODE  ? &d.mode
                      : tag == W_DEV_UID   ? &d.uid
                      : tag == W_DEV_GID   ? &d.gid
                                           : NULL;
    if (tag == W_DEV_PATH) {
      if (!(d.path = cstr(tag, val, len, err, errlen))) return -1;
    } else if (field) {
      uint32_t v;
      if (u32(tag, val, len, &v, err, errlen) != 0) return -1;
      *field = v;
    } else {
      return ERR("config: unknown record %u in a device", tag);
    }
  }
  if (got < 0) return ERR("config: a device's record runs past its end");
  if (!d.path || (d.type != 'c' && d.type != 'b' && d.type != 'p'))
    return ERR("config: a device without path or type");
  cfg->devices = grow(cfg->devices, &cfg->cap_devices, cfg->ndevices, sizeof *cfg->devices);
  cfg->devices[cfg->ndevices++] = d;
  return 0;
}

/* One record into CFG. */
static int apply(struct config *cfg, uint16_t tag, const unsigned char *val, uint32_t len,
                 char *err, size_t errlen) {
  const char **str = tag == W_ROOTFS      ? &cfg->rootfs
                     : tag == W_UPPER     ? &cfg->upper
                     : tag == W_WORK      ? &cfg->work
                     : tag == W_LOWERDIRS ? &cfg->lowerdirs
                     : tag == W_ROOT_BIND ? &cfg->root_bind
                     : tag == W_HOSTNAME  ? &cfg->hostname
                     : tag == W_CWD       ? &cfg->cwd
                                          : NULL;
  struct strv *list = tag == W_ARG        ? &cfg->args
                      : tag == W_ENV      ? &cfg->env
                      : tag == W_MASKED   ? &cfg->masked
                      : tag == W_READONLY ? &cfg->readonly
                                          : NULL;
  uint32_t v;
  uint64_t v64;
  if (str || list) {
    const char *s = cstr(tag, val, len, err, errlen);
    if (!s) return -1;
    if (str) *str = s;
    else strv_push(list, s);
    return 0;
  }
  switch (tag) {
    case W_MOUNT: return read_mount(cfg, val, len, err, errlen);
    case W_DEVICE: return read_device(cfg, val, len, err, errlen);
    case W_RLIMIT: return read_rlimit(cfg, val, len, err, errlen);
    case W_CAPS_MORE: {
      struct wire_reader m;
      uint16_t mtag;
      const unsigned char *mval;
      uint32_t mlen;
      int mgot;
      wire_reader_init(&m, val, len);
      while ((mgot = wire_next(&m, &mtag, &mval, &mlen)) == 1) {
        uint64_t *set = mtag == WC_INHERITABLE ? &cfg->caps_inheritable
                        : mtag == WC_AMBIENT   ? &cfg->caps_ambient
                        : mtag == WC_PERMITTED ? &cfg->caps_permitted
                        : mtag == WC_EFFECTIVE ? &cfg->caps_effective
                                               : NULL;
        if (!set) return ERR("config: unknown record %u in the capability sets", mtag);
        if (wire_u64(mval, mlen, set) != 0) return ERR("config: a capability set must be 8 bytes");
      }
      return mgot < 0 ? ERR("config: the capability sets run past their end") : 0;
    }
    case W_KERNEL: return read_kernel(cfg, val, len, err, errlen);
    case W_SCHED: return read_sched(cfg, val, len, err, errlen);
    case W_MEMPOLICY: return read_mempolicy(cfg, val, len, err, errlen);
    case W_TIMENS: return read_timens(cfg, val, len, err, errlen);
    case W_SECCOMP:
      if (len == 0 || len % 8 != 0) return ERR("config: a seccomp program of %u bytes", len);
      cfg->seccomp = val;
      cfg->seccomp_len = len;
      return 0;
    case W_LOG_MAX_SIZE:
    case W_CAPS:
    case W_SHM_SIZE:
      if (wire_u64(val, len, &v64) != 0) return ERR("config: record %u must be 8 bytes", tag);
      if (tag == W_CAPS) cfg->caps = v64;
      else if (tag == W_SHM_SIZE) cfg->shm_size = (long long)v64;
      else cfg->log_max_size = (long long)v64;
      return 0;
    case W_LOG_MAX_FILES:
    case W_UID:
    case W_GID:
    case W_GROUP:
    case W_NO_NEW_PRIVS:
    case W_SYS_RW:
    case W_SECCOMP_FLAGS:
    case W_USERNS:
    case W_LAYERS_SHIFTED:
    case W_TTY:
    case W_STDIN_OPEN:
    case W_ROOT_READONLY:
    case W_CGROUPNS:
    case W_STDIO_INHERIT:
    case W_PAUSE_PIVOT:
    case W_LOG_NONE:
    case W_NS_JOINED:
    case W_ROOT_PROPAGATION:
    case W_PERSONALITY:
    case W_UMASK:
    case W_IOPRIO:
      if (u32(tag, val, len, &v, err, errlen) != 0) return -1;
      if (tag == W_LOG_MAX_FILES) cfg->log_max_files = (int)v;
      else if (tag == W_UID) cfg->uid = v;
      else if (tag == W_GID) cfg->gid = v;
      else if (tag == W_NO_NEW_PRIVS) cfg->no_new_privs = v != 0;
      else if (tag == W_SYS_RW) cfg->sys_rw = v != 0;
      else if (tag == W_SECCOMP_FLAGS) cfg->seccomp_flags = v;
      else if (tag == W_USERNS) cfg->userns = v != 0;
      else if (tag == W_LAYERS_SHIFTED) cfg->layers_shifted = v != 0;
      else if (tag == W_TTY) cfg->tty = v != 0;
      else if (tag == W_STDIN_OPEN) cfg->stdin_open = v != 0;
      else if (tag == W_ROOT_READONLY) cfg->root_readonly = v != 0;
      else if (tag == W_CGROUPNS) cfg->cgroupns = v != 0;
      else if (tag == W_STDIO_INHERIT) cfg->stdio_inherit = v != 0;
      else if (tag == W_PAUSE_PIVOT) cfg->pause_pivot = v != 0;
      else if (tag == W_LOG_NONE) cfg->log_none = v != 0;
      else if (tag == W_NS_JOINED) cfg->ns_joined = v;
      else if (tag == W_ROOT_PROPAGATION) cfg->root_propagation = v;
      else if (tag == W_PERSONALITY) cfg->has_personality = 1, cfg->personality = v;
      else if (tag == W_UMASK) cfg->has_umask = 1, cfg->umask_bits = v & 0777;
      else if (tag == W_IOPRIO) cfg->has_ioprio = 1, cfg->ioprio = v;
      else if (cfg->ngroups == sizeof cfg->groups / sizeof *cfg->groups)
        return ERR("config: more than %zu supplementary groups", cfg->ngroups);
      else cfg->groups[cfg->ngroups++] = v;
      return 0;
    default:
      return ERR("config: unknown record %u", tag);
  }
}

/* The configuration message. Its body stays mapped until release_config: the seccomp program
 * points into it. */
int read_config(int fd, struct config *cfg, char *err, size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  cfg->cwd = "/";
  cfg->log_max_size = 10 << 20;
  cfg->log_max_files = 3;
  unsigned char *body;
  uint32_t n;
  if (read_message(fd, &body, &n, err, errlen) != 0) return -1;
  cfg->message = body;
  cfg->message_len = n;
  struct wire_reader r;
  wire_reader_init(&r, body, n);
  uint16_t tag;
  const unsigned char *val;
  uint32_t len;
  int got;
  while ((got = wire_next(&r, &tag, &val, &len)) == 1)
    if (apply(cfg, tag, val, len, err, errlen) != 0) return -1;
  if (got < 0) return ERR("config: a record runs past the end of the message");
  if (cfg->args.n == 0) return ERR("config: no command to run");
  return 0;
}
