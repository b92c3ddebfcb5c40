// The compiled programs against the real kernel, without root: a forked child sets
// no_new_privs, installs a program with seccomp(2) and runs probes, reporting each result
// through a pipe. Every probe's arguments are harmless even unfiltered and as root (bad magic,
// missing paths), and a control child without a filter shows each denial comes from the filter.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "engine/seccomp.h"
#include "engine/seccomp_profile.h"
#include "support/fixtures.h"

using namespace stack;
using namespace stack::engine;

namespace {

constexpr uint64_t kDockerCaps = 0xa80425fbULL;
constexpr const char* kMissing = "/nonexistent-stack-seccomp-probe";

struct Outcome {
  long rc = 0;
  int err = 0;
};

// Runs PROBE in a child of the probe runner, so fork/clone probes leave nothing behind.
// Returns the child's result: its exit status, or -1 when it did not exit normally.
long reap(pid_t pid) {
  int status = 0;
  int saved = errno;
  if (pid <= 0) return pid;
  ::waitpid(pid, &status, 0);
  errno = saved;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

using ProbeFn = long (*)();

struct Probe {
  const char* name;
  ProbeFn fn;
};

// The probe runner: NNP, the filter, then each probe's (return value, errno) on FD. Only
// async-signal-safe calls after fork: the test process may have threads.
[[noreturn]] void run_probes(int fd, const std::string* program, unsigned flags,
                             const std::vector<Probe>& probes) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(10);
  if (program) {
    sock_fprog prog{static_cast<unsigned short>(program->size() / sizeof(sock_filter)),
                    reinterpret_cast<sock_filter*>(const_cast<char*>(program->data()))};
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) != 0) ::_exit(11);
  }
  for (const auto& p : probes) {
    errno = 0;
    Outcome o;
    o.rc = p.fn();
    o.err = o.rc < 0 ? errno : 0;
    if (::write(fd, &o, sizeof o) != sizeof o) ::_exit(12);
  }
  ::_exit(0);
}

struct Run {
  std::vector<Outcome> outcomes;
  int status = 0;  // the runner's wait status
};

Run run(const std::shared_ptr<const std::string>& program, const std::vector<Probe>& probes,
        unsigned flags = 0) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    run_probes(fds[1], program.get(), flags, probes);
  }
  ::close(fds[1]);
  Run r;
  Outcome o;
  while (::read(fds[0], &o, sizeof o) == sizeof o) r.outcomes.push_back(o);
  ::close(fds[0]);
  REQUIRE(::waitpid(pid, &r.status, 0) == pid);
  return r;
}

std::shared_ptr<const std::string> default_program(uint64_t caps = kDockerCaps) {
  auto r = seccomp_program(SeccompSpec{SeccompSpec::Mode::kDefault, "", caps});
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  REQUIRE(*r);
  return *r;
}

// Syscalls Docker's default profile refuses, each called so that without a filter it fails
// harmlessly with something other than EPERM when the caller is root (nonexistent paths, bad
// magic numbers, bad file descriptors) — or, for some, whoever the caller is.
struct Denied {
  Probe probe;
  bool privilege_free;  // without a filter, never EPERM even for an unprivileged caller
};

