/* The message format between the engine and stack-init, both directions: one definition for
 * the C init and the C++ engine (launcher.cpp). Typed and length-prefixed, so no byte of a
 * user's value (a NUL, a newline) can change what a message means. Pure functions, no I/O:
 * each side reads and writes messages its own way (the init blocking, the engine with a
 * deadline).
 *
 * A message is a u32 body length, then the body: records of u16 tag, u32 length, LENGTH bytes.
 * Integers are little-endian. Numbers are records of exactly 4 (u32) or 8 (u64) bytes; a
 * record may itself hold records (a mount: source, target, flags). An unknown tag, a record
 * running past its message, or a number of the wrong size is an error, never skipped. */
#ifndef STACK_INIT_WIRE_H
#define STACK_INIT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  WIRE_MAX_MESSAGE = 64u << 20, /* the engine's limit too: argv+env are far below it */

  /* engine -> init: the container (run mode) */
  W_ROOTFS = 1,      /* bytes: host path of the mount point */
  W_UPPER = 2,       /* bytes: host path */
  W_WORK = 3,        /* bytes: host path */
  W_LOWERDIRS = 4,   /* bytes: overlay lowerdir= value, topmost first */
  W_HOSTNAME = 5,    /* bytes */
  W_LOG_MAX_SIZE = 6,  /* u64 */
  W_LOG_MAX_FILES = 7, /* u32 */
  W_MOUNT = 8,       /* nested: W_MOUNT_SRC, W_MOUNT_DST, W_MOUNT_FLAGS */
  W_MOUNT_SRC = 9,   /* bytes: host path */
  W_MOUNT_DST = 10,  /* bytes: absolute path in the container */
  W_MOUNT_FLAGS = 11, /* u32: WIRE_MOUNT_* */
  W_MASKED = 12,     /* bytes: a path hidden in the container (repeated) */
  W_READONLY = 13,   /* bytes: a path made read-only in the container (repeated) */
  W_DEVICE = 14,     /* nested: W_DEV_PATH, W_DEV_TYPE, W_DEV_MAJOR, W_DEV_MINOR, W_DEV_MODE,
                        and W_DEV_UID, W_DEV_GID */
  W_DEV_PATH = 15,   /* bytes: "/dev/null" */
  W_DEV_TYPE = 16,   /* u32: 'c', 'b' or 'p' (a fifo) */
  W_DEV_MAJOR = 17,  /* u32 */
  W_DEV_MINOR = 18,  /* u32 */
  W_DEV_MODE = 19,   /* u32: permission bits */
  W_DEV_UID = 43,    /* u32 in a device: its owner on the host (absent: 0) */
  W_DEV_GID = 44,    /* u32 in a device: its group on the host (absent: 0) */
  W_SYS_RW = 20,     /* u32: 1 mounts /sys read-write (privileged) */
  W_USERNS = 21,     /* u32: 1 joins the user namespace at fd 5 (run mode) or the container's
                        (exec mode); see init.c */
  W_LAYERS_SHIFTED = 22, /* u32: 1 the lowerdirs are copies owned by the mapped ids: mounted
                            as they are, not idmapped (user namespace, run mode) */
  W_TTY = 23,        /* u32: 1 gives the command stdin as its controlling terminal, in a
                        session of its own (exec mode); run mode: the service gets a pty of
                        the container's devpts, the init keeps its master at fd 3; with
                        W_STDIO_INHERIT the pty is opened before READY and its master held at
                        fd 100 until GO, for the OCI runtime to copy (pidfd_getfd(2)) */
  /* storage (issue 13) */
  W_MOUNT_KIND = 24, /* u32 in a mount: 0 bind (default), 1 tmpfs (W_MOUNT_SRC ignored),
                        2 an image read-only (W_MOUNT_SRC its layers "a:b:c", topmost first),
                        3 cgroups: a tmpfs holding the container's cgroup (W_MOUNT_SRC, relative
                        to each hierarchy) of every v1 hierarchy under /sys/fs/cgroup, bound,
                        4 the init's own /proc, /sys, /dev, /dev/pts, /dev/shm or /dev/mqueue
                        (W_MOUNT_DST), mounted here in the list instead of before it (an OCI
                        bundle's order) */
  W_MOUNT_DATA = 25, /* bytes in a mount: a tmpfs's options ("size=1m,mode=1777") */
  W_MOUNT_PROPAGATION = 26, /* u32 in a mount: MS_SHARED, MS_SLAVE, MS_PRIVATE or
                               MS_UNBINDABLE for a bind or a tmpfs, set once
                               mounted; 0 leaves it private */
  W_MOUNT_SUBPATH = 27, /* bytes in a mount: bind this path of the source, resolved inside the
                           source as a root (a symlink in it cannot leave it) */
  W_ROOT_READONLY = 28, /* u32: 1 mounts the container's root read-only (read_only: true) */
  W_SHM_SIZE = 29,      /* u64: bytes of /dev/shm; absent: 64 MiB */
  W_LOG_NONE = 70,      /* u32: 1 the service's output is read and dropped: no log file is
                           made (logging driver none) */
  W_STDIO_INHERIT = 83, /* u32: 1 the service gets the init's own stdin, stdout and stderr (the
                           caller's, an OCI runtime's) instead of /dev/null and the log pipes */
  W_KERNEL = 31,     /* nested: WK_* (run mode), the container's kernel settings; limits.c */
  W_ROOT_BIND = 56,  /* bytes: host directory bound as the root instead of the overlay (an OCI
                        bundle's root, written in place); W_UPPER/W_WORK/W_LOWERDIRS unused */
  W_PAUSE_PIVOT = 57, /* u32: 1 the init stops between its mounts and pivot_root, answers
                          MOUNTED and waits for PIVOT: the OCI runtime runs its prestart,
                          createRuntime and createContainer hooks there (runtime-spec) */
  /* an OCI bundle's namespaces joined by path, its root's propagation, persona, idmapped
     mounts (issue 17) */
  W_NS_JOINED = 60,  /* u32: CLONE_NEW* of the namespaces joined by path. NET, IPC, PID, UTS,
                        CGROUP: the init was born in them (not unshared after a user namespace
                        is joined); NEWNS: the init joins the mount namespace at fd 6 (after
                        the user namespace), builds no root of its own there and chroot(2)s
                        into W_ROOT_BIND instead of pivot_root */
  W_ROOT_PROPAGATION = 61, /* u32: MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE (|MS_REC) set on
                              the root after pivot_root; absent: MS_REC|MS_PRIVATE */
  W_PERSONALITY = 62, /* u32: personality(2) persona of the service, set before execve */
  W_MOUNT_RECURSIVE = 71, /* u32 in a bind: 0 its mounts below come along, read-only with it
                             (the default); 1 its own mount only, none below (bind.recursive
                             disabled); 2 they come along but read-only is set on the top one
                             only (writable) */
  W_MOUNT_IDMAP = 63, /* nested in a mount: WI_* records, the maps of a user namespace the
                         init makes for it; the bind is idmapped through it (mount_setattr(2)) */
  W_TIMENS = 68,     /* nested: WT_* (run mode), a time namespace: the init joins WT_PATH, or
                        makes one with WT_OFFSETS, before anything else */
  W_CGROUPNS = 42,   /* u32: 1 makes a cgroup namespace before READY; the engine puts the
                        init into its cgroups before it sends the config (cgroup: private) */

  /* engine -> init: the process (run and exec modes) */
  W_ARG = 32,        /* bytes (repeated, argv order) */
  W_ENV = 33,        /* bytes "KEY=value" (repeated) */
  W_CWD = 34,        /* bytes */
  W_UID = 35,        /* u32 */
  W_GID = 36,        /* u32 */
  W_GROUP = 37,      /* u32 (repeated) */
  W_CAPS = 38,       /* u64: bounding set; also effective/permitted for uid 0 */
  W_NO_NEW_PRIVS = 39, /* u32: 1 sets PR_SET_NO_NEW_PRIVS before execve */
  W_SECCOMP = 40,    /* bytes: struct sock_filter array; absent: no filter */
  W_SECCOMP_FLAGS = 41, /* u32: SECCOMP_FILTER_FLAG_* for seccomp(2) */
  W_RLIMIT = 30,     /* nested: WR_* (repeated), a setrlimit(2) just before execve */
  W_CAPS_MORE = 75,  /* nested: WC_* u64 records, the inheritable and ambient sets (an OCI
                        bundle's), and for a uid other than 0 its permitted and effective
                        sets, kept through setresuid; absent: all empty */
  /* an OCI bundle's process settings, set in the process just before execve (issue 17) */
  W_UMASK = 65,      /* u32: umask(2) */
  W_IOPRIO = 66,     /* u32: ioprio_set(2) value (class << 13 | level) */
  W_SCHED = 67,      /* nested: WS_* records, sched_setattr(2) */
  W_MEMPOLICY = 69,  /* nested: WM_* records, set_mempolicy(2) */
  /* terminals (tty, issues 13 and 15) */
  W_STDIN_OPEN = 50, /* u32: 1 the service's stdin is a pipe whose writing end the init keeps
                        at fd 3 (run mode, stdin_open without tty); the init also reads
                        control messages from the pipe whose writing end it keeps at
                        STDIN_CTL_FD (init.h) */
  /* daemon -> init, after STARTED, on the STDIN_CTL_FD pipe (run mode, stdin_open) */
  W_STDIN_CLOSE = 51, /* empty: the client's stdin ended (`run -i`): the init closes its
                         writing end of the service's stdin, so the service reads EOF once
                         the daemon has closed its own copy */

  /* engine -> init: control */
  W_GO = 64,         /* empty: start the service (run mode, step 4) */
  W_PIVOT = 58,      /* empty: go on to pivot_root (after MOUNTED, with W_PAUSE_PIVOT) */

  /* init -> engine: replies */
  W_READY = 80,      /* empty: the container is set up (step 3) */
  W_STARTED = 81,    /* u32: the service's pid, as the init sees it */
  W_ERROR = 82,      /* bytes: why it failed, any text */
  W_MOUNTED = 59     /* empty: the root and its mounts are built, pivot_root not yet done
                        (W_PAUSE_PIVOT); the init waits for PIVOT */
};

