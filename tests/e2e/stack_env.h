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
  // Everything of PROJECT still on the host: mounts, cgroups, processes, directories, state.
  std::vector<std::string> leftovers(const std::string& project);

  // The cgroup directory of CONTAINER in hierarchy CTRL ("pids"), empty when there is none.
  static std::filesystem::path cgroup_dir(const char* ctrl, const std::string& project,
                                          const std::string& container);

  const std::filesystem::path& project_dir() const { return project_dir_; }
  const std::filesystem::path& root() const { return root_; }
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
