// Stack files as a source of drift: registered projects' files and the stacks directory
// (/etc/stack/stacks.d, like static pods) watched with inotify on their directories, so an
// editor's write-and-rename is seen too. A change is debounced, then the project re-planned.
#include <sys/inotify.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "reconciler/async.h"
#include "reconciler/daemon.h"

#include <spdlog/spdlog.h>

namespace stack::reconciler {

namespace {

bool is_stack_file(const std::filesystem::path& p) {
  auto ext = p.extension();
  return ext == ".yaml" || ext == ".yml";
}

}  // namespace

void Daemon::watch_files() {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    log::get("reconciler")->warn("inotify unavailable, stack files are re-read only by the "
                                 "periodic resync: {}", std::strerror(errno));
    return;
  }
  for (const auto& [file, _] : file_projects_) watch_dir(std::filesystem::path(file).parent_path());
  if (!options_.stacks_dir.empty() && std::filesystem::is_directory(options_.stacks_dir))
    watch_dir(options_.stacks_dir);
  asio::co_spawn(io_, file_watch_loop(), asio::detached);
}

void Daemon::watch_dir(const std::filesystem::path& dir) {
  if (inotify_fd_ < 0) return;
  for (const auto& [_, d] : watch_dirs_)
    if (d == dir.string()) return;
  int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(),
                               IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE);
  if (wd >= 0) watch_dirs_[wd] = dir.string();
}

void Daemon::register_watch(const std::string& project, const std::vector<std::string>& files) {
  for (const auto& f : files) {
    file_projects_[f].insert(project);
    watch_dir(std::filesystem::path(f).parent_path());
  }
}

void Daemon::unregister_watch(const std::string& project) {
  for (auto it = file_projects_.begin(); it != file_projects_.end();) {
    it->second.erase(project);
    it = it->second.empty() ? file_projects_.erase(it) : std::next(it);
  }
}

awaitable<void> Daemon::file_watch_loop() {
  asio::posix::stream_descriptor fd(io_, ::dup(inotify_fd_));
  while (!stopping_) {
    auto [ec] = co_await fd.async_wait(asio::posix::stream_descriptor::wait_read, no_throw);
    if (ec || stopping_) co_return;
    // Editors write in bursts (write, rename, chmod): collect for a moment, then act once.
    std::set<std::string> changed;
    for (int round = 0; round < 2; round++) {
      alignas(inotify_event) char buf[8192];
      for (;;) {
        ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
        if (n <= 0) break;
        for (char* p = buf; p < buf + n;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          p += sizeof(inotify_event) + ev->len;
          auto dir = watch_dirs_.find(ev->wd);
          if (dir == watch_dirs_.end() || ev->len == 0) continue;
          changed.insert((std::filesystem::path(dir->second) / ev->name).string());
        }
      }
      if (round == 0) co_await sleep_for(std::chrono::milliseconds(200));
    }
    std::set<std::string> projects;
    for (const auto& path : changed) {
      if (auto it = file_projects_.find(path); it != file_projects_.end())
        projects.insert(it->second.begin(), it->second.end());
      std::filesystem::path p(path);
      if (!options_.stacks_dir.empty() && p.parent_path() == options_.stacks_dir &&
          is_stack_file(p))
        asio::co_spawn(io_, sync_static_project(p), asio::detached);
    }
    for (const auto& project : projects)
      asio::co_spawn(io_, guarded_reconcile(project, "stack file changed"), asio::detached);
  }
}

void Daemon::scan_stacks_dir() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(options_.stacks_dir, ec))
    if (e.is_regular_file() && is_stack_file(e.path()))
      asio::co_spawn(io_, sync_static_project(e.path()), asio::detached);
}

// A file in the stacks directory is a project of its own: created or changed, it is brought
// up; removed, its project goes down.
awaitable<void> Daemon::sync_static_project(std::filesystem::path file) {
  auto log = log::get("reconciler");
  if (!std::filesystem::exists(file)) {
    auto list = controller_->store().list_projects();
    if (!list) co_return;
    for (const auto& p : *list)
      if (p.files == std::vector<std::string>{file.string()}) {
        log->info("stack file removed, taking its project down project={} file={}", p.name,
                  file.string());
        auto noop = [](const std::string&, const std::string&, std::chrono::milliseconds) {};
        if (auto r = co_await down(p.name, std::nullopt, noop); !r)
          log->error("down project={}: {}", p.name, r.error().message);
      }
    co_return;
  }
  spec::LoadOptions opts;
  opts.files = {file};
  opts.working_dir = file.parent_path();
  auto stack = spec::load(opts);
  // Without a top-level name: the file's own name, not the directory's (stacks.d).
  if (stack && stack->name == spec::normalize_project_name(file.parent_path().filename().string())) {
    opts.project_name = file.stem().string();
    stack = spec::load(opts);
  }
  if (!stack) {
    log->error("stack file {}: {}", file.string(), stack.error().message);
    co_return;
  }
  state::ProjectRecord rec;
  rec.name = stack->name;
  rec.files = {file.string()};
  rec.working_dir = stack->project_dir.string();
  rec.environment_json = "{}";
  rec.created_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (auto existing = controller_->store().get_project(rec.name); existing && !*existing)
    if (auto r = controller_->store().put_project(rec); !r) {
      log->error("register {}: {}", file.string(), r.error().message);
      co_return;
    }
  register_watch(rec.name, rec.files);
  co_await guarded_reconcile(rec.name, "stacks directory");
}

}  // namespace stack::reconciler
