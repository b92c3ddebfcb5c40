// The daemon's operations: up (plan, then the plan's actions in parallel where depends_on
// allows), down, stop, start, and the continuous reconcile of registered projects. Loop thread
// only; operations on one project are serialised, different projects run side by side.
#include "reconciler/daemon.h"

#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "reconciler/async.h"
#include "reconciler/dependencies.h"
#include "reconciler/images.h"
#include "reconciler/networking.h"
#include "reconciler/restart_policy.h"
#include "reconciler/runtime_record.h"
#include "reconciler/supervisor.h"
#include "state/store.h"

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace stack::reconciler {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using Task = std::function<awaitable<Result<void>>()>;

struct Join {
  Notifier done;
  size_t left = 0;
  Result<void> result;
};

// One task of join_all. Coroutines here take what they use as parameters (their frames own
// them), never as captures of a coroutine lambda, whose lifetime g++ 12 gets wrong.
awaitable<void> run_joined(Task* task, Join* join) {
  auto r = co_await (*task)();
  if (!r && join->result) join->result = r;
  join->left--;
  join->done.notify();
}

// Runs every task concurrently on the loop and waits for all; the first error wins.
awaitable<Result<void>> join_all(std::vector<Task> tasks) {
  auto ex = co_await asio::this_coro::executor;
  Join join{Notifier(ex), tasks.size(), {}};
  for (auto& task : tasks) asio::co_spawn(ex, run_joined(&task, &join), asio::detached);
  while (join.left > 0) co_await join.done.wait();
  co_return join.result;
}

}  // namespace

// Serialises operations on one project: taken at the start of each, released at its end.
class ProjectLock {
 public:
  static awaitable<ProjectLock> take(std::set<std::string>& busy, Notifier& changed,
                                     std::string project) {
    while (busy.count(project)) co_await changed.wait();
    busy.insert(project);
    co_return ProjectLock(busy, changed, std::move(project));
  }
  ProjectLock(ProjectLock&& o) noexcept
      : busy_(o.busy_), changed_(o.changed_), project_(std::move(o.project_)) {
    o.project_.clear();
  }
  ~ProjectLock() {
    if (project_.empty()) return;
    busy_.erase(project_);
    changed_.notify();
  }

 private:
  ProjectLock(std::set<std::string>& busy, Notifier& changed, std::string project)
      : busy_(busy), changed_(changed), project_(std::move(project)) {}
  std::set<std::string>& busy_;
  Notifier& changed_;
  std::string project_;
};

Daemon::Daemon(asio::io_context& io, Paths paths, DaemonOptions options)
    : io_(io),
      paths_(std::move(paths)),
      options_(std::move(options)),
      pool_(std::make_unique<asio::thread_pool>(2)),
      busy_changed_(std::make_unique<Notifier>(io.get_executor())) {}

