// The engine's public face: create one container from a spec and start it (two phases: the
// caller attaches networks between), signal and stop it, read how it ended, run a command
// inside it. Root on the host. Knows nothing of projects, stack files or the state store; the
// reconciler maps those onto ContainerSpec.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "engine/kernel.h"
#include "engine/seccomp.h"
#include "model/container.h"

namespace stack::engine {

using model::BindMount;
using model::ContainerSpec;
using model::IdMapping;
using model::ProcessSpec;

// A running container's init, identified so that a reused PID is never mistaken for it.
struct ContainerProcess {
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/PID/stat field 22 (clock ticks since boot)
  int64_t started_at = 0;   // unix ms
};

struct ExitInfo {
  int code = 0;        // the service's status, 128+N when killed by signal N
  bool oom_killed = false;
  int64_t finished_at = 0;  // unix ms
};

// A process started inside a running container by Engine::spawn.
struct ExecProcess {
  pid_t pid = 0;
  UniqueFd pidfd;  // readable once it has exited; reap with waitid(P_PIDFD)
};

// Descriptors for a spawned process's stdin, stdout, stderr; -1 keeps the caller's.
struct Stdio {
  int in = -1, out = -1, err = -1;
  // IN is a terminal (the slave of open_pty): the process runs in a session of its own with it
  // as its controlling terminal.
  bool terminal = false;
};

// A pseudo-terminal in the container's own devpts (its /dev/pts/N), for `stack exec -t`.
struct Pty {
  UniqueFd master;  // the host's end, pumped by the caller
  UniqueFd slave;   // the process's stdio, owned by OWNER (a host uid)
};

// Docker's default capability set: enough for ordinary services, none to administer the host
// (CapEff 00000000a80425fb).
uint64_t default_capabilities();
// Every capability this kernel knows (/proc/sys/kernel/cap_last_cap).
uint64_t all_capabilities();
// Compose's cap_add and cap_drop over Docker's default set, as Docker combines them: "ALL" in
// cap_add is every capability but those dropped; "ALL" in cap_drop keeps only cap_add;
// otherwise default - cap_drop + cap_add. Names with or without "CAP_", any case, resolved
// with libcap; an unknown name is an error naming it.
[[nodiscard]] Result<uint64_t> capabilities_from(const std::vector<std::string>& cap_add,
                                                 const std::vector<std::string>& cap_drop);
// no_new_privs from compose's security_opt: on unless "no-new-privileges:false" (or "=false")
// says otherwise; "no-new-privileges" and ":true" keep it. Other options are not looked at.
[[nodiscard]] Result<bool> no_new_privileges_from(const std::vector<std::string>& security_opt);
// The subordinate ranges of USER (a name, or a uid as /etc/subuid writes it) in /etc/subuid
// and /etc/subgid: the first of at least 65536 ids each, so every id an image uses maps.
[[nodiscard]] Result<IdMapping> subordinate_ids(
    const std::string& user, const std::filesystem::path& subuid = "/etc/subuid",
    const std::filesystem::path& subgid = "/etc/subgid");
// Docker's masked paths (hidden: /dev/null over a file, an empty tmpfs over a directory) and
// read-only paths, for a container that is not privileged.
const std::vector<std::string>& masked_paths();
const std::vector<std::string>& readonly_paths();

// Resolves a compose `user:` ("", "1000", "1000:1000", "app", "app:staff") against the image's
// /etc/passwd and /etc/group (looked up from the top layer down).
[[nodiscard]] Result<void> resolve_user(std::string_view user,
                                        const std::vector<std::filesystem::path>& layers,
                                        ProcessSpec& process);

// A group name or number (group_add) as the image's /etc/group resolves it.
[[nodiscard]] Result<gid_t> resolve_group(std::string_view group,
                                          const std::vector<std::filesystem::path>& layers);

// Opens a pty pair in the running container P's devpts instance.
[[nodiscard]] Result<Pty> open_pty(const ContainerProcess& p, uid_t owner);
// Sets the window size of a terminal (the command gets SIGWINCH).
[[nodiscard]] Result<void> resize_pty(int master, uint16_t cols, uint16_t rows);

// /proc/PID/stat's start time, 0 when the process does not exist.
uint64_t process_start_time(pid_t pid);
// True when the process exists and is the one that was started (same start time).
bool is_alive(const ContainerProcess& p);

class Engine;

// A container made by Engine::create and not started yet: its namespaces exist, its init is in
// its cgroup with the root built, waiting for GO; nothing of the service runs. Movable, not
// copyable; destroyed without Engine::start or Engine::abandon, it is abandoned (the init killed
// and reaped, the cgroup removed). It must not outlive its Engine.
class Created {
 public:
  Created(Created&& o) noexcept;
  Created& operator=(Created&& o) noexcept;
  Created(const Created&) = delete;
  Created& operator=(const Created&) = delete;
  ~Created();

