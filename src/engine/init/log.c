/* stack-init logging: the service's stdout and stderr as timestamped lines in the CRI log
 * format ("2026-11-29T09:29:01.123456789Z stdout F text"), written to container.log in the
 * container's directory on the host (a descriptor opened there before pivot_root), rotated by
 * size so logs cannot fill the disk. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

#define LINE_MAX_BYTES 16384 /* a longer line is split into partial ("P") records */

struct logfile {
  int dirfd, fd;
  long long size, max_size;
  int max_files;
  char buf[2][LINE_MAX_BYTES];
  size_t len[2];
};

static const char *stream_name[2] = {"stdout", "stderr"};

long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void open_current(struct logfile *lf) {
  lf->fd = openat(lf->dirfd, "container.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  struct stat st;
  lf->size = (lf->fd >= 0 && fstat(lf->fd, &st) == 0) ? st.st_size : 0;
}

struct logfile *log_open(int dirfd, long long max_size, int max_files, int none) {
  struct logfile *lf = calloc(1, sizeof *lf);
  if (!lf) return NULL;
  lf->dirfd = dirfd;
  lf->max_size = max_size > 0 ? max_size : 10 << 20;
  lf->max_files = max_files > 0 ? max_files : 1;
  lf->fd = -1; /* none: every record is dropped in write_record, no file is made */
  if (!none) open_current(lf);
  return lf;
}

/* container.log -> .1 -> .2 ...; the oldest beyond max_files is replaced by the rename. */
static void rotate(struct logfile *lf) {
  if (lf->fd >= 0) close(lf->fd);
  if (lf->max_files == 1) {
    int fd = openat(lf->dirfd, "container.log", O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd >= 0) close(fd);
  } else {
    char from[32], to[32];
    for (int i = lf->max_files - 1; i >= 1; i--) {
      if (i == 1) snprintf(from, sizeof from, "container.log");
      else snprintf(from, sizeof from, "container.log.%d", i - 1);
      snprintf(to, sizeof to, "container.log.%d", i);
      renameat(lf->dirfd, from, lf->dirfd, to);
    }
  }
  open_current(lf);
}

static void write_record(struct logfile *lf, int stream, char tag, const char *text, size_t n) {
  if (lf->fd < 0) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  static char rec[LINE_MAX_BYTES + 64];
  int h = snprintf(rec, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s %c ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec,
                   stream_name[stream], tag);
  memcpy(rec + h, text, n);
  rec[h + n] = '\n';
  size_t total = (size_t)h + n + 1;
  /* One write per record: a reader never sees half a line from us. */
  ssize_t w;
  do w = write(lf->fd, rec, total);
  while (w < 0 && errno == EINTR);
  if (w > 0) lf->size += w;
  if (lf->size >= lf->max_size) rotate(lf);
}

void log_feed(struct logfile *lf, int stream, const char *data, size_t n) {
  char *buf = lf->buf[stream];
  size_t *len = &lf->len[stream];
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    size_t take = nl ? (size_t)(nl - data) : n;
    size_t room = LINE_MAX_BYTES - *len;
    if (take > room) take = room;
    memcpy(buf + *len, data, take);
    *len += take;
    data += take;
    n -= take;
    if (n > 0 && *data == '\n') {
      write_record(lf, stream, 'F', buf, *len);
      *len = 0;
      data++;
      n--;
    } else if (*len == LINE_MAX_BYTES) {
      write_record(lf, stream, 'P', buf, *len);
      *len = 0;
    }
  }
}

void log_flush(struct logfile *lf, int stream) {
  if (lf->len[stream] == 0) return;
  write_record(lf, stream, 'F', lf->buf[stream], lf->len[stream]);
  lf->len[stream] = 0;
}

void log_partial(struct logfile *lf, int stream) {
  if (lf->len[stream] == 0) return;
  write_record(lf, stream, 'P', lf->buf[stream], lf->len[stream]);
  lf->len[stream] = 0;
}

void log_line(struct logfile *lf, int stream, const char *msg) {
  write_record(lf, stream, 'F', msg, strlen(msg));
}