const std::vector<Denied>& denied_probes() {
  static const std::vector<Denied> probes = {
      {{"mount", [] { return ::syscall(SYS_mount, "none", kMissing, "tmpfs", 0, nullptr); }}, true},
      {{"umount2", [] { return ::syscall(SYS_umount2, kMissing, 0); }}, true},
      {{"setns", [] { return ::syscall(SYS_setns, -1, 0); }}, true},
      {{"clone(CLONE_NEWUSER)",
        [] {
          long pid = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
          if (pid == 0) ::_exit(0);
          return pid > 0 ? (reap(static_cast<pid_t>(pid)), 0L) : pid;
        }},
       false},
      {{"keyctl", [] { return ::syscall(SYS_keyctl, 9999, 0, 0, 0, 0); }}, true},
      {{"add_key",
        [] {
          return ::syscall(SYS_add_key, "stack-no-such-type", "d", "x", 1,
                           KEY_SPEC_PROCESS_KEYRING);
        }},
       true},
      {{"request_key",
        [] {
          return ::syscall(SYS_request_key, "stack-no-such-type", "d", nullptr,
                           KEY_SPEC_PROCESS_KEYRING);
        }},
       true},
      {{"bpf", [] { return ::syscall(SYS_bpf, 9999, nullptr, 0); }}, true},
      {{"perf_event_open", [] { return ::syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0); }},
       true},
      {{"kexec_load", [] { return ::syscall(SYS_kexec_load, 0, 0, nullptr, 0xdead0000UL); }},
       false},
      {{"kexec_file_load",
        [] { return ::syscall(SYS_kexec_file_load, -1, -1, 0, nullptr, 0xdead0000UL); }},
       false},
      {{"init_module", [] { return ::syscall(SYS_init_module, nullptr, 0, ""); }}, false},
      {{"finit_module", [] { return ::syscall(SYS_finit_module, -1, "", 0); }}, false},
      {{"delete_module",
        [] { return ::syscall(SYS_delete_module, "stack_no_such_module", O_NONBLOCK); }},
       false},
      {{"clock_settime",
        [] {
          timespec ts{};
          return ::syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts);
        }},
       true},
      {{"settimeofday", [] { return ::syscall(SYS_settimeofday, nullptr, nullptr); }}, false},
      {{"userfaultfd",
        [] {
          long fd = ::syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
          if (fd >= 0) ::close(static_cast<int>(fd));
          return fd;
        }},
       true},
      {{"open_by_handle_at", [] { return ::syscall(SYS_open_by_handle_at, -1, nullptr, 0); }},
       false},
      {{"name_to_handle_at",
        [] { return ::syscall(SYS_name_to_handle_at, AT_FDCWD, "/", nullptr, nullptr, 0); }},
       true},
      {{"reboot", [] { return ::syscall(SYS_reboot, 0, 0, 0, nullptr); }}, false},
      {{"swapon", [] { return ::syscall(SYS_swapon, kMissing, 0); }}, false},
      {{"swapoff", [] { return ::syscall(SYS_swapoff, kMissing); }}, false},
      {{"pivot_root", [] { return ::syscall(SYS_pivot_root, kMissing, kMissing); }}, false},
      {{"acct", [] { return ::syscall(SYS_acct, kMissing); }}, false},
      {{"quotactl", [] { return ::syscall(SYS_quotactl, 0, nullptr, 0, nullptr); }}, false},
      {{"lookup_dcookie", [] { return ::syscall(SYS_lookup_dcookie, 0, nullptr, 0); }}, true},
      {{"iopl", [] { return ::syscall(SYS_iopl, 4); }}, true},
      {{"ioperm", [] { return ::syscall(SYS_ioperm, 65536, 1, 1); }}, true},
      {{"sethostname", [] { return ::syscall(SYS_sethostname, nullptr, 100000); }}, false},
      {{"syslog", [] { return ::syscall(SYS_syslog, 9999, nullptr, 0); }}, false},
      {{"fsopen",
        [] {
          // tmpfs: a missing type would make the kernel run modprobe on the host.
          long fd = ::syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
          if (fd >= 0) ::close(static_cast<int>(fd));
          return fd;
        }},
       false},
      {{"kcmp", [] { return ::syscall(SYS_kcmp, ::getpid(), ::getpid(), 0, 0, 0); }}, true},
      {{"personality(ADDR_NO_RANDOMIZE)",
        [] { return ::syscall(SYS_personality, ADDR_NO_RANDOMIZE); }},
       true},
      // Last: unfiltered, it leaves the runner without privileges for any probe after it.
      {{"unshare(CLONE_NEWUSER)", [] { return ::syscall(SYS_unshare, CLONE_NEWUSER); }}, false},
  };
  return probes;
}

std::vector<Probe> probes_of(const std::vector<Denied>& denied) {
  std::vector<Probe> out;
  for (const auto& d : denied) out.push_back(d.probe);
  return out;
}

