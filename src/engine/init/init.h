/* stack-init: the small static program that is PID 1 of every container (and the helper that
 * enters a running container for `stack exec`). Plain C over musl, no other libraries: it is the
 * only host memory a container costs. Shared declarations of its files. */
#ifndef STACK_INIT_H
#define STACK_INIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Descriptors the engine hands over at exec (see the sequence in init.c). */
enum { CTL_FD = 3, DIR_FD = 4, PIDFD_FD = 4, USERNS_FD = 5, MNTNS_FD = 6 };
/* An OCI runtime's terminal master, held from READY to GO for the runtime to copy with
 * pidfd_getfd(2) (W_TTY with W_STDIO_INHERIT): high, clear of the descriptors opened before. */
enum { TTY_MASTER_FD = 100 };
/* stdin_open without a tty (run mode): the writing end of the init's control pipe, for the daemon
 * to copy with pidfd_getfd(2) and send W_STDIN_CLOSE on (wire.h); the init reads the other end. */
enum { STDIN_CTL_FD = 101 };

struct bind {
  const char *src, *dst;
  int ro;
  unsigned kind;            /* 0 bind, 1 tmpfs, 2 image: SRC its layers, 3 cgroups: SRC the
                               container's cgroup, 4 one of the init's kernel filesystems at
                               DST, at this place of the list (wire.h W_MOUNT_KIND) */
  const char *data;         /* tmpfs options, or NULL */
  unsigned propagation;     /* MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE, or 0 */
  const char *subpath;      /* bind this path of SRC, resolved inside SRC; or NULL */
  int seed;                 /* copy the root's content at DST into an empty SRC first */
  unsigned attrs;           /* WIRE_MOUNT_* but RO and SEED (NOSUID, NOATIME, ...) */
  const char *idmap_uids, *idmap_gids; /* bind: idmapped through these maps, or NULL */
  unsigned recursive;       /* bind: W_MOUNT_RECURSIVE's 0 (all, read-only with it), 1 its own
                               mount only, 2 all but read-only on the top only */
};

struct device {
  const char *path; /* "/dev/null" */
  unsigned type;    /* 'c', 'b' or 'p' */
  unsigned major, minor, mode;
  unsigned uid, gid; /* its owner on the host */
};

struct strv {
  const char **v; /* NULL-terminated */
  size_t n, cap;
};

