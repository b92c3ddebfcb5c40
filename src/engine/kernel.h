// The kernel calls of a container's start, behind small interfaces the Engine takes in its
// constructor: the real ones (kernel_real.cpp, init_launcher.cpp) are the only engine files of
// the start path that include syscall headers; tests/support has recording fakes of each.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"
#include "model/container.h"

namespace stack::engine {

// The namespaces the init is cloned into (the real launcher maps them to CLONE_NEW*).
enum Namespace : unsigned {
  kPidNs = 1u << 0,
  kMountNs = 1u << 1,
  kUtsNs = 1u << 2,
  kIpcNs = 1u << 3,
  kNetNs = 1u << 4,
};
// "PID|NS|UTS|IPC|NET" (NS: mount, as clone(2) calls it), "none" for 0.
std::string namespace_names(unsigned namespaces);

// How one stack-init is started (see the sequence at the top of src/engine/init/init.c).
struct InitLaunch {
  enum class Mode { kContainer, kExec };
  Mode mode = Mode::kContainer;  // kExec: "stack-init exec", entering a running container
  unsigned namespaces = 0;       // Namespace bits: the new namespaces of the clone
  int fd4 = -1;                  // the init's fd 4: the container directory, or (exec) a pidfd
  int userns_fd = -1;            // the init's fd 5 (a user namespace to join), or -1
  // Namespaces (paths) the init is born in instead of new ones: network_mode service:NAME or
  // container:NAME, pid and ipc service:NAME. Empty: none.
  std::filesystem::path join_netns;
  std::filesystem::path join_pidns;
  std::filesystem::path join_ipcns;
  // UTS and cgroup namespaces joined the same way; a mount namespace opened and handed to the
  // init as its fd 6 (a threaded process cannot setns(2) into one), which joins it.
  std::filesystem::path join_utsns;
  std::filesystem::path join_cgroupns;
  std::filesystem::path join_mntns;
  // The init's stdio in exec mode (-1 keeps the caller's); a container's init gets /dev/null
  // unless INHERIT_STDIO (an OCI runtime's container: the caller's stdio).
  int stdio[3] = {-1, -1, -1};
  bool inherit_stdio = false;
};

// The engine's end of one init's control socket (CTL), carrying wire.h messages.
class InitChannel {
 public:
  virtual ~InitChannel() = default;
  // Writes the whole MESSAGE (length prefix included).
  [[nodiscard]] virtual Result<void> send(std::string_view message) = 0;
  // One message's body within TIMEOUT; an error when the init closed its end (it exited).
  [[nodiscard]] virtual Result<std::string> receive(std::chrono::milliseconds timeout) = 0;
};

struct LaunchedInit {
  pid_t pid = 0;  // our child until reaped
  std::unique_ptr<InitChannel> ctl;
};

// clone() + execve() of stack-init with its control socket at fd 3. Returns once it has exec'd.
class InitLauncher {
 public:
  virtual ~InitLauncher() = default;
  [[nodiscard]] virtual Result<LaunchedInit> launch(const std::filesystem::path& init,
                                                    const InitLaunch& how) = 0;
};

// Processes the engine started (or found in a container's cgroup).
class Processes {
 public:
  virtual ~Processes() = default;
  // pidfd_open(2): from here on signals through it reach this very process.
  [[nodiscard]] virtual Result<UniqueFd> open_pidfd(pid_t pid) = 0;
  // /proc/PID/stat's start time (clock ticks since boot), 0 when it does not exist.
  virtual uint64_t start_time(pid_t pid) = 0;
  // A descriptor of PID's network namespace (/proc/PID/ns/net).
  [[nodiscard]] virtual Result<UniqueFd> open_netns(pid_t pid) = 0;
  // SIGKILL, through PIDFD when there is one (>= 0).
  virtual void kill(pid_t pid, int pidfd = -1) = 0;
  // Waits for our child PID to exit and reaps it.
  virtual void reap(pid_t pid) = 0;
};

// The container's directory on the host: what the init binds or writes there.
class ContainerFiles {
 public:
  virtual ~ContainerFiles() = default;
  [[nodiscard]] virtual Result<void> make_dir(const std::filesystem::path& dir, unsigned mode) = 0;
  [[nodiscard]] virtual Result<void> write(const std::filesystem::path& file,
                                           std::string_view content) = 0;
  // unlink(2); a missing file is fine.
  virtual void remove(const std::filesystem::path& file) = 0;
  // An O_DIRECTORY descriptor, handed to the init as its fd 4.
  [[nodiscard]] virtual Result<UniqueFd> open_dir(const std::filesystem::path& dir) = 0;
};

// A container's user namespace (userns.h has what each call does).
class UserNamespaces {
 public:
  virtual ~UserNamespaces() = default;
  [[nodiscard]] virtual Result<UniqueFd> make(const model::IdMapping& map) = 0;
  // An existing one (linux.namespaces[].path of an OCI bundle), joined instead of a new one.
  [[nodiscard]] virtual Result<UniqueFd> open(const std::filesystem::path& ns) = 0;
  // The container's directory given to the mapped root.
  [[nodiscard]] virtual Result<void> own_for(const std::filesystem::path& dir,
                                             const model::IdMapping& map) = 0;
  virtual bool idmap_supported(const std::filesystem::path& layer, int userns_fd) = 0;
  [[nodiscard]] virtual Result<std::filesystem::path> shifted_layer(
      const std::filesystem::path& layer, const model::IdMapping& map,
      const std::filesystem::path& cache) = 0;
  // Whether PID lives in a user namespace other than ours (an exec joins it).
  virtual bool in_other(pid_t pid) = 0;
};

// What an Engine calls besides its cgroup driver. The real ones are stateless and live as long
// as the process.
struct KernelSeams {
  InitLauncher& launcher;
  Processes& processes;
  ContainerFiles& files;
  UserNamespaces& userns;

  static KernelSeams real();
};

}  // namespace stack::engine