// Syscalls a container needs, which the default profile lets through.
const std::vector<Probe>& allowed_probes() {
  static const std::vector<Probe> probes = {
      {"getpid", [] { return static_cast<long>(::getpid()); }},
      {"pipe2, write, read",
       [] {
         int p[2];
         char c = 'x';
         if (::pipe2(p, O_CLOEXEC) != 0) return -1L;
         long n = ::write(p[1], &c, 1) == 1 && ::read(p[0], &c, 1) == 1 ? 0L : -1L;
         ::close(p[0]);
         ::close(p[1]);
         return n;
       }},
      {"fork",
       [] {
         pid_t pid = ::fork();
         if (pid == 0) ::_exit(7);
         return pid < 0 ? -1L : (reap(pid) == 7 ? 0L : -100L);
       }},
      {"clone without namespace flags",
       [] {
         long pid = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
         if (pid == 0) ::_exit(0);
         return pid < 0 ? pid : reap(static_cast<pid_t>(pid));
       }},
      {"execve /bin/true",
       [] {
         pid_t pid = ::fork();
         if (pid == 0) {
           char* const argv[] = {const_cast<char*>("true"), nullptr};
           char* const envp[] = {nullptr};
           ::execve("/bin/true", argv, envp);
           ::_exit(127);
         }
         return pid < 0 ? -1L : reap(pid);
       }},
      {"personality(PER_LINUX32)",
       [] {
         long old = ::syscall(SYS_personality, PER_LINUX32);
         return old < 0 ? old : ::syscall(SYS_personality, PER_LINUX);
       }},
      {"personality query", [] { return ::syscall(SYS_personality, 0xffffffffUL); }},
      {"socket(AF_UNIX)",
       [] {
         long fd = ::syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
         if (fd >= 0) ::close(static_cast<int>(fd));
         return fd < 0 ? fd : 0L;
       }},
      {"adjtimex read (writing needs CAP_SYS_TIME, not the filter)",
       [] {
         timex t{};
         return ::syscall(SYS_adjtimex, &t) < 0 ? -1L : 0L;
       }},
  };
  return probes;
}

}  // namespace

TEST_CASE("the default program refuses what Docker's refuses, with EPERM") {
  const auto& denied = denied_probes();
  Run filtered = run(default_program(), probes_of(denied));
  REQUIRE(WIFEXITED(filtered.status));
  REQUIRE(WEXITSTATUS(filtered.status) == 0);
  REQUIRE(filtered.outcomes.size() == denied.size());
  for (size_t i = 0; i < denied.size(); ++i) {
    std::string name = denied[i].probe.name;
    CAPTURE(name);
    CHECK(filtered.outcomes[i].rc == -1);
    CHECK(filtered.outcomes[i].err == EPERM);
  }
  // The same calls without a filter: not EPERM, so the EPERM above is the filter's.
  Run control = run(nullptr, probes_of(denied));
  REQUIRE(control.outcomes.size() == denied.size());
  for (size_t i = 0; i < denied.size(); ++i) {
    if (!denied[i].privilege_free && ::geteuid() != 0) continue;
    std::string name = denied[i].probe.name;
    CAPTURE(name);
    CAPTURE(control.outcomes[i].err);
    CHECK(control.outcomes[i].err != EPERM);
  }
}

TEST_CASE("the default program lets a process live: fork, clone, execve, pipes, personality") {
  const auto& allowed = allowed_probes();
  Run r = run(default_program(), allowed);
  REQUIRE(WIFEXITED(r.status));
  REQUIRE(WEXITSTATUS(r.status) == 0);
  REQUIRE(r.outcomes.size() == allowed.size());
  for (size_t i = 0; i < allowed.size(); ++i) {
    std::string name = allowed[i].name;
    CAPTURE(name);
    CAPTURE(r.outcomes[i].err);
    CHECK(r.outcomes[i].rc >= 0);
  }
}

