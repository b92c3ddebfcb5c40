// The daemon's operations: up (plan, then the plan's actions in parallel where depends_on
// allows), down, stop, start, and the continuous reconcile of registered projects. Loop thread
// only; operations on one project are serialised, different projects run side by side.
#include "reconciler/daemon.h"

#include "cluster/assignment_watch.h"
#include "cluster/scheduler_loop.h"

#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "reconciler/async.h"
#include "reconciler/builds.h"
#include "reconciler/cluster_mesh.h"
#include "reconciler/cluster_overlay.h"
#include "reconciler/desired.h"
#include "reconciler/images.h"
#include "reconciler/volumes.h"
#include "reconciler/networking.h"
#include "reconciler/project_lock.h"
#include "reconciler/restart_policy.h"
#include "model/runtime_record.h"
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

}  // namespace

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
  cancel_loads_ = true;
  if (supervisor_) supervisor_->shutdown();
  stop_cluster();
}

awaitable<Result<int>> Daemon::start() {
  auto log = log::get("reconciler");
  auto c = Controller::open(paths_);
  if (!c) co_return fail(c.error());
  controller_ = std::move(*c);
  // The data of volumes whose removal a previous daemon left half-way (set aside, not yet
  // deleted): deleted off the loop, as removal does.
  asio::post(*pool_, [paths = paths_] {
    remove_volumes_set_aside(paths);
    remove_containers_set_aside(paths.root);
  });
  images_ = std::make_unique<ImageService>(io_, controller_->images(), controller_->store());
  supervisor_ = std::make_unique<Supervisor>(*this);
  // Netlink and nftables are opened here, on the loop thread, in the daemon's namespace.
  networking_ = std::make_unique<Networking>(io_, controller_->store(), paths_);
  if (auto r = networking_->open(); !r) co_return fail(r.error());
  if (cluster_agent) {
    cluster_overlay_ = std::make_unique<ClusterOverlay>(io_, *cluster_agent, *networking_);
    networking_->set_cluster(cluster_overlay_.get());
    cluster_mesh_ =
        std::make_unique<ClusterMesh>(io_, *cluster_agent, *cluster_overlay_, *networking_);
  }
  builds_ = std::make_unique<BuildService>(io_, *controller_, *networking_, paths_.root / "builds",
                                           options_.builder);

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
    // Only the networks here: their containers run already, and what else the file asks for
    // is the first reconcile's plan.
    if (auto desired = desired_state(*stack, paths_, controller_->images())) {
      restore_secret_files(paths_, *desired);
      // A cluster project's networks are made only where used (restrict_to_slots): those
      // recorded here, not every one of its file.
      const bool cluster = is_cluster_project(p);
      for (const auto& n : desired->networks) {
        if (cluster) {
          auto known = controller_->store().get_network(n.name);
          if (!known || !*known) continue;
        }
        if (auto r = networking_->ensure(*n.config); !r)
          log->error("network {} of project={}: {}", n.name, p.name, r.error().message);
      }
    }
    stacks_[p.name] = std::move(*stack);
  }
  // The networks of `stack network create` (no project) exist again too, as first made.
  if (auto all = controller_->store().list_all_networks())
    for (const auto& n : *all) {
      if (!n.project.empty() || n.config_hash != kStandaloneNetwork) continue;
      model::NetworkConfig c;
      c.key = c.name = n.name;
      c.config_hash = kStandaloneNetwork;
      if (auto r = networking_->ensure(c); !r)
        log->error("network {}: {}", n.name, r.error().message);
    }

  // Re-adoption: a container still running is the process we started if its PID has the
  // recorded start time; it is watched again, untouched. One that ended meanwhile has its
  // exit record read and its restart policy applied.
  auto records = controller_->store().list_all_containers();
  if (!records) co_return fail(records.error());
  int adopted = 0;
  for (const auto& rec : *records) {
    if (!state::is_up(rec.state)) continue;
    if (engine::is_alive({rec.pid, rec.pid_start_time, rec.started_at})) {
      // Its endpoints (and their anti-spoofing rules), DNS names and published ports again
      // (the tables are rebuilt from memory); its ports are put back on a bridge that was made
      // again while no daemon ran.
      if (rec.runtime) networking_->adopt(*rec.runtime, rec.pid);
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

spec::LoadOptions Daemon::budgeted(spec::LoadOptions opts) const {
  // Bounded in time as well as in size: a file that takes longer than this to load (a slow
  // disk, a pathological but legal file) is an error, and shutdown stops any load at once.
  opts.deadline = std::chrono::steady_clock::now() + kLoadBudget;
  opts.cancel = &cancel_loads_;
  return opts;
}

spec::LoadOptions Daemon::load_options_of(const state::ProjectRecord& rec) {
  spec::LoadOptions opts;
  for (const auto& f : rec.files) opts.files.emplace_back(f);
  opts.project_name = rec.name;
  opts.working_dir = rec.working_dir;
  opts.services = rec.services;
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

namespace {

// Replica INDEX of SERVICE: "<project>-<service>-<index>", or the container_name it was made
// with (found by its service and number).
std::string replica_of(state::Store& store, const std::string& project,
                       const std::string& service, int index) {
  std::string name = planner::container_name(project, service, index);
  if (auto rec = store.get_container(name); rec && *rec) return name;
  if (auto all = store.list_containers(project))
    for (const auto& c : *all)
      if (c.service == service && c.number == index) return c.name;
  return name;
}

}  // namespace

Result<ExecTarget> Daemon::exec_target(const std::string& project, const std::string& service,
                                       int index, const std::string& container) {
  std::string name =
      container.empty() ? replica_of(controller_->store(), project, service, index) : container;
  auto rec = controller_->store().get_container(name);
  if (!rec) return fail(rec.error());
  // A container named by the caller is one of this project's service's, or none.
  if (!*rec || (*rec)->project != project || (*rec)->service != service)
    return fail("no container " + name + " (is service \"" + service + "\" up?)");
  if (auto r = controller_->refresh(**rec); !r) return fail(r.error());
  if ((*rec)->state != state::ContainerState::kRunning)
    return fail("container " + name + " is not running (" + state::state_name((*rec)->state) +
                ", exit code " + std::to_string((*rec)->exit_code) + ")");
  if (!(*rec)->runtime) return fail(name + ": " + (*rec)->runtime_error);
  // Its processes frozen, the command would start and hang: refused, as docker does.
  if (auto f = controller_->engine().cgroups().frozen((*rec)->runtime->spec.cgroup); f && *f)
    return fail("container " + name + " is paused, unpause it first");
  return ExecTarget{name, (*rec)->pid, (*rec)->pid_start_time, (*rec)->runtime->spec.cgroup,
                    (*rec)->runtime};
}

Result<std::string> Daemon::port(const std::string& project, const std::string& service,
                                 int index, int private_port, const std::string& protocol) {
  // Meshed in a cluster: the same number on every node, wherever the replica runs.
  if (int p = mesh_port(project, service, private_port, protocol); p != 0)
    return "0.0.0.0:" + std::to_string(p);
  std::string name = replica_of(controller_->store(), project, service, index);
  auto rec = controller_->store().get_container(name);
  if (!rec) return fail(rec.error());
  if (!*rec) return fail("no container " + name + " (is service \"" + service + "\" up?)");
  if (!(*rec)->runtime) return fail(name + ": " + (*rec)->runtime_error);
  auto p = networking_->port(*(*rec)->runtime, private_port, protocol);
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
  auto as_daemon = pull_as_daemon(project);
  auto rec = controller_->store().get_project(project);
  if (!rec || !*rec) co_return;  // gone
  // A cluster project before this node knows its slots: what runs keeps running.
  if (is_cluster_project(**rec) && !cluster_slots_.count(project)) co_return;
  // Loading is CPU work on a file anyone with write access may have made huge or hostile:
  // off the loop, so it never stalls the API, the supervisor or another project.
  auto loading = [opts = budgeted(load_options_of(**rec))] { return spec::load(opts); };
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
  // A named object, not `{}`: GCC 12 mis-destroys a temporary bound to a coroutine's reference
  // parameter across the co_await (free(): invalid pointer once PlanOptions held a string).
  const UpOptions defaults;
  auto plan = co_await apply(*stack, defaults, false, noop);
  if (!plan) {
    failed(project, plan.error(), reason);
    co_return;
  }
  failures_.erase(project);
  if (plan->empty()) {
    log->debug("reconciled project={} reason=\"{}\": nothing to do", project, reason);
    co_return;
  }
  log->info("reconciled project={} reason=\"{}\" steps={} in {} ms:\n{}", project, reason,
            plan->nodes.size(), since(t0).count(), planner::render(*plan));
  for (const auto& n : plan->nodes)
    if (!std::holds_alternative<planner::AwaitContainer>(n.step))
      events_.publish({0, "drift_repaired", project, n.service, planner::step_object(n.step),
                       {{"action", planner::step_kind(n.step)}, {"reason", reason + ": " + n.reason}}});
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
  // Drift: containers whose port left its bridge are put back where they run (a deleted
  // bridge only releases its ports, so their veths are enslaved again; one that is gone is
  // made again in the container's namespace). No container is restarted.
  // (A bridge that is gone is made again by the reconcile's plan: EnsureNetwork.)
  auto log = log::get("reconciler");
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
