/* stack-init: the small static program that is PID 1 of every container (and the helper that
 * enters a running container for `stack exec`). Plain C over musl, no other libraries: it is the
 * only host memory a container costs. Shared declarations of its three files. */
#ifndef STACK_INIT_H
#define STACK_INIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Descriptors the engine hands over at exec (see the sequence in init.c). */
enum { CTL_FD = 3, DIR_FD = 4, PIDFD_FD = 4 };

struct bind {
  const char *src, *dst;
  int ro;
};

struct strv {
  const char **v; /* NULL-terminated */
  size_t n, cap;
};

struct config {
  /* root filesystem (container mode) */
  const char *rootfs, *upper, *work, *lowerdirs; /* lowerdirs: "a:b:c", topmost first */
  const char *hostname;
  struct bind *binds;
  size_t nbinds;
  /* the process */
  struct strv args, env;
  const char *cwd;
  uid_t uid;
  gid_t gid;
  gid_t groups[64];
  size_t ngroups;
  uint64_t caps; /* capability bit set kept for a root process */
  /* logging (container mode) */
  long long log_max_size;
  int log_max_files;
};

/* setup.c */
int read_config(int fd, struct config *cfg, char *err, size_t errlen);
int setup_rootfs(const struct config *cfg, char *err, size_t errlen);
int loopback_up(char *err, size_t errlen);
/* In the forked service (or exec'd) process: credentials, capabilities, cwd, then execve.
 * Returns only on failure, with errno set. */
void exec_process(const struct config *cfg, int errpipe);

/* log.c */
struct logfile;
struct logfile *log_open(int dirfd, long long max_size, int max_files);
/* Feeds bytes read from a stream ("stdout"/"stderr"); writes complete lines as records. */
void log_feed(struct logfile *lf, int stream, const char *buf, size_t n);
void log_flush(struct logfile *lf, int stream); /* the partial line left at EOF */
void log_line(struct logfile *lf, int stream, const char *msg); /* one line from init itself */
long long now_ms(void);

#endif