  // The init's host PID.
  [[nodiscard]] pid_t pid() const { return pid_; }
  // The container's own network namespace, to attach interfaces in (a veth born there); -1
  // with network_mode host or a joined namespace. Owned by this object.
  [[nodiscard]] int netns_fd() const { return netns_.get(); }
  // A pidfd of the init, owned by this object.
  [[nodiscard]] int pidfd() const { return pidfd_.get(); }
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  friend class Engine;
  Created() = default;
  void release();  // abandons what is held, if anything

  Engine* engine_ = nullptr;  // null: nothing held (started, abandoned or moved from)
  std::string name_, cgroup_;
  pid_t pid_ = 0;
  uint64_t start_time_ = 0;
  UniqueFd pidfd_;
  UniqueFd netns_;
  std::unique_ptr<InitChannel> ctl_;
};

class Engine {
 public:
  // KERNEL: the start path's kernel calls (kernel.h); tests pass recording fakes.
  Engine(std::filesystem::path init_binary, CgroupDriver& cgroups,
         KernelSeams kernel = KernelSeams::real());

  // Called while the init waits between its mounts and pivot_root, in its cgroup (the OCI
  // runtime's prestart, createRuntime and createContainer hooks): the init's host pid and a
  // pidfd of it. An error fails the create.
  using BeforePivot = std::function<Result<void>(pid_t pid, int pidfd)>;
  // Namespaces made, the cgroup joined, the root built; stack-init waits for GO. Nothing of
  // the service runs. On failure nothing is left (no process, no cgroup).
  [[nodiscard]] Result<Created> create(const ContainerSpec& spec,
                                       const BeforePivot& before_pivot = {});
  // GO: the init starts the service; returns once it is exec'd. On failure the init is
  // killed and the cgroup removed.
  [[nodiscard]] Result<ContainerProcess> start(Created created);
  // A created container that will not be started: killed, its cgroup removed.
  void abandon(Created created);

  // Sends SIG (through a pidfd: immune to PID reuse); the init forwards it to the service.
  [[nodiscard]] Result<void> signal(const ContainerProcess& p, int sig);
  // SIG, then up to GRACE for the service to exit, then SIGKILL. Returns when it is gone.
  [[nodiscard]] Result<void> stop(const ContainerProcess& p, int sig,
                                  std::chrono::milliseconds grace);
  // Blocks until the container's init has exited (up to TIMEOUT); true when it has.
  bool wait_exit(const ContainerProcess& p, std::chrono::milliseconds timeout);
  // How the last run ended: the init's record in the container's directory, and the cgroup's
  // OOM counter. A container whose init was killed outright reads as code 137.
  [[nodiscard]] Result<ExitInfo> exit_info(const ContainerSpec& spec);
  // Starts PROCESS inside the running container and returns without waiting for it.
  [[nodiscard]] Result<ExecProcess> spawn(const ContainerProcess& p, const std::string& cgroup,
                                          const ProcessSpec& process, const Stdio& stdio);
  // Runs PROCESS inside the running container, on the caller's stdio; returns its exit code.
  [[nodiscard]] Result<int> exec(const ContainerProcess& p, const std::string& cgroup,
                                 const ProcessSpec& process);
  // Removes the cgroup and the container's directory (writable layer, logs). It must not run.
  [[nodiscard]] Result<void> remove(const ContainerSpec& spec);
  // Removes the cgroup of a container whose init is gone, killing what is still in it first: a
  // container without a PID namespace of its own (pid: host, service:NAME) keeps the processes
  // its service left behind when the init exits; the kernel only kills a namespace's.
  [[nodiscard]] Result<void> release_cgroup(const std::string& cgroup);

  CgroupDriver& cgroups() { return cgroups_; }

 private:
  friend class Created;
  // Kills and reaps the init, removes the cgroup (abandon, a failed start, ~Created).
  void discard(Created& c);

  std::filesystem::path init_;
  CgroupDriver& cgroups_;
  KernelSeams kernel_;
};

}  // namespace stack::engine
