// Probes run as an unprivileged host user (nobody, 65534): a forked child that drops to that
// user and tries one thing, so a test checks what an attacker on the host could do. Root only.
#pragma once

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace stack::test {

inline constexpr uid_t kNobody = 65534;

// Runs PROBE in a child as nobody (with supplementary GROUPS); PROBE returns true when it
// succeeded, i.e. when the host user got through. Returns that.
inline bool nobody_can(const std::function<bool()>& probe, std::vector<gid_t> groups = {}) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 ||
        ::setresgid(kNobody, kNobody, kNobody) != 0 || ::setresuid(kNobody, kNobody, kNobody) != 0)
      ::_exit(3);
    ::_exit(probe() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) throw std::runtime_error("probe child failed");
  return WEXITSTATUS(status) == 0;
}

// Executes ARGV as nobody (no supplementary groups) and returns its exit code and stdout. Not
// setpriv(1): it keeps its capabilities until the execve, so the path lookup of the program is
// still root's (CAP_DAC_OVERRIDE) and a 0700 directory on the way would not stop it.
struct NobodyRun {
  int code = -1;
  std::string out;
};
inline NobodyRun nobody_exec(const std::vector<std::string>& argv) {
  int out[2];
  if (::pipe(out) != 0) throw std::runtime_error("pipe");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0)
      ::_exit(125);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(126);
  }
  ::close(out[1]);
  NobodyRun r;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;)
    r.out.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The mode bits of PATH (without the file type), or -1 when it does not exist.
inline int mode_of(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

}  // namespace stack::test