struct config {
  /* root filesystem (container mode) */
  const char *rootfs, *upper, *work, *lowerdirs; /* lowerdirs: "a:b:c", topmost first */
  const char *root_bind;        /* W_ROOT_BIND: bound as the root, no overlay */
  const char *hostname;
  struct bind *binds;
  size_t nbinds, cap_binds;
  struct device *devices;
  size_t ndevices, cap_devices;
  struct strv masked, readonly; /* paths hidden / made read-only after pivot_root */
  int sys_rw;                   /* privileged: /sys read-write */
  int userns;                   /* join a user namespace (USERNS_FD, or the container's) */
  int layers_shifted;           /* with userns: the lowerdirs are already the mapped ids' */
  int tty;                      /* exec mode: stdin is the command's controlling terminal;
                                   run mode: the service gets a pty (tty: true) */
  int stdin_open;               /* run mode: the service's stdin is a pipe the init keeps open */
  int root_readonly;            /* read_only: the overlay mounted read-only */
  int stdio_inherit;            /* the service's stdio is the init's own (W_STDIO_INHERIT) */
  long long shm_size;           /* bytes of /dev/shm; 0: 64 MiB */
  int cgroupns;                 /* a cgroup namespace of its own, made before READY */
  int pause_pivot;              /* MOUNTED, then wait for PIVOT, before pivot_root (OCI hooks) */
  unsigned ns_joined;           /* CLONE_NEW* joined by path (W_NS_JOINED); NEWNS at MNTNS_FD */
  unsigned long root_propagation; /* MS_* set on / after pivot_root; 0: MS_REC|MS_PRIVATE */
  int has_personality;
  unsigned personality;         /* personality(2) of the service */
  /* kernel settings of the container (limits.c) */
  struct strv sysctls;     /* "key=value" */
  const char *domainname;  /* NULL: none */
  int has_oom_score_adj, oom_score_adj;
  /* the process */
  struct strv args, env;
  const char *cwd;
  uid_t uid;
  gid_t gid;
  gid_t groups[64];
  size_t ngroups;
  uint64_t caps;    /* the bounding set; also effective and permitted for uid 0 */
  uint64_t caps_inheritable, caps_ambient; /* W_CAPS_MORE */
  uint64_t caps_permitted, caps_effective;  /* another uid's, kept through setresuid */
  /* an OCI bundle's process settings (attrs.c); has_*: set, else the init's own are kept */
  int has_umask, has_ioprio, has_sched, has_mempolicy;
  unsigned umask_bits, ioprio;
  struct sched_set {
    uint32_t policy, priority;
    int32_t nice;
    uint64_t flags, runtime, deadline, period;
  } sched;
  unsigned mempolicy_mode;      /* MPOL_* | MPOL_F_* */
  uint64_t mempolicy_nodes[16]; /* up to 1024 nodes */
  size_t mempolicy_words;
  /* a time namespace (run mode, W_TIMENS): joined at TIMENS_PATH, or made with these offsets */
  int timens;
  const char *timens_path, *timens_offsets;
  int no_new_privs; /* PR_SET_NO_NEW_PRIVS before execve */
  const unsigned char *seccomp; /* struct sock_filter array, or NULL */
  size_t seccomp_len;
  unsigned seccomp_flags; /* SECCOMP_FILTER_FLAG_* */
  struct rlimit_set {
    unsigned resource;
    uint64_t soft, hard; /* UINT64_MAX: unlimited */
  } rlimits[16];
  size_t nrlimits;
  /* logging (container mode) */
  long long log_max_size;
  int log_max_files;
  int log_none; /* W_LOG_NONE */
  unsigned char *message; /* the engine's message, until release_config */
  uint32_t message_len;
};

/* config.c: the engine's message (wire.h) into CFG. 0, or -1 with a message in ERR. */
int read_message(int fd, unsigned char **body, uint32_t *len, char *err, size_t errlen);
int read_config(int fd, struct config *cfg, char *err, size_t errlen);
void free_message(unsigned char *body, uint32_t len);
/* Gives back the message's pages once the service runs (the seccomp program goes with it). */
void release_config(struct config *cfg);

/* inroot.c: paths inside the container's root, never outside it (openat2 RESOLVE_IN_ROOT). */
enum { IR_NONE = 0, IR_DIR = 1, IR_FILE = 2 };
/* An O_PATH descriptor of PATH resolved inside ROOTFD, following the root's symlinks as the
 * container would, creating missing components (directories, and the last as CREATE says). */
int open_in_root(int rootfd, const char *path, int create, char *err, size_t errlen);
/* mount(2) of a filesystem onto PATH inside ROOTFD. */
int mount_in_root(int rootfd, const char *path, const char *fstype, const char *source,
                  unsigned long flags, const char *data, char *err, size_t errlen);
/* A bind mount of host SRC onto DST inside ROOTFD, read-only from birth when RO. */
int bind_in_root(int rootfd, const char *src, const char *dst, int ro, char *err, size_t errlen);
/* A detached copy of the mount at PATH, idmapped through the user namespace USERNS. */
int idmapped_tree(const char *path, int userns, char *err, size_t errlen);
/* A detached, recursive copy of the tree at FD, moved onto FD's own place: a mount of the
 * caller's namespace, not locked (pivot_root(2) refuses a locked new root). Its descriptor. */
int remount_own(int fd, char *err, size_t errlen);