Daemon::~Daemon() {
  shutdown();
  pool_->join();
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

Notifier& Daemon::changed() { return supervisor_->changed(); }

void Daemon::shutdown() {
  stopping_ = true;
  if (supervisor_) supervisor_->shutdown();
}

awaitable<Result<int>> Daemon::start() {
  auto log = log::get("reconciler");
  auto c = Controller::open(paths_);
  if (!c) co_return fail(c.error());
  controller_ = std::move(*c);
  images_ = std::make_unique<ImageService>(io_, controller_->images(), controller_->store());
  supervisor_ = std::make_unique<Supervisor>(*this);
  // Netlink and nftables are opened here, on the loop thread, in the daemon's namespace.
  networking_ = std::make_unique<Networking>(io_, controller_->store(), paths_);
  if (auto r = networking_->open(); !r) co_return fail(r.error());

  // Every network of a registered project exists again before containers are adopted: the
  // DNS servers and the firewall's tables are rebuilt from memory and the state store. The
  // firewall is held until every running container's ports are known again, so the previous
  // daemon's ruleset stays in force until the complete one replaces it.
  networking_->hold_firewall();
  auto projects = controller_->store().list_projects();
  if (!projects) co_return fail(projects.error());
  for (const auto& p : *projects) {
    auto stack = load_registered(p.name);
    if (!stack) continue;
    if (auto r = networking_->ensure(*stack); !r)
      log->error("networks of project={}: {}", p.name, r.error().message);
    stacks_[p.name] = std::move(*stack);
  }

  // Re-adoption: a container still running is the process we started if its PID has the
  // recorded start time; it is watched again, untouched. One that ended meanwhile has its
  // exit record read and its restart policy applied.
  auto records = controller_->store().list_all_containers();
  if (!records) co_return fail(records.error());
  int adopted = 0;
  for (const auto& rec : *records) {
    if (rec.state != "running" && rec.state != "restarting") continue;
    if (engine::is_alive({rec.pid, rec.pid_start_time, rec.started_at})) {
      // Its endpoints (and their anti-spoofing rules), DNS names and published ports again
      // (the tables are rebuilt from memory); its ports are put back on a bridge that was made
      // again while no daemon ran.
      if (auto rt = runtime_from_json(rec.runtime_json)) networking_->adopt(*rt, rec.pid);
      supervisor_->watch(rec);
      events_.publish({0, "adopt", rec.project, rec.service, rec.name,
                       {{"pid", std::to_string(rec.pid)}}});
      log->info("adopted container name={} pid={}", rec.name, rec.pid);
      adopted++;
    } else {
      supervisor_->adopt_exited(rec);
    }
  }
  if (auto r = networking_->release_firewall(); !r)
    log->error("firewall after adoption: {}", r.error().message);
  for (const auto& p : *projects) register_watch(p.name, p.files);
  watch_files();
  if (!options_.stacks_dir.empty()) scan_stacks_dir();
  for (const auto& p : *projects)
    asio::co_spawn(io_, guarded_reconcile(p.name, "daemon start"), asio::detached);
  asio::co_spawn(io_, resync_loop(), asio::detached);
  co_return adopted;
}

spec::LoadOptions Daemon::load_options_of(const state::ProjectRecord& rec) {
  spec::LoadOptions opts;
  for (const auto& f : rec.files) opts.files.emplace_back(f);
  opts.project_name = rec.name;
  opts.working_dir = rec.working_dir;
  try {
    auto env = nlohmann::json::parse(rec.environment_json);
    if (env.is_object())
      for (const auto& [k, v] : env.items())
        if (v.is_string()) opts.environment[k] = v.get<std::string>();
  } catch (const nlohmann::json::exception&) {
    // An unreadable environment loads as empty: interpolation then warns per variable.
  }
  return opts;
}

Result<spec::Stack> Daemon::load_registered(const std::string& project) {
  auto rec = controller_->store().get_project(project);
  if (!rec) return fail(rec.error());
  if (!*rec) return fail("no project " + project);
  return spec::load(load_options_of(**rec));
}

awaitable<Result<planner::Plan>> Daemon::up(UpRequest request, Progress progress) {
  auto loading = [opts = request.load] { return spec::load(opts); };  // off the loop, as reconcile
  auto stack = co_await on_pool(*pool_, std::move(loading));
  if (!stack) co_return fail(stack.error());
  // Everything the file asks for must be something stack can run: refused before any change.
  if (auto r = spec::check_supported(*stack); !r) co_return fail(r.error());
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, stack->name);
  std::map<std::string, fs::Image> images;  // every image must exist before anything changes
  if (auto d = controller_->desired(*stack, images); !d) co_return fail(d.error());
  if (!request.options.dry_run) {
    // Registered before anything is made: a daemon killed half-way through finds the project,
    // with the environment its files were interpolated with, and finishes the job.
    state::ProjectRecord project;
    project.name = stack->name;
    for (const auto& f : stack->files) project.files.push_back(f.string());
    project.working_dir = stack->project_dir.string();
    project.environment_json = nlohmann::json(request.load.environment).dump();
    project.created_at = unix_ms();
    if (auto r = controller_->store().put_project(project); !r) co_return fail(r.error());
    register_watch(project.name, project.files);
    stacks_[stack->name] = *stack;
  }
  auto plan = co_await apply(*stack, request.options, true, progress);
  if (!plan && !request.options.dry_run) failed(stack->name, plan.error(), "up");
  if (plan && !request.options.dry_run) failures_.erase(stack->name);
  if (!plan || request.options.dry_run) co_return plan;
  if (request.wait)
    if (auto r = co_await wait_ready(*stack, request.wait_timeout); !r) co_return fail(r.error());
  co_return plan;
}

