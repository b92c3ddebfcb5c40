// What every `stack` command shares: reaching the controller and the stack file, printing
// progress and errors, following logs.
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>

#include "cli/cli.h"
#include "common/log.h"
#include "engine/logs.h"
#include "spec/loader.h"

extern char** environ;

namespace stack::cli {

namespace {

std::filesystem::path self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  buf[n] = 0;
  return std::filesystem::path(buf).parent_path();
}

// stack-init is installed beside `stack` (the build tree) or in ../libexec/stack.
std::filesystem::path find_init() {
  if (const char* e = std::getenv("STACK_INIT"); e && *e) return e;
  auto dir = self_dir();
  for (auto p : {dir / "stack-init", dir / "../libexec/stack/stack-init"})
    if (::access(p.c_str(), X_OK) == 0) return std::filesystem::weakly_canonical(p);
  return dir / "stack-init";
}

spec::LoadOptions load_options() {
  spec::LoadOptions opts;
  for (const auto& f : globals().files) opts.files.emplace_back(f);
  if (!globals().project.empty()) opts.project_name = globals().project;
  opts.working_dir = std::filesystem::current_path();
  for (char** e = environ; *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) opts.environment.emplace(std::string(*e, static_cast<size_t>(eq - *e)), std::string(eq + 1));
  }
  return opts;
}

}  // namespace

Result<std::unique_ptr<reconciler::Controller>> open_controller() {
  log::setup(globals().log_level);
  if (::geteuid() != 0) return fail("stack needs root (it creates namespaces, mounts and cgroups)");
  reconciler::Paths paths;
  paths.root = globals().root;
  paths.run_root = globals().run_root;
  paths.init_binary = find_init();
  if (::access(paths.init_binary.c_str(), X_OK) != 0)
    return fail("container init not found at " + paths.init_binary.string() +
                " (set STACK_INIT or install stack-init beside stack)");
  return reconciler::Controller::open(paths);
}

Result<spec::Stack> load_stack() { return spec::load(load_options()); }

Result<std::string> project_name() {
  if (!globals().project.empty()) return spec::normalize_project_name(globals().project);
  auto stack = load_stack();
  if (!stack) return fail(stack.error());
  return stack->name;
}

bool stdout_is_tty() { return ::isatty(1) == 1; }

reconciler::Progress progress_printer() {
  bool tty = ::isatty(2) == 1;
  return [tty](const std::string& object, const std::string& what, std::chrono::milliseconds t) {
    const char* green = tty ? "\033[32m" : "";
    const char* reset = tty ? "\033[0m" : "";
    std::fprintf(stderr, " %s✔%s Container %-28s %-10s %6.1fs\n", green, reset, object.c_str(),
                 what.c_str(), static_cast<double>(t.count()) / 1000.0);
  };
}

int report(const Error& e) {
  std::fprintf(stderr, "stack: %s\n", e.message.c_str());
  return 1;
}

void follow_logs(reconciler::Controller& c, const std::vector<std::string>& containers,
                 bool from_start, bool timestamps, const std::function<bool()>& stop) {
  static const char* colors[] = {"\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m",
                                 "\033[96m", "\033[93m", "\033[92m"};
  bool tty = stdout_is_tty();
  size_t width = 0;
  for (const auto& n : containers) width = std::max(width, n.size());
  std::vector<std::pair<std::string, engine::LogFollower>> followers;
  for (const auto& n : containers)
    if (auto f = engine::LogFollower::open(c.container_dir(n), from_start))
      followers.emplace_back(n, std::move(*f));
  auto running = [&] {
    auto ps = c.ps("", false);
    if (!ps) return false;
    for (const auto& s : *ps)
      for (const auto& n : containers)
        if (s.name == n) return true;
    return false;
  };
  auto last_check = std::chrono::steady_clock::now();
  bool alive = true;
  while (!stop()) {
    bool any = false;
    for (size_t i = 0; i < followers.size(); i++) {
      auto recs = followers[i].second.next(std::chrono::milliseconds(alive ? 50 : 0));
      if (!recs) continue;
      for (const auto& r : *recs) {
        any = true;
        std::printf("%s%-*s |%s %s%s%s\n", tty ? colors[i % 8] : "", static_cast<int>(width),
                    followers[i].first.c_str(), tty ? "\033[0m" : "",
                    timestamps ? r.time.c_str() : "", timestamps ? " " : "", r.text.c_str());
      }
    }
    std::fflush(stdout);
    if (!alive && !any) break;  // drained what the exited containers wrote
    auto now = std::chrono::steady_clock::now();
    if (now - last_check > std::chrono::milliseconds(500)) {
      last_check = now;
      alive = running();
    }
  }
}

}  // namespace stack::cli
