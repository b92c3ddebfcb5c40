// Executing plans and answering for what exists, for one stack instance. Root on the host.
// The state store is the record of what was made; the kernel is asked (is the init still
// the process we started?) before any record is believed.
#include "reconciler/controller.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "common/files.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "reconciler/container_builder.h"
#include "reconciler/runtime_record.h"
#include "spec/loader.h"
#include "state/store.h"

#include <spdlog/spdlog.h>

namespace stack::reconciler {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

engine::ContainerProcess process_of(const state::ContainerRecord& r) {
  return {r.pid, r.pid_start_time, r.started_at};
}

// Changes to one instance are serialised by an exclusive lock on <root>/lock; readers (ps,
// logs) do not take it.
class RootLock {
 public:
  static Result<RootLock> take(const std::filesystem::path& root) {
    RootLock l;
    l.fd_.reset(::open((root / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!l.fd_) return fail_errno("open " + (root / "lock").string());
    if (::flock(l.fd_.get(), LOCK_EX) != 0) return fail_errno("lock " + root.string());
    return l;
  }

 private:
  UniqueFd fd_;
};

}  // namespace

Controller::~Controller() = default;

Result<std::unique_ptr<Controller>> Controller::open(const Paths& paths) {
  std::unique_ptr<Controller> c(new Controller());
  c->paths_ = paths;
  for (const auto& d : {paths.root, paths.root / "containers", paths.root / "images"})
    if (auto r = make_dirs(d, 0711); !r) return fail(r.error());
  c->store_ = STACK_TRY_CTX(state::Store::open(paths.root / "state.db"), "open state");
  c->images_ = std::make_unique<fs::ImageStore>(paths.root / "images");
  c->cgroups_ = STACK_TRY_CTX(engine::detect_cgroup_driver(), "cgroups");
  c->engine_ = std::make_unique<engine::Engine>(paths.init_binary, *c->cgroups_);
  return c;
}

std::filesystem::path Controller::container_dir(const std::string& name) const {
  return paths_.root / "containers" / name;
}

Result<engine::ContainerSpec> Controller::spec_of(const state::ContainerRecord& rec) const {
  auto rt = runtime_from_json(rec.runtime_json);
  if (!rt) return fail(rt.error().wrap(rec.name));
  return rt->spec;
}

Result<void> Controller::refresh(state::ContainerRecord& rec) {
  if (rec.state != "running" && rec.state != "restarting") return {};
  auto proc = process_of(rec);
  if (engine::is_alive(proc)) return {};
  engine_->wait_exit(proc, milliseconds(0));  // reaps it if it was our child
  auto spec = spec_of(rec);
  if (!spec) return fail(spec.error());
  auto info = engine_->exit_info(*spec);
  if (!info) return fail(info.error().wrap(rec.name));
  rec.state = "exited";
  rec.exit_code = info->code;
  rec.oom_killed = info->oom_killed;
  rec.finished_at = info->finished_at;
  rec.pid = 0;
  rec.pid_start_time = 0;
  if (info->oom_killed)
    log::get("reconciler")->info("container was OOM-killed name={} code={}", rec.name, rec.exit_code);
  // The cgroup outlives its processes only until their end is read: nothing stays behind.
  if (auto r = engine_->cgroups().remove(spec->cgroup); !r) return fail(r.error().wrap(rec.name));
  return store_->put_container(rec);
}

Result<void> Controller::create_and_start(const spec::Stack& stack, const spec::Service& svc,
                                          int number, const fs::Image& image,
                                          const std::string& image_ref) {
  auto rt = build_runtime(paths_, stack, svc, number, image);
  if (!rt) return fail(rt.error());
  state::ContainerRecord rec;
  rec.name = rt->spec.name;
  rec.project = stack.name;
  rec.service = svc.name;
  rec.number = number;
  rec.config_hash = spec::config_hash(svc);
  rec.image = image_ref;
  rec.image_id = image.id;
  rec.created_at = unix_ms();
  rec.runtime_json = to_json(*rt);
  // Recorded before anything is made on the host, so a crash half-way leaves a record the
  // next reconcile finds and converges.
  if (auto r = store_->put_container(rec); !r) return r;
  ScopeGuard undo([&] {
    (void)engine_->remove(rt->spec);
    (void)store_->remove_container(rec.name);
  });
  if (auto r = start_existing(rec); !r) return r;
  undo.dismiss();
  return {};
}

Result<void> Controller::start_existing(state::ContainerRecord& rec) {
  auto spec = spec_of(rec);
  if (!spec) return fail(spec.error());
  auto proc = engine_->start(*spec);
  if (!proc) return fail(proc.error().wrap("start " + rec.name));
  rec.state = "running";
  rec.pid = proc->pid;
  rec.pid_start_time = proc->start_time;
  rec.started_at = proc->started_at;
  rec.finished_at = 0;
  rec.exit_code = 0;
  rec.oom_killed = false;
  log::get("reconciler")->info("started container name={} pid={}", rec.name, rec.pid);
  return store_->put_container(rec);
}

Result<void> Controller::stop_container(state::ContainerRecord& rec, milliseconds grace,
                                        int signal) {
  if (auto r = refresh(rec); !r) return r;
  if (rec.state != "running") return {};
  if (auto r = engine_->stop(process_of(rec), signal, grace); !r)
    return fail(r.error().wrap("stop " + rec.name));
  return refresh(rec);
}

Result<void> Controller::remove_container(state::ContainerRecord& rec, milliseconds grace,
                                          int signal) {
  if (auto r = stop_container(rec, grace, signal); !r) return r;
  auto spec = spec_of(rec);
  if (!spec) return fail(spec.error());
  if (auto r = engine_->remove(*spec); !r) return fail(r.error().wrap("remove " + rec.name));
  return store_->remove_container(rec.name);
}

Result<planner::Plan> Controller::up(const spec::Stack& stack, const UpOptions& options,
                                     const Progress& progress) {
  // Everything the plan needs is resolved before the host is touched: a missing image is
  // reported with the position of its `image:` and nothing is created.
  std::map<std::string, fs::Image> images;
  std::vector<planner::DesiredService> desired;
  std::string missing;
  for (const auto& svc : stack.services) {
    auto image = images_->get(svc.image);
    if (!image) {
      missing += (missing.empty() ? "" : "\n") + svc.image_pos.str() + ": " + image.error().message;
      continue;
    }
    images.emplace(svc.name, *image);
    desired.push_back({svc.name, spec::config_hash(svc), image->id, svc.replicas, svc.depends_on});
  }
  if (!missing.empty()) return fail(missing);

  auto lock = RootLock::take(paths_.root);
  if (!lock) return fail(lock.error());
  auto records = store_->list_containers(stack.name);
  if (!records) return fail(records.error());
  std::map<std::string, state::ContainerRecord> existing;
  std::vector<planner::ObservedContainer> observed;
  for (auto& rec : *records) {
    if (auto r = refresh(rec); !r) return fail(r.error());
    observed.push_back({rec.name, rec.service, rec.number, rec.config_hash, rec.image_id,
                        rec.state == "running"});
    existing.emplace(rec.name, rec);
  }
  auto plan = planner::plan(stack.name, desired, observed, options.plan);
  if (!plan) return fail(plan.error());
  if (options.dry_run || plan->empty()) return plan;

  state::ProjectRecord project;
  project.name = stack.name;
  for (const auto& f : stack.files) project.files.push_back(f.string());
  project.working_dir = stack.project_dir.string();
  project.created_at = unix_ms();
  if (auto r = store_->put_project(project); !r) return fail(r.error());

  using K = planner::Action::Kind;
  for (const auto& a : plan->actions) {
    auto t0 = Clock::now();
    const spec::Service* svc = stack.find(a.service);
    auto it = existing.find(a.container);
    Result<void> r;
    if (a.kind == K::Remove || a.kind == K::Recreate) {
      auto rt = runtime_from_json(it->second.runtime_json);
      if (!rt) return fail(rt.error());
      r = remove_container(it->second, rt->stop_grace, rt->stop_signal);
      if (r && a.kind == K::Remove) progress(a.container, "Removed", since(t0));
    }
    if (r && (a.kind == K::Create || a.kind == K::Recreate)) {
      r = create_and_start(stack, *svc, a.number, images.at(a.service), svc->image);
      if (r) progress(a.container, a.kind == K::Create ? "Started" : "Recreated", since(t0));
    }
    if (r && a.kind == K::Start) {
      r = start_existing(it->second);
      if (r) progress(a.container, "Started", since(t0));
    }
    if (!r) return fail(r.error());
  }
  return plan;
}

Result<std::vector<state::ContainerRecord>> Controller::containers_of(
    const std::string& project, const std::vector<std::string>& services) {
  auto records = store_->list_containers(project);
  if (!records) return fail(records.error());
  for (const auto& s : services)
    if (std::none_of(records->begin(), records->end(), [&](auto& r) { return r.service == s; }))
      return fail("no such service in project " + project + ": " + s);
  std::vector<state::ContainerRecord> out;
  for (auto& r : *records)
    if (services.empty() || std::count(services.begin(), services.end(), r.service))
      out.push_back(std::move(r));
  // Created in dependency order, so started in creation order and stopped in reverse.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.name < b.name;
  });
  return out;
}

