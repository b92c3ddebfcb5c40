// Supervision of every running container: one coroutine per container waits on its init's
// pidfd, records the exit, and applies the restart policy (with backoff) or repairs drift (an
// init killed from outside left no exit record); another runs its health checks. Private to
// the reconciler; everything runs on the daemon's loop thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/container.h"
#include "reconciler/async.h"
#include "reconciler/restart_policy.h"
#include "state/store.h"

namespace stack::reconciler {

class Daemon;
class LogShipper;

class Supervisor {
 public:
  explicit Supervisor(Daemon& daemon);
  ~Supervisor();

  // Starts the container of REC (the engine's two phases on the worker pool, its networks
  // attached between on the loop), records it running and watches it.
  // Without SERVE its ports and names wait for a SwitchTraffic (a start-first update).
  awaitable<Result<void>> start(state::ContainerRecord& rec, bool serve = true);
  // The container FROM is TO from now on: its watch, health checks and backoff follow.
  void rename(const std::string& from, const std::string& to);
  // Watches a container that is already running (after start, or adopted after a restart).
  void watch(const state::ContainerRecord& rec);
  // A container found not running when the daemon starts: its exit is recorded and its
  // restart policy applied, as if we had seen it exit.
  void adopt_exited(const state::ContainerRecord& rec);
  // Stops on purpose (never restarted): SIGNAL, GRACE for the exit, then SIGKILL.
  awaitable<Result<void>> stop(const std::string& name, int signal,
                               std::chrono::milliseconds grace);
  // Stops then starts again; the restart count goes up.
  awaitable<Result<void>> restart(const std::string& name, std::string reason);
  [[nodiscard]] bool watching(const std::string& name) const { return watches_.count(name) > 0; }
  // NAME was removed: what the supervisor kept of it (its backoff streak) goes with it, so a
  // container made again under the same name starts afresh.
  void forget(const std::string& name);
  // Notified whenever a container's state or health changes.
  Notifier& changed() { return *changed_; }
  void shutdown();

 private:
  struct Watch {
    uint64_t generation = 0;
    bool stopping = false;  // an exit we asked for: not restarted
    int streak = 0;         // quick exits in a row, for the backoff
    std::chrono::steady_clock::time_point started;
  };
  // The name of the container a watch of GENERATION is for now (it may have been renamed).
  [[nodiscard]] std::optional<std::string> name_of(uint64_t generation) const;
  awaitable<void> watch_loop(uint64_t generation, int pidfd);
  awaitable<void> health_loop(std::string name, uint64_t generation);
  awaitable<void> after_exit(std::string name, uint64_t generation, bool stopping);
  awaitable<bool> probe(const state::ContainerRecord& rec, const std::vector<std::string>& argv,
                        std::chrono::milliseconds timeout);
  awaitable<void> restart_dependents(state::ContainerRecord rec);
  awaitable<Result<engine::ContainerProcess>> create_and_start(const model::RuntimeRecord& rt,
                                                               engine::ContainerSpec spec);
  Result<state::ContainerRecord> record(const std::string& name);
  void publish(const state::ContainerRecord& rec, const std::string& type,
               std::map<std::string, std::string> attributes = {});

  Daemon& daemon_;
  std::unique_ptr<Notifier> changed_;
  std::unique_ptr<LogShipper> shipper_;  // syslog and journald: dual logging
  std::map<std::string, Watch> watches_;
  std::map<std::string, int> streaks_;  // survives between watches of one container
  uint64_t next_generation_ = 1;
  bool shutdown_ = false;
  // Containers created on the pool and not yet taken back by the loop, by ticket. Kept here,
  // not in the pool's completion handler: a handler the stopped loop never ran is destroyed
  // with the io_context, after the daemon and its engine; these are abandoned with the
  // supervisor, while the engine still exists (the daemon joins the pool before). The only
  // state the pool threads touch.
  std::mutex created_mutex_;
  std::map<uint64_t, engine::Created> created_;
  uint64_t next_ticket_ = 1;
};

}  // namespace stack::reconciler
