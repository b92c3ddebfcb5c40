/* stack-init limits: the service's ulimits (setrlimit(2) in the forked process, so the init
 * itself keeps its own) and the container's kernel settings (namespaced sysctls, the NIS
 * domain name, oom_score_adj), set in the container's namespaces before /proc/sys is made
 * read-only. The engine checked the sysctl names against runc's list; the kernel has the last
 * word (a sysctl outside the container's namespaces is not writable here anyway). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "init.h"
#include "wire.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static const char* copy(const unsigned char* val, uint32_t len, char* err, size_t errlen) {
  if (memchr(val, 0, len)) return (void)ERR("config: a kernel setting holds a NUL byte"), NULL;
  char* s = malloc((size_t)len + 1);
  if (!s) abort();
  memcpy(s, val, len);
  s[len] = 0;
  return s;
}

int read_rlimit(struct config* cfg, const unsigned char* body, uint32_t n, char* err,
                size_t errlen) {
  struct rlimit_set rl = {0, UINT64_MAX, UINT64_MAX};
  int have = 0;
  struct wire_reader r;
  wire_reader_init(&r, body, n);
  uint16_t tag;
  const unsigned char* val;
  uint32_t len;
  int got;
  while ((got = wire_next(&r, &tag, &val, &len)) == 1) {
    if (tag == WR_RESOURCE) {
      if (wire_u32(val, len, &rl.resource) != 0) return ERR("config: ulimit resource size");
      have = 1;
    } else if (tag == WR_SOFT || tag == WR_HARD) {
      if (wire_u64(val, len, tag == WR_SOFT ? &rl.soft : &rl.hard) != 0)
        return ERR("config: ulimit value size");
    } else {
      return ERR("config: unknown record %u in a ulimit", tag);
    }
  }
  if (got < 0) return ERR("config: a ulimit's record runs past its end");
  if (!have || rl.resource >= RLIM_NLIMITS) return ERR("config: a ulimit without a resource");
  if (cfg->nrlimits == sizeof cfg->rlimits / sizeof *cfg->rlimits)
    return ERR("config: more than %zu ulimits", cfg->nrlimits);
  cfg->rlimits[cfg->nrlimits++] = rl;
  return 0;
}

int read_kernel(struct config* cfg, const unsigned char* body, uint32_t n, char* err,
                size_t errlen) {
  struct wire_reader r;
  wire_reader_init(&r, body, n);
  uint16_t tag;
  const unsigned char* val;
  uint32_t len, v;
  int got;
  while ((got = wire_next(&r, &tag, &val, &len)) == 1) {
    if (tag == WK_SYSCTL) {
      const char* s = copy(val, len, err, errlen);
      if (!s) return -1;
      if (!strchr(s, '=')) return ERR("config: sysctl without a value: %s", s);
      /* the strv helper lives in config.c; a fixed-growth copy here keeps it private */
      struct strv* l = &cfg->sysctls;
      if (l->n + 1 >= l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) abort();
      }
      l->v[l->n++] = s;
      l->v[l->n] = NULL;
    } else if (tag == WK_DOMAINNAME) {
      if (!(cfg->domainname = copy(val, len, err, errlen))) return -1;
    } else if (tag == WK_OOM_SCORE_ADJ) {
      if (wire_u32(val, len, &v) != 0 || v > 2000) return ERR("config: oom_score_adj");
      cfg->has_oom_score_adj = 1;
      cfg->oom_score_adj = (int)v - 1000;
    } else {
      return ERR("config: unknown record %u in the kernel settings", tag);
    }
  }
  if (got < 0) return ERR("config: a kernel setting's record runs past its end");
  return 0;
}

static int write_file(const char* path, const char* value, char* err, size_t errlen) {
  int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ERR("open %s: %s", path, strerror(errno));
  size_t len = strlen(value);
  ssize_t w = write(fd, value, len);
  int saved = errno;
  close(fd);
  if (w != (ssize_t)len) return ERR("write %s to %s: %s", value, path, strerror(saved));
  return 0;
}

int apply_kernel_settings(const struct config* cfg, char* err, size_t errlen) {
  for (size_t i = 0; i < cfg->sysctls.n; i++) {
    const char* kv = cfg->sysctls.v[i];
    const char* eq = strchr(kv, '=');
    char path[512];
    int n = snprintf(path, sizeof path, "/proc/sys/%.*s", (int)(eq - kv), kv);
    if (n < 0 || (size_t)n >= sizeof path) return ERR("sysctl %.*s: name too long", 64, kv);
    /* "net.ipv4.ip_forward" is /proc/sys/net/ipv4/ip_forward: dots are the separators. */
    for (char* p = path + 10; *p; p++)
      if (*p == '.')
        *p = '/';
      else if (*p == '/')
        *p = '.'; /* a '/' in a key stands for a dot in a name (vlan) */
    char what[600];
    snprintf(what, sizeof what, "sysctl %.*s", (int)(eq - kv), kv);
    if (write_file(path, eq + 1, err, errlen) != 0) {
      char inner[4096];
      snprintf(inner, sizeof inner, "%s", err);
      return ERR("%s: %s", what, inner);
    }
  }
  if (cfg->domainname && setdomainname(cfg->domainname, strlen(cfg->domainname)) != 0)
    return ERR("setdomainname %s: %s", cfg->domainname, strerror(errno));
  if (cfg->has_oom_score_adj) {
    char v[16];
    snprintf(v, sizeof v, "%d", cfg->oom_score_adj);
    if (write_file("/proc/self/oom_score_adj", v, err, errlen) != 0) return -1;
  }
  return 0;
}

int apply_rlimits(const struct config* cfg) {
  for (size_t i = 0; i < cfg->nrlimits; i++) {
    const struct rlimit_set* r = &cfg->rlimits[i];
    struct rlimit rl = {r->soft == UINT64_MAX ? RLIM_INFINITY : (rlim_t)r->soft,
                        r->hard == UINT64_MAX ? RLIM_INFINITY : (rlim_t)r->hard};
    if (setrlimit((int)r->resource, &rl) != 0) return -1;
  }
  return 0;
}
