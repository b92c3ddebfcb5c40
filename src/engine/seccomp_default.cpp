// Docker's default seccomp profile, as data. It follows moby/moby
// profiles/seccomp/default_linux.go at commit 00f3d189e420d485e42d15fe494f96d272284e0e (the
// version with CAP_BPF/CAP_PERFMON rules, AF_VSOCK refused, set_mempolicy_home_node), with one
// deliberate difference: name_to_handle_at is allowed only with CAP_SYS_ADMIN, as in moby before
// that commit (stack's own rule: handles are refused along with open_by_handle_at).
// Syscalls newer than this table answer ENOSYS (seccomp_compile.cpp), as under runc.
#include <linux/capability.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>

#include "engine/seccomp_profile.h"

namespace stack::engine::seccomp {
namespace {

constexpr uint64_t cap(int n) { return uint64_t{1} << n; }

Rule allow(std::vector<std::string> names, Condition includes = {}, Condition excludes = {}) {
  return Rule{
      std::move(names), Action{Action::Kind::kAllow}, {}, std::move(includes), std::move(excludes)};
}
Condition holding(int capability) {
  Condition c;
  c.caps = cap(capability);
  return c;
}
Condition on_arches(std::vector<std::string> arches) {
  Condition c;
  c.arches = std::move(arches);
  return c;
}
Rule allow_if_cap(int capability, std::vector<std::string> names) {
  return allow(std::move(names), holding(capability));
}
Rule allow_arg(std::string name, Arg arg, Condition includes = {}, Condition excludes = {}) {
  return Rule{{std::move(name)},
              Action{Action::Kind::kAllow},
              {arg},
              std::move(includes),
              std::move(excludes)};
}

// The namespace flags a container without CAP_SYS_ADMIN may not pass to clone(2).
constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                     CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;

// clang-format off
std::vector<std::string> always_allowed() {
  return {
      "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
      "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
      "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
      "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
      "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
      "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
      "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
      "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
      "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
      "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
      "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat",
      "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32",
      "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
      "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32",
      "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
      "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
      "getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
      "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
      "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "io_uring_enter",
      "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
      "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
      "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
      "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret",
      "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
      "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
      "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
      "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
      "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
      "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
      "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
      "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
      "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
      "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
      "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
      "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
      "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
      "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
      "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
      "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
      "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64",
      "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
      "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
      "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid",
      "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
      "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
      "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall",
      "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink",
      "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
      "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
      "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
      "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
      "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
      "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
      "writev",
  };
}
// clang-format on

Profile make_default_profile() {
  Profile p;
  p.default_action = Action{Action::Kind::kErrno, EPERM};
  p.arch_map = {
      {"SCMP_ARCH_X86_64", {"SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
      {"SCMP_ARCH_AARCH64", {"SCMP_ARCH_ARM"}},
      {"SCMP_ARCH_MIPS64", {"SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"}},
      {"SCMP_ARCH_MIPS64N32", {"SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"}},
      {"SCMP_ARCH_MIPSEL64", {"SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"}},
      {"SCMP_ARCH_MIPSEL64N32", {"SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"}},
      {"SCMP_ARCH_S390X", {"SCMP_ARCH_S390"}},
      {"SCMP_ARCH_RISCV64", {}},
  };
  auto& r = p.rules;
  r.push_back(allow(always_allowed()));
  // Before 4.8 a tracer could rewrite a syscall after seccomp had allowed it.
  Condition since_4_8;
  since_4_8.min_kernel = KernelVersion{4, 8};
  r.push_back(allow({"process_vm_readv", "process_vm_writev", "ptrace"}, since_4_8));
  r.push_back(allow_arg("socket", Arg{0, AF_VSOCK, 0, ArgOp::kNe}));
  // personality(2): Linux, 32-bit Linux, UNAME26 with either, and the query 0xffffffff.
  for (uint64_t persona : {0x0ULL, 0x0008ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL})
    r.push_back(allow_arg("personality", Arg{0, persona, 0, ArgOp::kEq}));
  r.push_back(allow({"sync_file_range2", "swapcontext"}, on_arches({"ppc64le"})));
  r.push_back(allow({"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                     "cacheflush", "set_tls"},
                    on_arches({"arm", "arm64"})));
  r.push_back(allow({"arch_prctl"}, on_arches({"amd64", "x32"})));
  r.push_back(allow({"modify_ldt"}, on_arches({"amd64", "x32", "x86"})));
  r.push_back(allow({"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"},
                    on_arches({"s390", "s390x"})));
  r.push_back(allow({"riscv_flush_icache"}, on_arches({"riscv64"})));
  r.push_back(allow_if_cap(CAP_DAC_READ_SEARCH, {"open_by_handle_at"}));
  // clang-format off
  r.push_back(allow_if_cap(CAP_SYS_ADMIN, {
      "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree",
      "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
      "syslog", "umount", "umount2", "unshare"}));
  // clang-format on
  // Without CAP_SYS_ADMIN, clone(2) only without namespace flags; s390 swaps the first two
  // arguments of clone.
  Condition admin_or_s390 = holding(CAP_SYS_ADMIN);
  admin_or_s390.arches = {"s390", "s390x"};
  r.push_back(allow_arg("clone", Arg{0, kNamespaceFlags, 0, ArgOp::kMaskedEq}, {}, admin_or_s390));
  r.push_back(allow_arg("clone", Arg{1, kNamespaceFlags, 0, ArgOp::kMaskedEq},
                        on_arches({"s390", "s390x"}), holding(CAP_SYS_ADMIN)));
  // clone3 passes its flags in memory, which seccomp cannot read: ENOSYS makes glibc and musl
  // fall back to clone(2), whose flags the rule above checks.
  r.push_back(
      Rule{{"clone3"}, Action{Action::Kind::kErrno, ENOSYS}, {}, {}, holding(CAP_SYS_ADMIN)});
  r.push_back(allow_if_cap(CAP_SYS_BOOT, {"reboot"}));
  r.push_back(allow_if_cap(CAP_SYS_CHROOT, {"chroot"}));
  r.push_back(allow_if_cap(CAP_SYS_MODULE, {"delete_module", "init_module", "finit_module"}));
  r.push_back(allow_if_cap(CAP_SYS_PACCT, {"acct"}));
  r.push_back(allow_if_cap(CAP_SYS_PTRACE, {"kcmp", "pidfd_getfd", "process_madvise",
                                            "process_vm_readv", "process_vm_writev", "ptrace"}));
  r.push_back(allow_if_cap(CAP_SYS_RAWIO, {"iopl", "ioperm"}));
  r.push_back(
      allow_if_cap(CAP_SYS_TIME, {"settimeofday", "stime", "clock_settime", "clock_settime64"}));
  r.push_back(allow_if_cap(CAP_SYS_TTY_CONFIG, {"vhangup"}));
  r.push_back(allow_if_cap(CAP_SYS_NICE,
                           {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}));
  r.push_back(allow_if_cap(CAP_SYSLOG, {"syslog"}));
  r.push_back(allow_if_cap(CAP_BPF, {"bpf"}));
  r.push_back(allow_if_cap(CAP_PERFMON, {"perf_event_open"}));
  return p;
}

}  // namespace

const Profile& default_profile() {
  static const Profile profile = make_default_profile();
  return profile;
}

}  // namespace stack::engine::seccomp
