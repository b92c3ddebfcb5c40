#include "e2e/stack_env.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
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
  // Tests send traffic only to this machine: a pull of an image the store lacks must fail at
  // once, not reach docker.io. Loopback registries (the registry tests') stay allowed; every
  // daemon the tests start, by the CLI or by start_daemon, inherits this.
  write_text(tmp_ / "registries.json", R"({"blocked": ["*"]})");
  ::setenv("STACK_REGISTRIES_CONFIG", (tmp_ / "registries.json").c_str(), 1);
  auto r = stack({"image", "import", "busybox:latest", busybox_rootfs().string()});
  if (r.code != 0) {
    // FAIL throws out of the constructor: no destructor runs, so the daemon the import
    // started is stopped here (a full disk once left nine daemons behind this way).
    stack({"daemon", "stop"});
    FAIL("image import failed: " << r.err);
  }
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
  // -v: named volumes (and their mounts, with driver_opts) go too.
  for (const auto& p : projects_) stack({"down", "-v", "-p", p, "-t", "0"});
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

namespace {

// One HTTP/1.1 request over the daemon's socket; calls ON_LINE with each line of the body as it
// arrives (the event stream is newline-delimited JSON) until it returns false, the connection
// ends or TIMEOUT passes.
void api_request(const fs::path& socket, const std::string& target, std::chrono::milliseconds timeout,
                 const std::function<bool(const std::string&)>& on_line) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return;
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: stack\r\nConnection: close\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string buf;
  bool in_body = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    if (!in_body) {
      auto end = buf.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      buf.erase(0, end + 4);
      in_body = true;
    }
    // Body lines: JSON objects or arrays; chunk-size lines of a chunked reply are not JSON and skipped.
    for (size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty() && (line[0] == '{' || line[0] == '[') && !on_line(line)) {
        ::close(fd);
        return;
      }
    }
  }
  if (in_body && !buf.empty() && (buf[0] == '{' || buf[0] == '[')) on_line(buf);
  ::close(fd);
}

}  // namespace

void StackEnv::start_daemon(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {std::string(STACK_BUILD_DIR) + "/stack", "--root",
                                   root_.string(), "--run-root", run_root_.string(), "daemon"};
  argv.insert(argv.end(), args.begin(), args.end());
  stack({"daemon", "stop"});  // the one the image import started, with the defaults
  fs::create_directories(run_root_);
  std::string log = (run_root_ / "daemon.log").string();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);  // nobody's child: outlives the test's process tree as stack's own
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ::dup2(out, 1);
    ::dup2(out, 2);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::waitpid(pid, nullptr, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (api_get("/v1/version").is_null()) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the daemon did not answer");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

nlohmann::json StackEnv::api_get(const std::string& path) {
  nlohmann::json out;
  api_request(run_root_ / "stack.sock", path, std::chrono::seconds(5), [&](const std::string& l) {
    out = nlohmann::json::parse(l, nullptr, false);
    return false;
  });
  return out.is_discarded() ? nlohmann::json() : out;
}

uint64_t StackEnv::reconciles() { return api_get("/v1/version").value("reconciles", uint64_t{0}); }

bool StackEnv::wait_reconciles(uint64_t from, uint64_t n, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (reconciles() < from + n) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

nlohmann::json StackEnv::wait_event(const std::string& project, int64_t since_ms,
                                    const std::function<bool(const nlohmann::json&)>& pred,
                                    std::chrono::milliseconds timeout) {
  nlohmann::json found;
  api_request(run_root_ / "stack.sock",
              "/v1/events?project=" + project + "&since=" + std::to_string(since_ms), timeout,
              [&](const std::string& l) {
                auto e = nlohmann::json::parse(l, nullptr, false);
                if (e.is_object() && pred(e)) {
                  found = e;
                  return false;
                }
                return true;
              });
  return found;
}

int64_t StackEnv::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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
  if (fs::exists(run_root_ / "secrets"))
    for (auto& e : fs::directory_iterator(run_root_ / "secrets"))
      if (e.path().filename().string().rfind(project + "-", 0) == 0)
        out.push_back("secrets: " + e.path().string());
  auto r = stack({"ps", "-a", "-p", project, "--format", "json"});
  if (r.code == 0 && !nlohmann::json::parse(r.out).empty()) out.push_back("state: " + r.out);
  return out;
}

}  // namespace stack::test