awaitable<Result<planner::Plan>> Daemon::apply(const spec::Stack& stack, const UpOptions& options,
                                               bool explicit_up, Progress progress) {
  auto& c = *controller_;
  std::map<std::string, fs::Image> images;
  auto desired = c.desired(stack, images);
  if (!desired) co_return fail(desired.error());
  auto records = c.observe(stack.name);
  if (!records) co_return fail(records.error());
  std::vector<planner::ObservedContainer> observed;
  for (const auto& rec : *records) {
    auto rt = runtime_from_json(rec.runtime_json);
    planner::ObservedContainer o{rec.name, rec.service, rec.number, rec.config_hash,
                                 rt ? rt->fields : std::map<std::string, std::string>{},
                                 rec.image_id, rec.state == "running" || rec.state == "restarting",
                                 rec.user_stopped};
    // Done when it exited by itself (its init wrote the record: not drift) and its policy
    // keeps it down. Containers in a restart backoff count as running above.
    if (rt && rec.state == "exited" && !rec.user_stopped &&
        ::access((c.container_dir(rec.name) / "exit").c_str(), F_OK) == 0) {
      auto policy = RestartPolicy::parse(rt->restart).value_or(RestartPolicy{});
      o.completed = !policy.restarts_after(rec.exit_code, rec.restarts);
    }
    observed.push_back(std::move(o));
  }
  planner::PlanOptions popts = options.plan;
  popts.continuous = !explicit_up;
  auto plan = planner::plan(stack.name, *desired, observed, popts);
  if (!plan) co_return fail(plan.error());
  if (options.dry_run || plan->empty()) co_return plan;

  // The project must exist before its containers are recorded.
  if (auto p = c.store().get_project(stack.name); p && !*p) {
    state::ProjectRecord rec;
    rec.name = stack.name;
    rec.working_dir = stack.project_dir.string();
    for (const auto& f : stack.files) rec.files.push_back(f.string());
    rec.environment_json = "{}";
    rec.created_at = unix_ms();
    if (auto r = c.store().put_project(rec); !r) co_return fail(r.error());
  }

  // The ensure_network step: every network of the project exists (made, or repaired if its
  // bridge went missing) before any service starts. Idempotent: a no-op when all are there.
  if (auto r = networking_->ensure(stack); !r) co_return fail(r.error());

  // One task per service, each waiting for what it depends on; services without a path
  // between them run in parallel. Containers of services gone from the file go last.
  std::map<std::string, std::vector<planner::Action>> by_service;
  std::vector<planner::Action> orphans;
  for (const auto& a : plan->actions)
    (stack.find(a.service) ? by_service[a.service] : orphans).push_back(a);
  auto& done = done_[stack.name];
  done.clear();
  std::vector<Task> tasks;
  for (const auto& svc : stack.services)
    tasks.push_back([this, &stack, &svc, &by_service, &progress, &done] {
      return run_and_mark(stack, svc.name, by_service[svc.name], progress, done);
    });
  auto result = co_await join_all(std::move(tasks));
  if (!orphans.empty()) {
    auto r = co_await run_service(stack, "", orphans, progress);
    if (result && !r) result = r;
  }
  if (!result) co_return fail(result.error());
  co_return plan;
}

awaitable<Result<void>> Daemon::run_and_mark(const spec::Stack& stack, const std::string& service,
                                             const std::vector<planner::Action>& actions,
                                             const Progress& progress, std::set<std::string>& done) {
  auto r = co_await run_service(stack, service, actions, progress);
  done.insert(service);  // dependents may go on (or fail, seeing this service's state)
  supervisor_->changed().notify();
  co_return r;
}

awaitable<Result<void>> Daemon::wait_dependencies(const spec::Stack& stack,
                                                  const spec::Service& service) {
  auto log = log::get("reconciler");
  for (const auto& dep : dependencies_of(service)) {
    for (;;) {
      if (stopping_) co_return fail("daemon is stopping");
      if (!done_[stack.name].count(dep.service)) {
        co_await supervisor_->changed().wait();
        continue;
      }
      auto records = controller_->store().list_containers(stack.name);
      if (!records) co_return fail(records.error());
      bool ready = true;
      std::string failure;
      for (const auto& r : *records) {
        if (r.service != dep.service) continue;
        using C = Dependency::Condition;
        if (dep.condition == C::Healthy) {
          if (r.state != "running" && r.state != "restarting")
            failure = r.name + " is " + r.state + " (exit code " + std::to_string(r.exit_code) + ")";
          else if (r.health == "unhealthy") failure = r.name + " is unhealthy";
          else if (r.health != "healthy") ready = false;
        } else if (dep.condition == C::CompletedSuccessfully) {
          if (r.state == "exited" && r.exit_code != 0)
            failure = r.name + " exited with code " + std::to_string(r.exit_code);
          else if (r.state != "exited") ready = false;
        }
      }
      if (!failure.empty()) {
        if (!dep.required) {
          log->warn("optional dependency failed service={} dependency={}: {}", service.name,
                    dep.service, failure);
          break;
        }
        co_return fail("dependency failed to start: " + failure);
      }
      if (ready) break;
      co_await supervisor_->changed().wait();
    }
  }
  co_return Result<void>{};
}

