// The controller of one stack instance (one --root / --run-root): it owns the state store, the
// image store and the engine, turns a loaded stack into a plan and executes it, and answers
// what exists. Every command that changes the host goes through it.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
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
struct ContainerSpec;
}  // namespace stack::engine

namespace stack::reconciler {

struct Paths {
  std::filesystem::path root = "/var/lib/stack";
  std::filesystem::path run_root = "/run/stack";
  std::filesystem::path init_binary;  // stack-init; found next to the stack binary by default

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
  std::string state;  // created|running|restarting|exited|dead
  int pid = 0;
  int exit_code = 0;
  bool oom_killed = false;
  int restarts = 0;
  int64_t created_at = 0, started_at = 0, finished_at = 0;  // unix ms
  std::vector<std::string> command;
};

struct ExecOptions {
  std::string service;
  int index = 1;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // extra "K=V"
  std::string user;              // empty: the service's
  std::string workdir;           // empty: the service's
};

class Controller {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Controller>> open(const Paths& paths);
  ~Controller();

  // The plan for STACK against what exists; with dry_run that is all, else it is executed.
  [[nodiscard]] Result<planner::Plan> up(const spec::Stack& stack, const UpOptions& options,
                                         const Progress& progress);
  // Stops (stop signal, grace or TIMEOUT, then SIGKILL) and removes every container of the
  // project, its cgroups, directories and state, in reverse dependency order.
  [[nodiscard]] Result<void> down(const std::string& project,
                                  std::optional<std::chrono::seconds> timeout,
                                  const Progress& progress);
  [[nodiscard]] Result<void> stop(const std::string& project, const std::vector<std::string>& services,
                                  std::optional<std::chrono::seconds> timeout,
                                  const Progress& progress);
  [[nodiscard]] Result<void> start(const std::string& project,
                                   const std::vector<std::string>& services,
                                   const Progress& progress);
  // Containers of PROJECT (every project when empty), refreshed against the kernel: a container
  // whose init has exited is recorded as exited with its code. Only running ones unless ALL.
  [[nodiscard]] Result<std::vector<ContainerStatus>> ps(const std::string& project, bool all);
  [[nodiscard]] Result<int> exec(const std::string& project, const ExecOptions& options);
  // The directory holding a container's logs.
  [[nodiscard]] std::filesystem::path container_dir(const std::string& name) const;

  fs::ImageStore& images() { return *images_; }
  // Removes an image unless a container of any project was made from it.
  [[nodiscard]] Result<void> remove_image(const std::string& reference);

 private:
  Controller() = default;
  Result<void> refresh(state::ContainerRecord& rec);
  Result<void> create_and_start(const spec::Stack& stack, const spec::Service& service, int number,
                                const fs::Image& image, const std::string& image_ref);
  Result<void> start_existing(state::ContainerRecord& rec);
  Result<void> stop_container(state::ContainerRecord& rec, std::chrono::milliseconds grace,
                              int signal);
  Result<void> remove_container(state::ContainerRecord& rec, std::chrono::milliseconds grace,
                                int signal);
  Result<void> stop_all(std::vector<state::ContainerRecord>& records,
                        std::optional<std::chrono::seconds> timeout, bool remove,
                        const Progress& progress);
  Result<engine::ContainerSpec> spec_of(const state::ContainerRecord& rec) const;
  Result<std::vector<state::ContainerRecord>> containers_of(const std::string& project,
                                                            const std::vector<std::string>& services);

  Paths paths_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<fs::ImageStore> images_;
  std::unique_ptr<engine::CgroupDriver> cgroups_;
  std::unique_ptr<engine::Engine> engine_;
};

// Parses "SIGTERM", "TERM" or "15".
[[nodiscard]] Result<int> parse_signal(std::string_view name);

}  // namespace stack::reconciler
