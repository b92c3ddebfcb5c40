/* stack-init privileges: turning a forked child into the service (or an exec'd command) with
 * the container's user, capabilities, no_new_privs and seccomp filter, and dropping the init's
 * own capabilities to the service's. Raw syscalls only (capset, prctl, seccomp): no libcap, no
 * libseccomp; the engine sends numbers and a compiled program. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

/* capset(2) without libcap: version 3 takes two 32-bit halves. */
struct cap_header {
  uint32_t version;
  int pid;
};
struct cap_data {
  uint32_t effective, permitted, inheritable;
};
#define CAP_V3 0x20080522
#define CAP_KILL 5
/* linux/filter.h and linux/seccomp.h */
struct sock_fprog {
  unsigned short len;
  const void *filter;
};
#define SECCOMP_SET_MODE_FILTER 1


static int capset_all(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct cap_header h = {CAP_V3, 0};
  struct cap_data d[2] = {{(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
                          {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}};
  return (int)syscall(SYS_capset, &h, d);
}

int drop_bounding(const struct config *cfg) {
  for (int cap = 0; cap < 64; cap++) {
    if (cfg->caps & (1ull << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      return -1;
    }
  }
  return 0;
}

int drop_own_caps(const struct config *cfg) {
  uint64_t keep = cfg->caps;
  /* kill(2) of a process of another user needs CAP_KILL: without it, a service running as a
   * user and started with cap_drop [KILL] or [ALL] could not be stopped gracefully. */
  if (cfg->uid != 0) keep |= 1ull << CAP_KILL;
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  return capset_all(keep, keep, 0);
}

static int install_seccomp(const struct config *cfg) {
  struct sock_fprog prog = {(unsigned short)(cfg->seccomp_len / 8), cfg->seccomp};
  if (cfg->seccomp_len / 8 > 0xffff) return errno = E2BIG, -1;
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, cfg->seccomp_flags, &prog);
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

/* The order is runc's (libcontainer/standard_init_linux.go), for the same reasons:
 *  - without no_new_privs, seccomp(2) demands CAP_SYS_ADMIN (seccomp(2), EACCES): the filter
 *    goes in first, while this process still holds every capability;
 *  - the bounding set is dropped before the user changes: PR_CAPBSET_DROP needs CAP_SETPCAP,
 *    which a non-root user loses at setresuid;
 *  - with no_new_privs, the filter goes in last, right before execve, so that it need not
 *    allow what the setup itself calls (setgroups, capset, chdir...). */
void exec_process(const struct config *cfg, int errpipe) {
  int stage = ST_SECCOMP;
  /* An ignored signal stays ignored across execve(2): whatever the engine ignored (SIGPIPE,
   * typically) must not reach the service that way. */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* ulimits while every capability is still held: raising a hard limit needs
   * CAP_SYS_RESOURCE (setrlimit(2)). */
  stage = ST_RLIMIT;
  if (apply_rlimits(cfg) != 0) goto fail;
  /* linux.personality: before any seccomp filter, which may well deny personality(2). */
  stage = ST_PERSONALITY;
  if (cfg->has_personality && personality(cfg->personality) == -1) goto fail;
  /* umask, I/O priority, scheduler, memory policy: still as root (a realtime policy or the
   * realtime I/O class needs CAP_SYS_NICE / CAP_SYS_ADMIN) and before any seccomp filter. */
  if (apply_process_attrs(cfg, &stage) != 0) goto fail;
  stage = ST_SECCOMP;
  if (cfg->seccomp && !cfg->no_new_privs && install_seccomp(cfg) != 0) goto fail;
  stage = ST_CAPS;
  if (drop_bounding(cfg) != 0) goto fail;
  /* Another user with capabilities (an OCI bundle's, crun's order): PR_SET_KEEPCAPS keeps the
   * permitted set through setresuid, which still clears the effective one (capabilities(7));
   * capset then trims permitted and raises effective, and the ambient set is raised from them.
   * The flag is cleared again by execve. */
  int keep = cfg->uid != 0 &&
             (cfg->caps_permitted | cfg->caps_inheritable | cfg->caps_ambient) != 0;
  if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) goto fail;
  stage = ST_CREDS;
  if (setgroups(cfg->ngroups, cfg->groups) != 0 || setresgid(cfg->gid, cfg->gid, cfg->gid) != 0 ||
      setresuid(cfg->uid, cfg->uid, cfg->uid) != 0)
    goto fail;
  /* Root keeps the container's set; another user only what it was given above (none for the
   * engine's own services). Inheritable and ambient stay empty unless an OCI bundle asks, as
   * Docker's since 20.10.14 (CVE-2022-24769). */
  stage = ST_CAPS;
  uint64_t eff = cfg->uid == 0 ? cfg->caps : cfg->caps_effective;
  uint64_t prm = cfg->uid == 0 ? cfg->caps : cfg->caps_permitted;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 ||
      capset_all(eff, prm, cfg->caps_inheritable) != 0)
    goto fail;
  /* An OCI bundle's ambient set: raised once in permitted and inheritable (prctl(2)); execve(2)
   * keeps it (no file capabilities, no set-id: capabilities(7)), and for a user other than root
   * it is then all that user has, permitted and effective. */
  for (int cap = 0; cap < 64; cap++)
    if ((cfg->caps_ambient & (1ull << cap)) &&
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
      goto fail;
  stage = ST_CWD;
  if (chdir(cfg->cwd) != 0) goto fail;
  stage = ST_NNP;
  if (cfg->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) goto fail;
  stage = ST_SECCOMP;
  if (cfg->seccomp && cfg->no_new_privs && install_seccomp(cfg) != 0) goto fail;
  stage = ST_EXEC;
  exec_in_path(cfg);
fail:;
  int report[2] = {stage, errno};
  ssize_t w = write(errpipe, report, sizeof report);
  (void)w;
}