awaitable<Result<void>> Daemon::run_service(const spec::Stack& stack, const std::string& service,
                                            const std::vector<planner::Action>& actions,
                                            const Progress& progress) {
  if (actions.empty()) co_return Result<void>{};
  const spec::Service* svc = stack.find(service);
  using K = planner::Action::Kind;
  bool starts = false;
  for (const auto& a : actions) starts |= a.kind != K::Remove;
  if (svc && starts)
    if (auto r = co_await wait_dependencies(stack, *svc); !r)
      co_return fail(r.error().wrap("service " + service));
  std::map<std::string, fs::Image> images;
  if (svc) {
    auto img = controller_->images().get(svc->image);
    if (!img) co_return fail(img.error().wrap(svc->image_pos.str()));
    images.emplace(service, *img);
  }
  for (const auto& a : actions) {
    auto t0 = Clock::now();
    auto& store = controller_->store();
    if (a.kind == K::Remove || a.kind == K::Recreate) {
      auto rec = store.get_container(a.container);
      if (!rec) co_return fail(rec.error());
      if (*rec) {
        auto rt = runtime_from_json((*rec)->runtime_json);
        if (!rt) co_return fail(rt.error());
        if (auto r = co_await supervisor_->stop(a.container, rt->stop_signal, rt->stop_grace); !r)
          co_return r;
        auto fresh = store.get_container(a.container);
        if (fresh && *fresh)
          if (auto r = controller_->remove_container(**fresh); !r) co_return r;
        supervisor_->forget(a.container);  // a new container starts its backoff afresh
        errors_.erase(a.container);
        events_.publish({0, "destroy", stack.name, a.service, a.container, {{"reason", a.reason}}});
      }
      if (a.kind == K::Remove) {
        progress(a.container, "Removed", since(t0));
        continue;
      }
    }
    if (a.kind == K::Create || a.kind == K::Recreate) {
      auto rec = controller_->create_record(stack, *svc, a.number, images.at(service));
      if (!rec) co_return fail(rec.error());
      events_.publish({0, "create", stack.name, a.service, a.container, {{"reason", a.reason}}});
      // A failed start leaves nothing running and no cgroup; the record stays, "created" with
      // its error (as docker's), for `ps` to show and the next attempt to start.
      if (auto r = co_await supervisor_->start(*rec); !r) co_return container_failed(*rec, r.error());
      errors_.erase(a.container);
      progress(a.container, a.kind == K::Create ? "Started" : "Recreated", since(t0));
      continue;
    }
    if (a.kind == K::Start) {
      auto rec = store.get_container(a.container);
      if (!rec || !*rec) co_return fail("container " + a.container + " vanished");
      if (auto r = co_await supervisor_->start(**rec); !r) co_return container_failed(**rec, r.error());
      errors_.erase(a.container);
      progress(a.container, "Started", since(t0));
    }
  }
  co_return Result<void>{};
}

awaitable<Result<void>> Daemon::wait_ready(const spec::Stack& stack, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto records = controller_->store().list_containers(stack.name);
    if (!records) co_return fail(records.error());
    bool ready = true;
    for (const auto& r : *records) {
      if (r.state == "exited" && r.exit_code != 0 && !r.user_stopped)
        co_return fail(r.name + " exited with code " + std::to_string(r.exit_code) +
                       (r.oom_killed ? " (OOM-killed)" : ""));
      if (r.health == "unhealthy") co_return fail(r.name + " is unhealthy");
      if (r.state == "running" && (r.health.empty() || r.health == "healthy")) continue;
      if (r.state == "exited" || r.user_stopped) continue;  // completed
      ready = false;
    }
    if (ready) co_return Result<void>{};
    if (Clock::now() >= deadline) co_return fail("timed out waiting for the stack to be ready");
    co_await supervisor_->changed().wait_for(
        std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
  }
}