/* The kernel filesystems the init mounts itself (setup.c), as bits (config.c names them). A W_MOUNT_KIND 4 entry
 * names one by its target; 0: not one of them. */
enum { KFS_PROC = 1, KFS_SYS = 2, KFS_DEV = 4, KFS_PTS = 8, KFS_SHM = 16, KFS_MQUEUE = 32 };
unsigned kernel_fs(const char *dst);

/* mounts.c: one entry of the container's mounts (volumes, binds, tmpfs, secrets) onto ROOT. */
int mount_one(int root, const struct bind *b, char *err, size_t errlen);
/* The overlay at ROOT made read-only (not the mounts below it). */
int root_readonly(int root, char *err, size_t errlen);
/* limits.c: W_RLIMIT and W_KERNEL records into CFG (0, or -1 with ERR), and applying them. */
int read_rlimit(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
                size_t errlen);
int read_kernel(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
                size_t errlen);
/* In the container's namespaces, /proc/sys still writable: sysctls, domain name, OOM score. */
int apply_kernel_settings(const struct config *cfg, char *err, size_t errlen);
/* setrlimit(2) of each ulimit in the calling process (-1 with errno). */
int apply_rlimits(const struct config *cfg);

/* attrs.c: W_SCHED, W_MEMPOLICY and W_TIMENS records into CFG (0, or -1 with ERR); setting the
 * umask, I/O priority, scheduler and memory policy in the calling process (-1 with errno and
 * *STAGE, an enum stage); and entering the container's time namespace (the init itself, before
 * it starts anything: 0, or -1 with ERR). */
int read_sched(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
               size_t errlen);
int read_mempolicy(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
                   size_t errlen);
int read_timens(struct config *cfg, const unsigned char *body, uint32_t n, char *err,
                size_t errlen);
int apply_process_attrs(const struct config *cfg, int *stage);
int enter_timens(const struct config *cfg, char *err, size_t errlen);

/* init.c: answers MOUNTED and waits for the engine's PIVOT (W_PAUSE_PIVOT). 0, or -1 with ERR
 * (the engine gave up: a hook failed). */
int pause_before_pivot(char *err, size_t errlen);

/* setup.c */
int setup_rootfs(const struct config *cfg, char *err, size_t errlen);
int loopback_up(char *err, size_t errlen);

/* process.c */
/* What failed in the forked child, for its report to the init (spawn in init.c). */
enum stage { ST_CREDS, ST_CAPS, ST_CWD, ST_EXEC, ST_SECCOMP, ST_NNP, ST_CTTY, ST_RLIMIT,
            ST_PERSONALITY, ST_IOPRIO, ST_SCHED, ST_MEMPOLICY };
/* In the forked service (or exec'd) process: credentials, capabilities, no_new_privs, seccomp,
 * cwd, then execve. Returns only on failure, with errno set. */
void exec_process(const struct config *cfg, int errpipe);
/* Drops the bounding set of the calling process to CFG's capabilities. */
int drop_bounding(const struct config *cfg);
/* Keeps only CFG's capabilities in the calling (root) process, plus CAP_KILL when the process
 * it supervises runs as another user (to forward signals). */
int drop_own_caps(const struct config *cfg);

/* log.c */
struct logfile;
struct logfile *log_open(int dirfd, long long max_size, int max_files, int none);
/* Feeds bytes read from a stream ("stdout"/"stderr"); writes complete lines as records. */
void log_feed(struct logfile *lf, int stream, const char *buf, size_t n);
void log_flush(struct logfile *lf, int stream); /* the partial line left at EOF */
/* The partial line buffered so far as a partial ("P") record, at once: a terminal's prompt
 * has no newline, and `stack attach` shows it as it comes. */
void log_partial(struct logfile *lf, int stream);
void log_line(struct logfile *lf, int stream, const char *msg); /* one line from init itself */
long long now_ms(void);

#endif
