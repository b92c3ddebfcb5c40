// The controller of one stack instance (one --root / --run-root): it owns the state store, the
// image store and the engine, turns a loaded stack into a plan and executes it, and answers
// what exists. Every command that changes the host goes through it.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/container.h"
#include "model/runtime_record.h"
#include "planner/plan.h"
#include "spec/stack.h"

namespace stack::fs {
class ImageStore;
struct Image;
}  // namespace stack::fs
namespace stack::state {
class Store;
struct ContainerRecord;
}  // namespace stack::state
namespace stack::engine {
class Engine;
class CgroupDriver;
}  // namespace stack::engine

namespace stack::reconciler {

// A removed container's directory, renamed in <root>/containers while it is deleted off the loop.
inline constexpr std::string_view kContainerAsidePrefix = ".removing-";
// Deletes what a previous daemon set aside and did not finish deleting (blocking: the pool).
void remove_containers_set_aside(const std::filesystem::path& root);

using model::NetworkJoin;
using model::PublishedPort;
using model::RuntimeRecord;

struct Paths {
  std::filesystem::path root = "/var/lib/stack";
  std::filesystem::path run_root = "/run/stack";
  std::filesystem::path init_binary;  // stack-init; found next to the stack binary by default
  // --userns-remap: the host user whose subordinate ids every container's root maps to (a
  // service opts out with userns_mode: host); "" for none.
  std::string userns_remap;
  // --userns-layers: how the layers become the mapped root's: "auto" (idmapped mounts where
  // the filesystem takes them, else copies), "idmap" or "copy" (made once per mapping, under
  // <root>/userns-layers).
  std::string userns_layers = "auto";
  // Log rotation of a service whose `logging.options` say nothing (--log-max-size, -file).
  int64_t log_max_size = 10 * 1024 * 1024;
  int log_max_files = 3;

  // "" for the default root, else 8 hex digits of the root (common/instance.h): what names
  // this instance's cgroups and nftables tables apart from another's.
  [[nodiscard]] std::string instance() const;
  // Where this instance's cgroups live: "stack" for the default root, "stack/i-<hash8>" for
  // another, so instances with other roots never share a cgroup even for one project name.
  [[nodiscard]] std::string cgroup_parent() const;
};

// One line of progress: "demo-web-1", "Started", elapsed.
using Progress = std::function<void(const std::string& object, const std::string& what,
                                    std::chrono::milliseconds elapsed)>;

struct UpOptions {
  planner::PlanOptions plan;
  bool dry_run = false;
};

// A container as `stack ps` shows it.
struct ContainerStatus {
  std::string name, project, service;
  int number = 1;
  std::string image;
  std::string state;   // created|running|restarting|exited|dead
  std::string health;  // "", starting, healthy, unhealthy
  int pid = 0;
  int exit_code = 0;
  bool oom_killed = false;
  int restarts = 0;
  int64_t created_at = 0, started_at = 0, finished_at = 0;  // unix ms
  std::vector<std::string> command;
  std::string error;  // why its last start failed, while it is not running
  std::map<std::string, std::string> labels;  // labels, label_file, deploy.labels
  std::map<std::string, std::string> annotations;  // annotations
};

// One running container's counters, as `stack stats` reads them (stats.cpp).
struct ContainerStats {
  std::string name, service;
  uint64_t cpu_ns = 0;   // CPU time used so far
  uint64_t read_ns = 0;  // CLOCK_MONOTONIC when read: two samples give the CPU %
  int64_t memory_bytes = 0, memory_limit = 0;  // the limit is the host's memory when none is set
  int64_t pids = 0;
  uint64_t net_rx = 0, net_tx = 0, block_read = 0, block_write = 0;
};

// The resources of one stack instance (the state store, the image store, the cgroup driver and
// the engine) and the synchronous steps the daemon builds its operations from. Nothing here
// waits for a container: waiting is the daemon's, on its event loop.
class Controller {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Controller>> open(const Paths& paths);
  ~Controller();

  // The containers of PROJECT as the kernel has them now (exits recorded).
  [[nodiscard]] Result<std::vector<state::ContainerRecord>> observe(const std::string& project);
  // Records a container (state "created") from its runtime record, before anything is made
  // on the host, so a crash half-way leaves a record that the next reconcile converges.
  [[nodiscard]] Result<state::ContainerRecord> create_record(
      std::shared_ptr<const model::RuntimeRecord> runtime, int number);
  // REC (running or not) is TO from now on: its record, directory and addresses (its cgroup
  // keeps its path).
  [[nodiscard]] Result<state::ContainerRecord> rename_container(const state::ContainerRecord& rec,
                                                                const std::string& to);
  // WANTED, or WANTED.2, .3...: a cgroup path no recorded container of PROJECT uses (the old
  // container of a start-first update keeps the one its new container would have).
  [[nodiscard]] Result<std::string> unused_cgroup(const std::string& project, const std::string& wanted);
  // Removes a container that is not running: its cgroup and record; its directory is renamed
  // aside (one rename, on the loop) and returned, for the caller to delete off the loop: a
  // writable layer of many files takes seconds to delete (empty: it had none).
  [[nodiscard]] Result<std::filesystem::path> remove_container(const state::ContainerRecord& rec);
  // Re-reads REC against the kernel: an init that has exited is recorded as exited with its
  // code and OOM flag, and its cgroup removed. True when REC changed.
  [[nodiscard]] Result<bool> refresh(state::ContainerRecord& rec);
  // Containers of PROJECT (every project when empty), refreshed; only running ones unless ALL.
  [[nodiscard]] Result<std::vector<ContainerStatus>> ps(const std::string& project, bool all);
  // The running containers of PROJECT (of SERVICES when given), refreshed, with their counters.
  [[nodiscard]] Result<std::vector<ContainerStats>> stats(const std::string& project,
                                                          const std::vector<std::string>& services);
  [[nodiscard]] std::filesystem::path container_dir(const std::string& name) const;
  [[nodiscard]] Result<model::ContainerSpec> spec_of(const state::ContainerRecord& rec) const;
  // The recorded spec, or, when the record cannot be read, where its host objects are.
  [[nodiscard]] model::ContainerSpec located(const state::ContainerRecord& rec) const;

  fs::ImageStore& images() { return *images_; }
  state::Store& store() { return *store_; }
  engine::Engine& engine() { return *engine_; }
  [[nodiscard]] const Paths& paths() const { return paths_; }

 private:
  Controller() = default;

  Paths paths_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<fs::ImageStore> images_;
  std::unique_ptr<engine::CgroupDriver> cgroups_;
  std::unique_ptr<engine::Engine> engine_;
};

// Parses "SIGTERM", "TERM" or "15".
[[nodiscard]] Result<int> parse_signal(std::string_view name);

}  // namespace stack::reconciler