awaitable<Result<void>> Daemon::stop_records(std::vector<state::ContainerRecord> records,
                                             std::optional<std::chrono::seconds> timeout,
                                             bool remove, Progress progress) {
  // Reverse creation order: containers were created in dependency order.
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.name > b.name;
  });
  // All marked first: a container that dies while an earlier one is being stopped (Ctrl-C
  // twice kills them all) is part of this stop, not drift to repair.
  // Re-read right before writing: the listed copy may be older than the supervisor's record.
  auto& store = controller_->store();
  for (const auto& rec : records) {
    auto fresh = store.get_container(rec.name);
    if (!fresh) co_return fail(fresh.error());
    if (!*fresh) continue;
    (*fresh)->user_stopped = true;
    if (auto r = store.put_container(**fresh); !r) co_return r;
  }
  // Each container on its own: one that cannot be stopped or removed does not keep the
  // others; every failure is reported at the end, and its record stays for the next attempt.
  std::string failures;
  for (auto& rec : records) {
    auto t0 = Clock::now();
    // An unreadable runtime record still names a container to stop: the defaults then.
    RuntimeRecord defaults;
    auto rt = runtime_from_json(rec.runtime_json);
    const RuntimeRecord& how = rt ? *rt : defaults;
    milliseconds grace = timeout ? milliseconds(*timeout) : how.stop_grace;
    auto done = co_await supervisor_->stop(rec.name, how.stop_signal, grace);
    if (done && remove) {
      auto fresh = controller_->store().get_container(rec.name);
      if (fresh && *fresh) done = controller_->remove_container(**fresh);
    }
    if (!done) {
      failures += (failures.empty() ? "" : "\n") + done.error().message;
      progress(rec.name, "Error", since(t0));
      continue;
    }
    if (remove) {
      supervisor_->forget(rec.name);
      errors_.erase(rec.name);
      events_.publish({0, "destroy", rec.project, rec.service, rec.name, {}});
    } else {
      events_.publish({0, "stop", rec.project, rec.service, rec.name, {}});
    }
    progress(rec.name, remove ? "Removed" : "Stopped", since(t0));
  }
  if (!failures.empty()) co_return fail(failures);
  co_return Result<void>{};
}

awaitable<Result<void>> Daemon::down(std::string project, std::optional<std::chrono::seconds> timeout,
                                     Progress progress) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  auto records = controller_->store().list_containers(project);
  if (!records) co_return fail(records.error());
  if (auto r = co_await stop_records(std::move(*records), timeout, true, progress); !r) co_return r;
  // Its networks go with it: DNS servers stopped, bridges deleted, the firewall updated.
  if (auto r = networking_->remove_project(project); !r) co_return r;
  stacks_.erase(project);
  failures_.erase(project);
  unregister_watch(project);
  co_return controller_->store().remove_project(project);
}

awaitable<Result<void>> Daemon::stop(std::string project, std::vector<std::string> services,
                                     std::optional<std::chrono::seconds> timeout,
                                     Progress progress) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  auto records = select(project, services);
  if (!records) co_return fail(records.error());
  co_return co_await stop_records(std::move(*records), timeout, false, progress);
}

awaitable<Result<void>> Daemon::start_services(std::string project, std::vector<std::string> services,
                                               Progress progress) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  auto records = select(project, services);
  if (!records) co_return fail(records.error());
  std::sort(records->begin(), records->end(),
            [](const auto& a, const auto& b) { return a.created_at < b.created_at; });
  for (auto& rec : *records) {
    auto t0 = Clock::now();
    if (auto r = controller_->refresh(rec); !r) co_return fail(r.error());
    if (rec.state == "running" || supervisor_->watching(rec.name)) continue;
    if (auto r = co_await supervisor_->start(rec); !r) co_return r;
    progress(rec.name, "Started", since(t0));
  }
  co_return Result<void>{};
}

