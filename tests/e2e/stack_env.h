// A private stack instance for an end-to-end test: its own --root and --run-root under /tmp,
// a BusyBox image imported, stack files written into a project directory, and a destructor
// that brings every project down and removes what is left, pass or fail.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace stack::test {

class StackEnv {
 public:
  StackEnv();
  ~StackEnv();

  // Runs `stack --root R --run-root RR ARGS...` from the project directory.
  RunResult stack(const std::vector<std::string>& args, const std::vector<std::string>& env = {});
  // Writes the stack file (stack.yaml unless named) in the project directory.
  void write(const std::string& yaml, const std::string& name = "stack.yaml");
  // `ps -a --format json` of PROJECT.
  nlohmann::json ps(const std::string& project);
  nlohmann::json container(const std::string& project, const std::string& name);
  // Polls CONTAINER of PROJECT until PRED holds (or TIMEOUT passes); returns its last state,
  // null when it does not exist.
  nlohmann::json wait_for(const std::string& project, const std::string& container,
                          const std::function<bool(const nlohmann::json&)>& pred,
                          std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // (Re)starts this instance's daemon in the background with extra ARGS (`--resync 0.1`);
  // returns once it answers.
  void start_daemon(const std::vector<std::string>& args);
  // GET PATH from the daemon's API (a JSON reply); null when it does not answer.
  nlohmann::json api_get(const std::string& path);
  // Reconcile passes the daemon has completed (GET /v1/version "reconciles").
  uint64_t reconciles();
  // Waits until the daemon has completed N more reconcile passes than FROM.
  bool wait_reconciles(uint64_t from, uint64_t n,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Reads PROJECT's events from SINCE_MS (unix ms; the daemon keeps the last 1,000) until PRED
  // holds for one of them; returns it, or null after TIMEOUT.
  nlohmann::json wait_event(const std::string& project, int64_t since_ms,
                            const std::function<bool(const nlohmann::json&)>& pred,
                            std::chrono::milliseconds timeout = std::chrono::seconds(15));
  static int64_t now_ms();

  // Everything of PROJECT still on the host: mounts, cgroups, processes, directories, state.
  std::vector<std::string> leftovers(const std::string& project);

  // The cgroup directory of CONTAINER in hierarchy CTRL ("pids"), empty when there is none.
  static std::filesystem::path cgroup_dir(const char* ctrl, const std::string& project,
                                          const std::string& container);

  const std::filesystem::path& project_dir() const { return project_dir_; }
  const std::filesystem::path& root() const { return root_; }
  const std::filesystem::path& run_root() const { return run_root_; }
  // Project names a test used, taken down at the end.
  void uses(const std::string& project) { projects_.insert(project); }

 private:
  TempDir tmp_{"stack-e2e"};
  std::filesystem::path root_, run_root_, project_dir_;
  std::set<std::string> projects_;
};

// A project name unique to this test process.
std::string unique_project(const std::string& base);

}  // namespace stack::test