enum {
  WIRE_MOUNT_RO = 1,
  WIRE_MOUNT_SEED = 2, /* a volume: when its source is empty, the image's content at the
                          target is copied into it first (Docker's copy-up; not nocopy) */
  WIRE_MOUNT_NOSUID = 4, /* a bind: MOUNT_ATTR_NOSUID */
  WIRE_MOUNT_NODEV = 8,  /* a bind: MOUNT_ATTR_NODEV */
  WIRE_MOUNT_NOEXEC = 16, /* a bind: MOUNT_ATTR_NOEXEC */
  WIRE_MOUNT_IDMAP_REC = 32, /* a bind with W_MOUNT_IDMAP: every mount of its tree idmapped
                                ("ridmap"), not only its top one ("idmap") */
  /* an OCI bundle's mount options (issue 17) */
  /* 64: free ("bind", not "rbind", travels as W_MOUNT_RECURSIVE 1) */
  WIRE_MOUNT_NOSYMFOLLOW = 128,  /* MOUNT_ATTR_NOSYMFOLLOW / MS_NOSYMFOLLOW */
  WIRE_MOUNT_NODIRATIME = 256,   /* MOUNT_ATTR_NODIRATIME / MS_NODIRATIME */
  WIRE_MOUNT_RELATIME = 512,     /* the atime mode: at most one of these three */
  WIRE_MOUNT_NOATIME = 1024,
  WIRE_MOUNT_STRICTATIME = 2048,
  WIRE_MOUNT_TMPCOPYUP = 4096    /* a tmpfs: the root's content at its target copied into it */
};