Result<std::vector<state::ContainerRecord>> Daemon::select(const std::string& project,
                                                           const std::vector<std::string>& services) {
  auto records = controller_->store().list_containers(project);
  if (!records) return fail(records.error());
  for (const auto& s : services)
    if (std::none_of(records->begin(), records->end(), [&](auto& r) { return r.service == s; }))
      return fail("no such service in project " + project + ": " + s);
  std::vector<state::ContainerRecord> out;
  for (auto& r : *records)
    if (services.empty() || std::count(services.begin(), services.end(), r.service))
      out.push_back(std::move(r));
  return out;
}

Result<void> Daemon::container_failed(const state::ContainerRecord& rec, const Error& error) {
  errors_[rec.name] = error.message;
  events_.publish({0, "error", rec.project, rec.service, rec.name, {{"message", error.message}}});
  return fail(error);
}

Result<std::vector<ContainerStatus>> Daemon::ps(const std::string& project, bool all) {
  auto list = controller_->ps(project, all);
  if (!list) return list;
  for (auto& c : *list)
    if (auto e = errors_.find(c.name); e != errors_.end() && c.state != "running") c.error = e->second;
  return list;
}

Result<ExecTarget> Daemon::exec_target(const std::string& project, const std::string& service,
                                       int index) {
  std::string name = planner::container_name(project, service, index);
  auto rec = controller_->store().get_container(name);
  if (!rec) return fail(rec.error());
  if (!*rec) return fail("no container " + name + " (is service \"" + service + "\" up?)");
  if (auto r = controller_->refresh(**rec); !r) return fail(r.error());
  if ((*rec)->state != "running")
    return fail("container " + name + " is not running (" + (*rec)->state + ", exit code " +
                std::to_string((*rec)->exit_code) + ")");
  auto rt = runtime_from_json((*rec)->runtime_json);
  if (!rt) return fail(rt.error());
  return ExecTarget{name, (*rec)->pid, (*rec)->pid_start_time, rt->spec.cgroup,
                    (*rec)->runtime_json};
}

Result<std::string> Daemon::port(const std::string& project, const std::string& service,
                                 int index, int private_port, const std::string& protocol) {
  std::string name = planner::container_name(project, service, index);
  auto rec = controller_->store().get_container(name);
  if (!rec) return fail(rec.error());
  if (!*rec) return fail("no container " + name + " (is service \"" + service + "\" up?)");
  auto rt = runtime_from_json((*rec)->runtime_json);
  if (!rt) return fail(rt.error());
  auto p = networking_->port(*rt, private_port, protocol);
  if (!p) return fail(p.error());
  return p->host_ip + ":" + std::to_string(p->host_port);
}

Result<std::vector<std::string>> Daemon::projects() {
  auto list = controller_->store().list_projects();
  if (!list) return fail(list.error());
  std::vector<std::string> out;
  for (const auto& p : *list) out.push_back(p.name);
  return out;
}

awaitable<void> Daemon::reconcile(std::string project, std::string reason) {
  if (stopping_) co_return;
  auto log = log::get("reconciler");
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  auto rec = controller_->store().get_project(project);
  if (!rec || !*rec) co_return;  // gone
  // Loading is CPU work on a file anyone with write access may have made huge or hostile:
  // off the loop, so it never stalls the API, the supervisor or another project.
  auto loading = [opts = load_options_of(**rec)] { return spec::load(opts); };
  auto stack = co_await on_pool(*pool_, std::move(loading));
  reconciles_++;
  if (stopping_) co_return;
  if (!stack) {
    log->warn("reconcile project={} reason=\"{}\": stack file not loadable, keeping what runs: {}",
              project, reason, stack.error().message);
    co_return;
  }
  stacks_[project] = *stack;
  auto t0 = Clock::now();
  auto noop = [](const std::string&, const std::string&, milliseconds) {};
  auto plan = co_await apply(*stack, {}, false, noop);
  if (!plan) {
    failed(project, plan.error(), reason);
    co_return;
  }
  failures_.erase(project);
  if (plan->empty()) {
    log->debug("reconciled project={} reason=\"{}\": nothing to do", project, reason);
    co_return;
  }
  log->info("reconciled project={} reason=\"{}\" actions={} in {} ms:\n{}", project, reason,
            plan->actions.size(), since(t0).count(), planner::render(*plan));
  for (const auto& a : plan->actions)
    events_.publish({0, "drift_repaired", project, a.service, a.container,
                     {{"action", planner::kind_name(a.kind)}, {"reason", reason + ": " + a.reason}}});
}