// Stops (and with REMOVE, removes) RECORDS in reverse creation order, each with its own stop
// signal and grace period unless TIMEOUT overrides the grace.
Result<void> Controller::stop_all(std::vector<state::ContainerRecord>& records,
                                  std::optional<std::chrono::seconds> timeout, bool remove,
                                  const Progress& progress) {
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    auto t0 = Clock::now();
    auto rt = runtime_from_json(it->runtime_json);
    if (!rt) return fail(rt.error());
    milliseconds grace = timeout ? milliseconds(*timeout) : rt->stop_grace;
    auto r = remove ? remove_container(*it, grace, rt->stop_signal)
                    : stop_container(*it, grace, rt->stop_signal);
    if (!r) return r;
    progress(it->name, remove ? "Removed" : "Stopped", since(t0));
  }
  return {};
}

Result<void> Controller::down(const std::string& project, std::optional<std::chrono::seconds> timeout,
                              const Progress& progress) {
  auto lock = RootLock::take(paths_.root);
  if (!lock) return fail(lock.error());
  auto records = containers_of(project, {});
  if (!records) return fail(records.error());
  if (auto r = stop_all(*records, timeout, true, progress); !r) return r;
  return store_->remove_project(project);
}

Result<void> Controller::stop(const std::string& project, const std::vector<std::string>& services,
                              std::optional<std::chrono::seconds> timeout, const Progress& progress) {
  auto lock = RootLock::take(paths_.root);
  if (!lock) return fail(lock.error());
  auto records = containers_of(project, services);
  if (!records) return fail(records.error());
  return stop_all(*records, timeout, false, progress);
}

