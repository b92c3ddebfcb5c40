#include "e2e/stack_env.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
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

StackEnv::~StackEnv() {
  for (const auto& p : projects_) stack({"down", "-p", p, "-t", "0"});
  // Whatever a failed test left: kill its processes through the cgroups, remove the cgroups.
  for (const auto& p : projects_) {
    for (const char* ctrl : {"memory", "pids", "cpu", "cpuacct", "freezer", "systemd"}) {
      fs::path dir = fs::path("/sys/fs/cgroup") / ctrl / "stack" / p;
      if (!fs::exists(dir)) continue;
      for (auto& e : fs::recursive_directory_iterator(dir)) {
        std::ifstream procs(e.path() / "cgroup.procs");
        for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
      }
    }
  }
  for (const auto& p : projects_)
    for (const char* ctrl : {"memory", "pids", "cpu", "cpuacct", "freezer", "systemd"}) {
      fs::path dir = fs::path("/sys/fs/cgroup") / ctrl / "stack" / p;
      for (int i = 0; i < 50 && fs::exists(dir); i++) {
        std::error_code ec;
        for (auto& e : fs::directory_iterator(dir, ec)) ::rmdir(e.path().c_str());
        if (::rmdir(dir.c_str()) == 0) break;
        ::usleep(20000);
      }
      ::rmdir((fs::path("/sys/fs/cgroup") / ctrl / "stack").c_str());
    }
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

std::vector<std::string> StackEnv::leftovers(const std::string& project) {
  std::vector<std::string> out;
  std::ifstream mounts("/proc/self/mountinfo");
  for (std::string line; std::getline(mounts, line);)
    if (line.find(root_.string()) != std::string::npos) out.push_back("mount: " + line);
  for (const char* ctrl : {"memory", "pids", "cpu", "cpuacct", "freezer", "systemd"})
    if (fs::exists(fs::path("/sys/fs/cgroup") / ctrl / "stack" / project))
      out.push_back(std::string("cgroup: ") + ctrl + "/stack/" + project);
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
