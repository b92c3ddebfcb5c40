// The real Processes, ContainerFiles and UserNamespaces of kernel.h: pidfds, signals and
// waitpid, the container directory's files, and the user namespace helpers of userns.h. Root on
// the host; the processes here are the engine's own children or a container's.
#include "engine/kernel_real.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "common/files.h"
#include "engine/container.h"
#include "engine/userns.h"

namespace stack::engine {

namespace {

class LinuxProcesses final : public Processes {
 public:
  Result<UniqueFd> open_pidfd(pid_t pid) override {
    UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!fd) return fail_errno("pidfd_open " + std::to_string(pid));
    return fd;
  }
  uint64_t start_time(pid_t pid) override { return process_start_time(pid); }
  Result<UniqueFd> open_netns(pid_t pid) override {
    auto path = "/proc/" + std::to_string(pid) + "/ns/net";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + path);
    return fd;
  }
  void kill(pid_t pid, int pidfd) override {
    if (pidfd >= 0)
      (void)::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    else if (pid > 0)
      ::kill(pid, SIGKILL);
  }
  void reap(pid_t pid) override {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
};

class HostFiles final : public ContainerFiles {
 public:
  Result<void> make_dir(const std::filesystem::path& dir, unsigned mode) override {
    return make_dirs(dir, mode);
  }
  Result<void> write(const std::filesystem::path& file, std::string_view content) override {
    return write_file(file, content);
  }
  void remove(const std::filesystem::path& file) override { ::unlink(file.c_str()); }
  Result<UniqueFd> open_dir(const std::filesystem::path& dir) override {
    UniqueFd fd(::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + dir.string());
    return fd;
  }
};

class LinuxUserNamespaces final : public UserNamespaces {
 public:
  Result<UniqueFd> make(const IdMapping& map) override { return make_userns(map); }
  Result<UniqueFd> open(const std::filesystem::path& ns) override {
    UniqueFd fd(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + ns.string());
    // NS_GET_NSTYPE (ioctl_ns(2)): a path to another kind of namespace, or to a plain file,
    // would otherwise fail only in the init, with a vaguer EINVAL from setns(2).
    if (::ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWUSER)
      return fail(ns.string() + ": not a user namespace");
    return fd;
  }
  Result<void> own_for(const std::filesystem::path& dir, const IdMapping& map) override {
    return engine::own_for(dir, map);
  }
  bool idmap_supported(const std::filesystem::path& layer, int userns_fd) override {
    return engine::idmap_supported(layer, userns_fd);
  }
  Result<std::filesystem::path> shifted_layer(const std::filesystem::path& layer,
                                              const IdMapping& map,
                                              const std::filesystem::path& cache) override {
    return engine::shifted_layer(layer, map, cache);
  }
  bool in_other(pid_t pid) override { return in_other_userns(pid); }
};

}  // namespace

Processes& real_processes() {
  static LinuxProcesses processes;
  return processes;
}

ContainerFiles& real_files() {
  static HostFiles files;
  return files;
}

UserNamespaces& real_userns() {
  static LinuxUserNamespaces userns;
  return userns;
}

KernelSeams KernelSeams::real() {
  return {real_launcher(), real_processes(), real_files(), real_userns()};
}

}  // namespace stack::engine
