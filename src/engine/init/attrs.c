/* stack-init process attributes of an OCI bundle: the umask, I/O priority, scheduler and memory
 * policy set in the forked service (or exec'd command) just before its credentials change, and
 * the container's time namespace, entered by the init itself before it starts anything. Raw
 * syscalls (musl has no wrappers for sched_setattr, ioprio_set, set_mempolicy); the engine
 * checked the names and ranges, the kernel has the last word. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "wire.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x80
#endif
#define IOPRIO_WHO_PROCESS 1

/* linux/sched/types.h: the first version of the structure (SCHED_ATTR_SIZE_VER0). */
struct sched_attr_v0 {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};

int read_sched(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
               size_t errlen) {
  struct wire_reader r;
  wire_reader_init(&r, body, n);
  uint16_t tag;
  const unsigned char *val;
  uint32_t len, v;
  int got;
  while ((got = wire_next(&r, &tag, &val, &len)) == 1) {
    uint64_t *wide = tag == WS_FLAGS      ? &cfg->sched.flags
                     : tag == WS_RUNTIME  ? &cfg->sched.runtime
                     : tag == WS_DEADLINE ? &cfg->sched.deadline
                     : tag == WS_PERIOD   ? &cfg->sched.period
                                          : NULL;
    if (wide) {
      if (wire_u64(val, len, wide) != 0) return ERR("config: a scheduler value must be 8 bytes");
    } else if (tag == WS_POLICY || tag == WS_NICE || tag == WS_PRIORITY) {
      if (wire_u32(val, len, &v) != 0) return ERR("config: a scheduler value must be 4 bytes");
      if (tag == WS_POLICY) cfg->sched.policy = v;
      else if (tag == WS_NICE) cfg->sched.nice = (int32_t)v;
      else cfg->sched.priority = v;
    } else {
      return ERR("config: unknown record %u in the scheduler", tag);
    }
  }
  if (got < 0) return ERR("config: the scheduler's records run past their end");
  cfg->has_sched = 1;
  return 0;
}

int read_mempolicy(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
                   size_t errlen) {
  struct wire_reader r;
  wire_reader_init(&r, body, n);
  uint16_t tag;
  const unsigned char *val;
  uint32_t len;
  int got, mode = 0;
  while ((got = wire_next(&r, &tag, &val, &len)) == 1) {
    if (tag == WM_MODE) {
      if (wire_u32(val, len, &cfg->mempolicy_mode) != 0)
        return ERR("config: the memory policy's mode must be 4 bytes");
      mode = 1;
    } else if (tag == WM_NODES) {
      size_t max = sizeof cfg->mempolicy_nodes / sizeof *cfg->mempolicy_nodes;
      if (len % 8 != 0 || len / 8 > max)
        return ERR("config: a node mask of %u bytes (8 to %zu)", len, max * 8);
      for (uint32_t i = 0; i < len / 8; i++)
        if (wire_u64(val + 8 * i, 8, &cfg->mempolicy_nodes[i]) != 0) return -1;
      cfg->mempolicy_words = len / 8;
    } else {
      return ERR("config: unknown record %u in the memory policy", tag);
    }
  }
  if (got < 0 || !mode) return ERR("config: a memory policy without its mode");
  cfg->has_mempolicy = 1;
  return 0;
}

int read_timens(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
                size_t errlen) {
  struct wire_reader r;
  wire_reader_init(&r, body, n);
  uint16_t tag;
  const unsigned char *val;
  uint32_t len;
  int got;
  while ((got = wire_next(&r, &tag, &val, &len)) == 1) {
    if (tag != WT_PATH && tag != WT_OFFSETS)
      return ERR("config: unknown record %u in the time namespace", tag);
    if (memchr(val, 0, len)) return ERR("config: the time namespace's record holds a NUL byte");
    char *s = malloc((size_t)len + 1);
    if (!s) abort();
    memcpy(s, val, len);
    s[len] = 0;
    if (tag == WT_PATH) cfg->timens_path = s;
    else cfg->timens_offsets = s;
  }
  if (got < 0) return ERR("config: the time namespace's records run past their end");
  cfg->timens = 1;
  return 0;
}

int apply_process_attrs(const struct config *cfg, int *stage) {
  if (cfg->has_umask) umask((mode_t)cfg->umask_bits);
  *stage = ST_IOPRIO;
  if (cfg->has_ioprio && syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (int)cfg->ioprio) != 0)
    return -1;
  *stage = ST_SCHED;
  if (cfg->has_sched) {
    struct sched_attr_v0 a = {sizeof a,         cfg->sched.policy,   cfg->sched.flags,
                              cfg->sched.nice,  cfg->sched.priority, cfg->sched.runtime,
                              cfg->sched.deadline, cfg->sched.period};
    if (syscall(SYS_sched_setattr, 0, &a, 0) != 0) return -1;
  }
  *stage = ST_MEMPOLICY;
  /* maxnode counts one past the mask's last bit (set_mempolicy(2): the kernel drops one). */
  if (cfg->has_mempolicy &&
      syscall(SYS_set_mempolicy, (int)cfg->mempolicy_mode,
              cfg->mempolicy_words ? cfg->mempolicy_nodes : NULL,
              cfg->mempolicy_words ? cfg->mempolicy_words * 64 + 1 : 0) != 0)
    return -1;
  return 0;
}

/* time_namespaces(7): unshare(CLONE_NEWTIME) makes a namespace for the caller's children only,
 * whose offsets can be written until a process enters it; the init then enters it itself
 * (setns of its time_for_children), so that an exec, which joins the init's namespaces, lands
 * there too. Joining one by path: setns(2). Both need a single-threaded caller (EUSERS), which
 * the engine is not: here, in the init, before anything of the container is made. */
int enter_timens(const struct config *cfg, char *err, size_t errlen) {
  const char *path = cfg->timens_path ? cfg->timens_path : "/proc/self/ns/time_for_children";
  if (!cfg->timens_path) {
    if (unshare(CLONE_NEWTIME) != 0) return ERR("time namespace: %s", strerror(errno));
    const char *o = cfg->timens_offsets;
    if (o && *o) {
      int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
      ssize_t len = (ssize_t)strlen(o);
      if (fd < 0 || write(fd, o, (size_t)len) != len) {
        int e = errno;
        if (fd >= 0) close(fd);
        return ERR("time namespace offsets \"%s\": %s", o, strerror(e));
      }
      close(fd);
    }
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ERR("time namespace %s: %s", path, strerror(errno));
  int rc = setns(fd, CLONE_NEWTIME);
  int e = errno;
  close(fd);
  if (rc != 0) return ERR("join the time namespace %s: %s", path, strerror(e));
  return 0;
}