TEST_CASE("socket(2) is refused for AF_VSOCK only, as Docker's argument rule") {
  // No control run: unfiltered, AF_VSOCK may make the kernel load a module on the host.
  std::vector<Probe> probes = {
      {"socket(AF_VSOCK)", [] { return ::syscall(SYS_socket, 40 /* AF_VSOCK */, SOCK_STREAM, 0); }},
      {"socket(AF_INET)",
       [] {
         long fd = ::syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
         if (fd >= 0) ::close(static_cast<int>(fd));
         return fd < 0 ? fd : 0L;
       }},
  };
  Run r = run(default_program(), probes);
  REQUIRE(r.outcomes.size() == probes.size());
  CHECK(r.outcomes[0].err == EPERM);
  CHECK(r.outcomes[1].rc == 0);
}

TEST_CASE("clone3 and syscalls newer than the profile answer ENOSYS, so a libc falls back") {
  std::vector<Probe> probes = {
      {"clone3", [] { return ::syscall(SYS_clone3, nullptr, 0); }},
      {"fchmodat2 (452, newer than the table)",
       [] { return ::syscall(452, AT_FDCWD, kMissing, 0, 0); }},
      {"syscall 1000", [] { return ::syscall(1000); }},
  };
  Run filtered = run(default_program(), probes);
  REQUIRE(filtered.outcomes.size() == probes.size());
  for (size_t i = 0; i < probes.size(); ++i) {
    std::string name = probes[i].name;
    CAPTURE(name);
    CHECK(filtered.outcomes[i].rc == -1);
    CHECK(filtered.outcomes[i].err == ENOSYS);
  }
  // Unfiltered, clone3 and fchmodat2 exist on this kernel: the ENOSYS is the filter's.
  Run control = run(nullptr, probes);
  REQUIRE(control.outcomes.size() == probes.size());
  CHECK(control.outcomes[0].err == EINVAL);
  CHECK(control.outcomes[1].err == ENOENT);
}

#if defined(__x86_64__)
// A 64-bit process can still enter the kernel through the i386 ABI (int $0x80, i386 numbers):
// the classic way around a filter that checks only x86_64 numbers. Returns like syscall(2).
long int80(long nr, long a = 0, long b = 0, long c = 0) {
  long ret;
  asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  if (ret < 0 && ret > -4096) {
    errno = static_cast<int>(-ret);
    return -1;
  }
  return ret;
}

TEST_CASE("the i386 ABI is filtered too, with its own syscall numbers") {
  // i386 numbers: getpid 20, mount 21, kexec_load 283, clone3 435, fchmodat2 452, unshare 310.
  std::vector<Probe> probes = {
      {"i386 getpid", [] { return int80(20); }},
      {"i386 mount", [] { return int80(21); }},
      {"i386 kexec_load", [] { return int80(283, 0, 0, 0); }},
      {"i386 clone3", [] { return int80(435); }},
      {"i386 fchmodat2", [] { return int80(452, AT_FDCWD, 0, 0); }},
      {"i386 unshare(CLONE_NEWUSER)", [] { return int80(310, CLONE_NEWUSER); }},
  };
  Run control = run(nullptr, probes);
  if (!WIFEXITED(control.status) || control.outcomes.empty() || control.outcomes[0].rc <= 0) {
    test::report_skip("this kernel has no i386 emulation: nothing to bypass the filter with");
    return;
  }
  Run r = run(default_program(), probes);
  REQUIRE(r.outcomes.size() == probes.size());
  CHECK(r.outcomes[0].rc > 0);
  CHECK(r.outcomes[1].err == EPERM);
  CHECK(r.outcomes[2].err == EPERM);
  CHECK(r.outcomes[3].err == ENOSYS);
  CHECK(r.outcomes[4].err == ENOSYS);
  CHECK(r.outcomes[5].err == EPERM);
  CHECK(control.outcomes[1].err == EFAULT);
  CHECK(control.outcomes[3].err == EINVAL);
}
#endif

TEST_CASE("with CAP_SYS_ADMIN the namespace and mount syscalls pass the filter") {
  std::vector<Probe> probes = {
      {"mount", [] { return ::syscall(SYS_mount, "none", kMissing, "tmpfs", 0, nullptr); }},
      {"clone3", [] { return ::syscall(SYS_clone3, nullptr, 0); }},
      {"setns", [] { return ::syscall(SYS_setns, -1, 0); }},
      {"name_to_handle_at",
       [] { return ::syscall(SYS_name_to_handle_at, AT_FDCWD, "/", nullptr, nullptr, 0); }},
  };
  Run r = run(default_program(kDockerCaps | (uint64_t{1} << CAP_SYS_ADMIN)), probes);
  REQUIRE(r.outcomes.size() == probes.size());
  CHECK(r.outcomes[0].err == ENOENT);
  CHECK(r.outcomes[1].err == EINVAL);
  CHECK(r.outcomes[2].err == EBADF);
  CHECK(r.outcomes[3].err == EFAULT);
}

