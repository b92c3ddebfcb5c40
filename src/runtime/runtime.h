// The OCI runtime's operations on containers kept under one state root (stack-runtime's
// --root): create/start/state/kill/delete/run/exec/update/list/ps, the runtime spec's lifecycle
// over the engine's two-phase Engine::create/start; calls on one id serialised by its lock. Root on the host. Prints nothing: the command line
// (src/cmd/stack_runtime.cpp) formats results and errors.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"

namespace stack::runtime {

struct CreateOptions {
  std::filesystem::path bundle = ".";
  std::filesystem::path pid_file;  // empty: none
  // Where the terminal's master goes (process.terminal); required with one, refused without.
  std::filesystem::path console_socket;
};

struct ExecOptions {
  bool detach = false;
  std::filesystem::path pid_file;
  bool tty = false;  // --tty, or the process file's terminal
  std::filesystem::path console_socket;
};

struct Record;

class Runtime {
 public:
  // ROOT: the state directory (made 0700); INIT: the stack-init binary. WARN receives what was
  // accepted with a difference (the caller logs it).
  Runtime(std::filesystem::path root, std::filesystem::path init,
          std::function<void(const std::string&)> warn);

  // The container made and waiting: its init is PID 1 of new namespaces, its root built, held by
  // a small process of ours until start (runtime-spec "created").
  [[nodiscard]] Result<void> create(const std::string& id, const CreateOptions& o);
  [[nodiscard]] Result<void> start(const std::string& id);
  // The runtime spec's state JSON.
  [[nodiscard]] Result<std::string> state(const std::string& id);
  [[nodiscard]] Result<void> kill(const std::string& id, int sig, bool all);
  // Freezes (pause) or thaws (resume) every process of a running container: its cgroup's
  // freezer; `state` then reads "paused".
  [[nodiscard]] Result<void> freeze(const std::string& id, bool frozen);
  [[nodiscard]] Result<void> remove(const std::string& id, bool force);
  // create + start; unless DETACH, waits for the container's exit, deletes it and returns its
  // exit status.
  [[nodiscard]] Result<int> run(const std::string& id, const CreateOptions& o, bool detach);
  // A process in the running container: PROCESS_FILE (the runtime spec's process JSON) or,
  // without one, ARGS with the container's own process settings. Detached: returns once it
  // runs (the pid file names it); else waits and returns its exit status. With a terminal,
  // a pty of the container's devpts whose master goes to the console socket.
  [[nodiscard]] Result<int> exec(const std::string& id, const std::filesystem::path& process_file,
                                 const std::vector<std::string>& args, const ExecOptions& o);
  // Sets the limits of RESOURCES (the runtime spec's linux.resources JSON) on the container's
  // cgroup, through the engine's cgroup driver; those absent stay as they are.
  [[nodiscard]] Result<void> update(const std::string& id, const std::string& resources);
  // Every container's state JSON, as an array.
  [[nodiscard]] Result<std::string> list();
  // The host pids in the container's cgroup.
  [[nodiscard]] Result<std::vector<int>> pids(const std::string& id);

 private:
  // kill's work, under the caller's lock of the container.
  [[nodiscard]] Result<void> signal(const Record& r, int sig, bool all);

  std::filesystem::path root_, init_;
  std::function<void(const std::string&)> warn_;
};

// "SIGTERM", "TERM", "15": the signal's number.
[[nodiscard]] Result<int> parse_signal(const std::string& s);
// The runtime spec's features JSON (what this runtime honours).
std::string features_json();

}  // namespace stack::runtime