Result<void> Controller::start(const std::string& project, const std::vector<std::string>& services,
                               const Progress& progress) {
  auto lock = RootLock::take(paths_.root);
  if (!lock) return fail(lock.error());
  auto records = containers_of(project, services);
  if (!records) return fail(records.error());
  for (auto& rec : *records) {
    auto t0 = Clock::now();
    if (auto r = refresh(rec); !r) return r;
    if (rec.state == "running") continue;
    if (auto r = start_existing(rec); !r) return r;
    progress(rec.name, "Started", since(t0));
  }
  return {};
}

Result<std::vector<ContainerStatus>> Controller::ps(const std::string& project, bool all) {
  auto records = project.empty() ? store_->list_all_containers() : store_->list_containers(project);
  if (!records) return fail(records.error());
  std::vector<ContainerStatus> out;
  for (auto& rec : *records) {
    if (auto r = refresh(rec); !r) return fail(r.error());
    if (!all && rec.state != "running") continue;
    ContainerStatus s{rec.name,       rec.project,     rec.service,    rec.number,
                      rec.image,      rec.state,       rec.pid,        rec.exit_code,
                      rec.oom_killed, rec.restarts,    rec.created_at, rec.started_at,
                      rec.finished_at, {}};
    if (auto rt = runtime_from_json(rec.runtime_json)) s.command = rt->spec.process.argv;
    out.push_back(std::move(s));
  }
  return out;
}

Result<int> Controller::exec(const std::string& project, const ExecOptions& options) {
  std::string name = planner::container_name(project, options.service, options.index);
  auto rec = store_->get_container(name);
  if (!rec) return fail(rec.error());
  if (!*rec) return fail("no container " + name + " (is service \"" + options.service + "\" up?)");
  if (auto r = refresh(**rec); !r) return fail(r.error());
  if ((*rec)->state != "running")
    return fail("container " + name + " is not running (" + (*rec)->state + ", exit code " +
                std::to_string((*rec)->exit_code) + ")");
  auto rt = runtime_from_json((*rec)->runtime_json);
  if (!rt) return fail(rt.error());
  engine::ProcessSpec p = rt->spec.process;
  p.argv = options.argv;
  for (const auto& e : options.env) p.env.push_back(e);
  if (!options.workdir.empty()) p.cwd = options.workdir;
  if (!options.user.empty())
    if (auto u = engine::resolve_user(options.user, rt->spec.layers, p); !u) return fail(u.error());
  auto code = engine_->exec(process_of(**rec), rt->spec.cgroup, p);
  if (!code) return fail(code.error().wrap("exec in " + name));
  return code;
}

Result<void> Controller::remove_image(const std::string& reference) {
  auto ref = fs::normalize_reference(reference);
  if (!ref) return fail(ref.error());
  auto records = store_->list_all_containers();
  if (!records) return fail(records.error());
  for (const auto& r : *records)
    if (fs::normalize_reference(r.image).value_or("") == *ref)
      return fail("image " + *ref + " is used by container " + r.name + " (stack down first)");
  return images_->remove(*ref);
}

}  // namespace stack::reconciler