/* Records inside a W_MOUNT_IDMAP record: uid_map(5) and gid_map text ("0 1000 1\n", up to
 * 340 lines as the kernel allows). */
enum { WI_UIDS = 1, WI_GIDS = 2 };

/* Records inside a W_CAPS_MORE record. */
enum { WC_INHERITABLE = 1, WC_AMBIENT = 2, WC_PERMITTED = 3, WC_EFFECTIVE = 4 };

/* Records inside a W_SCHED record: struct sched_attr's fields (sched_setattr(2)); nice is an
 * s32 sent as u32. */
enum {
  WS_POLICY = 1, /* u32 */
  WS_NICE = 2,   /* u32 */
  WS_PRIORITY = 3, /* u32 */
  WS_FLAGS = 4,  /* u64 */
  WS_RUNTIME = 5, /* u64 ns */
  WS_DEADLINE = 6, /* u64 ns */
  WS_PERIOD = 7  /* u64 ns */
};

/* Records inside a W_MEMPOLICY record: the mode with its MPOL_F_* flags, and the node mask as
 * u64 words, lowest nodes first (absent for MPOL_DEFAULT and MPOL_LOCAL). */
enum { WM_MODE = 1 /* u32 */, WM_NODES = 2 /* bytes: u64 words, little-endian */ };

/* Records inside a W_TIMENS record: a namespace to join (bytes: its path, opened by the init in
 * the host's mount namespace), or the offsets of a new one (bytes: timens_offsets lines,
 * "monotonic 5000 0\n", time_namespaces(7)). */
enum { WT_PATH = 1, WT_OFFSETS = 2 };

/* Records inside a W_RLIMIT record. */
enum { WR_RESOURCE = 1 /* u32 RLIMIT_* */, WR_SOFT = 2 /* u64 */, WR_HARD = 3 /* u64 */ };
/* Records inside a W_KERNEL record: a sysctl "key=value" (repeated; a key never holds '='),
 * the NIS domain name, and oom_score_adj + 1000 (u32). */
enum { WK_SYSCTL = 1, WK_DOMAINNAME = 2, WK_OOM_SCORE_ADJ = 3 };

struct wire_reader {
  const unsigned char *p, *end;
};

/* Starts reading the records of BODY (LEN bytes). */
void wire_reader_init(struct wire_reader *r, const void *body, size_t len);
/* The next record: 1 with *TAG, *VAL and *LEN set; 0 at the end; -1 when a header or a value
 * runs past the end of the body. */
int wire_next(struct wire_reader *r, uint16_t *tag, const unsigned char **val, uint32_t *len);
/* A number record's value: 0, or -1 when LEN is not its size. */
int wire_u32(const unsigned char *val, uint32_t len, uint32_t *out);
int wire_u64(const unsigned char *val, uint32_t len, uint64_t *out);
/* Appends a record to BUF (CAP bytes, *USED so far); -1 when it does not fit. */
int wire_put(unsigned char *buf, size_t cap, size_t *used, uint16_t tag, const void *val,
             uint32_t len);

#ifdef __cplusplus
}
#endif

#endif
