#include "e2e/stack_env.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>
#include <sstream>

#include <doctest/doctest.h>

namespace stack::test {

namespace fs = std::filesystem;

std::string unique_project(const std::string& base) {
  return base + std::to_string(::getpid() % 100000);
}

StackEnv::StackEnv() {
  root_ = tmp_ / "root";
  run_root_ = tmp_ / "run";
  project_dir_ = tmp_ / "project";
  fs::create_directories(project_dir_);
  auto r = stack({"image", "import", "busybox:latest", busybox_rootfs().string()});
  if (r.code != 0) FAIL("image import failed: " << r.err);
}

namespace {

const char* kControllers[] = {"memory", "pids", "cpu", "cpuacct", "freezer", "systemd", "unified"};

// The cgroup directories of PROJECT in one hierarchy: stack/<project> for the default root,
// stack/i-<hash>/<project> for others.
std::vector<fs::path> project_cgroups(const char* ctrl, const std::string& project) {
  std::vector<fs::path> out;
  fs::path top = fs::path("/sys/fs/cgroup") / ctrl / "stack";
  std::error_code ec;
  if (fs::exists(top / project)) out.push_back(top / project);
  for (auto& e : fs::directory_iterator(top, ec))
    if (e.is_directory() && fs::exists(e.path() / project)) out.push_back(e.path() / project);
  return out;
}

void remove_cgroup_tree(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_directory()) dirs.push_back(e.path());
  dirs.push_back(dir);
  std::sort(dirs.rbegin(), dirs.rend());  // children before parents
  for (const auto& d : dirs)
    for (int i = 0; i < 50 && ::rmdir(d.c_str()) != 0 && errno == EBUSY; i++) ::usleep(20000);
  // Empty parents up to and including stack/, as stack itself would leave them.
  for (fs::path p = dir.parent_path(); p.parent_path().parent_path() != "/sys/fs"; p = p.parent_path())
    if (::rmdir(p.c_str()) != 0) break;
}

}  // namespace

fs::path StackEnv::cgroup_dir(const char* ctrl, const std::string& project,
                              const std::string& container) {
  auto dirs = project_cgroups(ctrl, project);
  return dirs.empty() ? fs::path() : dirs.front() / container;
}

StackEnv::~StackEnv() {
  for (const auto& p : projects_) stack({"down", "-p", p, "-t", "0"});
  stack({"daemon", "stop"});
  // Whatever a failed test left: kill its processes through the cgroups, remove the cgroups.
  for (const auto& p : projects_)
    for (const char* ctrl : kControllers)
      for (const auto& dir : project_cgroups(ctrl, p)) {
        std::error_code ec;
        for (auto& e : fs::recursive_directory_iterator(dir, ec)) {
          std::ifstream procs(e.path() / "cgroup.procs");
          for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
        }
      }
  for (const auto& p : projects_)
    for (const char* ctrl : kControllers)
      for (const auto& dir : project_cgroups(ctrl, p)) remove_cgroup_tree(dir);
}

RunResult StackEnv::stack(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {std::string(STACK_BUILD_DIR) + "/stack", "--root",
                                   root_.string(), "--run-root", run_root_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto cwd = fs::current_path();
  fs::current_path(project_dir_);
  auto r = run(argv, env);
  fs::current_path(cwd);
  return r;
}

void StackEnv::write(const std::string& yaml, const std::string& name) {
  write_text(project_dir_ / name, yaml);
}

nlohmann::json StackEnv::ps(const std::string& project) {
  auto r = stack({"ps", "-a", "-p", project, "--format", "json"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  return nlohmann::json::parse(r.out);
}

nlohmann::json StackEnv::container(const std::string& project, const std::string& name) {
  for (const auto& c : ps(project))
    if (c["name"] == name) return c;
  return nullptr;
}

nlohmann::json StackEnv::wait_for(const std::string& project, const std::string& name,
                                  const std::function<bool(const nlohmann::json&)>& pred,
                                  std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto c = container(project, name);
    if ((!c.is_null() && pred(c)) || std::chrono::steady_clock::now() >= deadline) return c;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::vector<std::string> StackEnv::leftovers(const std::string& project) {
  std::vector<std::string> out;
  std::ifstream mounts("/proc/self/mountinfo");
  for (std::string line; std::getline(mounts, line);)
    if (line.find(root_.string()) != std::string::npos) out.push_back("mount: " + line);
  for (const char* ctrl : kControllers)
    for (const auto& dir : project_cgroups(ctrl, project)) out.push_back("cgroup: " + dir.string());
  for (auto& e : fs::directory_iterator("/proc")) {
    std::ifstream cg(e.path() / "cgroup");
    std::string text((std::istreambuf_iterator<char>(cg)), std::istreambuf_iterator<char>());
    if (text.find("/stack/" + project + "/") != std::string::npos)
      out.push_back("process: " + e.path().filename().string());
  }
  if (fs::exists(root_ / "containers"))
    for (auto& e : fs::directory_iterator(root_ / "containers"))
      if (e.path().filename().string().rfind(project + "-", 0) == 0)
        out.push_back("directory: " + e.path().string());
  auto r = stack({"ps", "-a", "-p", project, "--format", "json"});
  if (r.code == 0 && !nlohmann::json::parse(r.out).empty()) out.push_back("state: " + r.out);
  return out;
}

}  // namespace stack::test