void Daemon::failed(const std::string& project, const Error& error, const std::string& reason) {
  // Each failure in a row doubles the wait before the next attempt: a project that cannot
  // converge (a missing image, a port taken) is retried, never hammered.
  auto& f = failures_[project];
  f.count++;
  milliseconds delay = kFirstRetry;
  for (int i = 1; i < f.count && delay < kMaxRetry; i++) delay *= 2;
  delay = std::min(delay, kMaxRetry);
  f.next_try = Clock::now() + delay;
  f.message = error.message;
  log::get("reconciler")
      ->error("reconcile project={} reason=\"{}\" failed (attempt {}), next attempt in {} ms: {}",
              project, reason, f.count, delay.count(), error.message);
  events_.publish({0, "error", project, "", "",
                   {{"message", error.message},
                    {"attempt", std::to_string(f.count)},
                    {"retry_in_ms", std::to_string(delay.count())}}});
  if (!f.retry_scheduled) {
    f.retry_scheduled = true;
    asio::co_spawn(io_, retry_later(project, delay), asio::detached);
  }
}

awaitable<void> Daemon::retry_later(std::string project, milliseconds delay) {
  co_await sleep_for(delay);
  if (auto it = failures_.find(project); it != failures_.end()) it->second.retry_scheduled = false;
  if (!stopping_ && failures_.count(project)) co_await guarded_reconcile(project, "retry after failure");
}

awaitable<void> Daemon::guarded_reconcile(std::string project, std::string reason) {
  // Nothing a single project does (an exception from deep inside, std::bad_alloc from a hostile
  // file) may end the loops that serve every other project.
  try {
    co_await reconcile(project, reason);
  } catch (const std::exception& e) {
    failed(project, Error{std::string("unexpected failure: ") + e.what()}, reason);
  }
}

awaitable<void> Daemon::resync_loop() {
  // A safety net under the event-driven paths (pidfds, inotify): a full re-plan now and then.
  // Each project is reconciled on its own coroutine: one that hangs (waiting for a dependency
  // that never becomes healthy) or is busy with a long `up` holds up no other.
  auto log = log::get("reconciler");
  while (!stopping_) {
    co_await sleep_for(options_.resync_interval);
    if (stopping_) co_return;
    try {
      co_await repair_networks();
      auto list = projects();
      if (!list) {
        log->error("periodic resync: {}", list.error().message);
        continue;
      }
      for (const auto& p : *list) {
        if (busy_.count(p) || resyncing_.count(p)) continue;  // converging already
        if (auto f = failures_.find(p); f != failures_.end() && Clock::now() < f->second.next_try)
          continue;  // its own backoff decides when it is tried again
        resyncing_.insert(p);
        asio::co_spawn(io_, resync_one(p), asio::detached);
      }
    } catch (const std::exception& e) {
      log->error("periodic resync: unexpected failure, continuing: {}", e.what());
    }
  }
}

awaitable<void> Daemon::resync_one(std::string project) {
  co_await guarded_reconcile(project, "periodic resync");
  resyncing_.erase(project);
}

awaitable<void> Daemon::repair_networks() {
  // Drift: a network whose bridge was deleted from outside is made again, and the containers
  // that were on it are put back where they run: a deleted bridge only releases its ports, so
  // their veths are enslaved again (one that is gone is made again in the container's
  // namespace). No container is restarted. The same catches ports a bridge made again by a
  // reconcile (or a daemon start) left behind.
  auto log = log::get("reconciler");
  for (const auto& network : networking_->missing()) {
    if (stopping_) co_return;
    log->warn("drift: network {} lost its bridge, making it again", network);
    if (auto r = networking_->repair(network); !r)
      log->error("repair network {}: {}", network, r.error().message);
  }
  for (const auto& fixed : networking_->reattach_detached()) {
    auto nets = fmt::format("{}", fmt::join(fixed.networks, ","));
    log->info("drift: re-attached container name={} networks={}", fixed.container, nets);
    auto rec = controller_->store().get_container(fixed.container);
    if (!rec || !*rec) continue;
    events_.publish({0, "drift_repaired", (*rec)->project, (*rec)->service, fixed.container,
                     {{"reason", "its port left the bridge of " + nets}, {"action", "reattach"}}});
  }
  co_return;
}

}  // namespace stack::reconciler