TEST_CASE("ptrace is refused by the filter only for kernels before 4.8, as Docker's") {
  std::vector<Probe> probes = {
      // Not our tracee: ESRCH once the filter lets ptrace through.
      {"ptrace(PTRACE_CONT, 1)", [] { return ::syscall(SYS_ptrace, PTRACE_CONT, 1, 0, 0); }},
  };
  CHECK(run(default_program(), probes).outcomes.at(0).err == ESRCH);
  auto host = seccomp::current_host();
  REQUIRE(host);
  host->kernel = {4, 4};
  auto old = seccomp::compile(seccomp::default_profile(), kDockerCaps, *host);
  REQUIRE(old);
  CHECK(run(std::make_shared<const std::string>(*old), probes).outcomes.at(0).err == EPERM);
}

TEST_CASE("a custom JSON profile is honoured: errno values and an argument filter") {
  auto program = seccomp_program(SeccompSpec{SeccompSpec::Mode::kProfile, R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
      {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
      {"name": "dup3", "action": "SCMP_ACT_ERRNO",
       "args": [{"index": 2, "value": 524288, "valueTwo": 524288, "op": "SCMP_CMP_MASKED_EQ"}]},
      {"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
    ]})",
                                             kDockerCaps});
  REQUIRE_MESSAGE(program, (program ? "" : program.error().message));
  std::vector<Probe> probes = {
      {"getppid", [] { return ::syscall(SYS_getppid); }},
      {"dup3 with O_CLOEXEC", [] { return ::syscall(SYS_dup3, 0, 100, O_CLOEXEC); }},
      {"dup3 without",
       [] {
         long fd = ::syscall(SYS_dup3, 0, 100, 0);
         if (fd >= 0) ::close(static_cast<int>(fd));
         return fd;
       }},
      {"mkdir (rule only with CAP_SYS_ADMIN)",
       [] { return ::syscall(SYS_mkdir, "/nonexistent-stack/x", 0700); }},
  };
  Run r = run(*program, probes);
  REQUIRE(r.outcomes.size() == probes.size());
  CHECK(r.outcomes[0].err == EACCES);
  CHECK(r.outcomes[1].err == EPERM);
  CHECK(r.outcomes[2].rc == 100);
  CHECK(r.outcomes[3].err == ENOENT);
}

TEST_CASE("SCMP_ACT_KILL_PROCESS kills the caller with SIGSYS") {
  auto program = seccomp_program(SeccompSpec{SeccompSpec::Mode::kProfile, R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]})",
                                             0});
  REQUIRE(program);
  Run r = run(*program, {{"getpid", [] { return static_cast<long>(::getpid()); }},
                         {"getppid", [] { return ::syscall(SYS_getppid); }}});
  CHECK(r.outcomes.size() == 1);
  REQUIRE(WIFSIGNALED(r.status));
  CHECK(WTERMSIG(r.status) == SIGSYS);
}

TEST_CASE("a profile's SECCOMP_FILTER_FLAG_LOG is accepted by seccomp(2)") {
  SeccompSpec spec{SeccompSpec::Mode::kProfile, R"({"defaultAction": "SCMP_ACT_ALLOW",
    "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]})",
                   0};
  auto program = seccomp_program(spec);
  auto flags = seccomp_filter_flags(spec);
  REQUIRE(program);
  REQUIRE(flags);
  CHECK(*flags == SECCOMP_FILTER_FLAG_LOG);
  Run r = run(*program, {{"getppid", [] { return ::syscall(SYS_getppid); }}}, *flags);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);  // 11 would be seccomp(2) refusing the flags
  CHECK(r.outcomes.at(0).err == EPERM);
}
