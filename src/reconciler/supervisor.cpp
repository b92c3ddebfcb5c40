// Supervision: exits seen through pidfds, restart policies with backoff, drift repair of an
// init killed from outside, health checks run inside the container. Loop thread only; the
// blocking phases of a start (the engine's create and start) run on the worker pool.
#include "reconciler/supervisor.h"

#include "reconciler/cluster_overlay.h"

#include <fcntl.h>
#include <signal.h>

#include <boost/asio/thread_pool.hpp>

#include "common/files.h"
#include "common/log.h"
#include "engine/container.h"
#include "reconciler/daemon.h"
#include "reconciler/desired.h"
#include "reconciler/health.h"
#include "reconciler/hooks.h"
#include "reconciler/log_shipper.h"
#include "reconciler/networking.h"
#include "reconciler/service_fields.h"
#include "model/runtime_record.h"

#include <spdlog/spdlog.h>

namespace stack::reconciler {

namespace {

using std::chrono::milliseconds;

engine::ContainerProcess process_of(const state::ContainerRecord& r) {
  return {r.pid, r.pid_start_time, r.started_at};
}

// `run -d --rm`'s removal; one that something else (a `down`) removed first is no error.
awaitable<void> remove_exited(Daemon& d, std::string project, std::string name) {
  Progress quiet = [](const std::string&, const std::string&, std::chrono::milliseconds) {};
  std::vector<std::string> services, containers{name};
  auto r = co_await d.remove_containers(project, services, true, quiet, containers);
  auto still = d.controller().store().get_container(name);
  if (!r && (!still || *still))
    log::get("reconciler")->error("remove name={} (run --rm): {}", name, r.error().message);
}

}  // namespace

Supervisor::Supervisor(Daemon& daemon)
    : daemon_(daemon), changed_(std::make_unique<Notifier>(daemon.io_.get_executor())),
      shipper_(std::make_unique<LogShipper>(daemon.io_)) {}

Supervisor::~Supervisor() = default;

void Supervisor::forget(const std::string& name) {
  streaks_.erase(name);
  shipper_->stop(name);
}

void Supervisor::shutdown() {
  shutdown_ = true;
  shipper_->stop_all();
  watches_.clear();
  changed_->notify();
}

Result<state::ContainerRecord> Supervisor::record(const std::string& name) {
  auto rec = daemon_.controller().store().get_container(name);
  if (!rec) return fail(rec.error());
  if (!*rec) return fail("container " + name + " no longer exists");
  return std::move(**rec);
}

void Supervisor::publish(const state::ContainerRecord& rec, const std::string& type,
                         std::map<std::string, std::string> attributes) {
  daemon_.events().publish({0, type, rec.project, rec.service, rec.name, std::move(attributes)});
}

awaitable<Result<void>> Supervisor::start(state::ContainerRecord& rec, bool serve) {
  auto& c = daemon_.controller();
  auto spec = c.spec_of(rec);
  if (!spec) co_return fail(spec.error());
  if (!rec.runtime) co_return fail(rec.name + ": " + rec.runtime_error);
  const RuntimeRecord* rt = rec.runtime.get();
  auto& net = daemon_.networking();
  spec->resolv_conf = net.resolv_conf(*rt);
  // The container whose namespaces this one joins: the first replica of a service
  // (network_mode, pid, ipc service:NAME) or a container by name (network_mode, pid, ipc
  // container:NAME, any project of this daemon).
  bool join_net = rt->network_mode == "service" || rt->network_mode == "container";
  std::string target, what;
  if (!rt->join_container.empty()) {
    target = rt->join_container;
    what = std::string(join_net ? "network_mode" : rt->join_pid ? "pid" : "ipc") + " container:" +
           target;
  } else if (join_net || rt->join_pid || rt->join_ipc) {
    target = planner::container_name(rec.project, rt->network_service, 1);
    // With a container_name, the service's one replica has that name.
    if (auto mine = c.store().list_containers(rec.project))
      for (const auto& x : *mine)
        if (x.service == rt->network_service && x.number == 1) target = x.name;
    what = std::string(join_net ? "network_mode" : rt->join_pid ? "pid" : "ipc") + " service:" +
           rt->network_service;
  }
  if (!target.empty()) {
    auto t = c.store().get_container(target);
    if (!t) co_return fail(t.error());
    if (!*t || (*t)->state != state::ContainerState::kRunning || !engine::is_alive(process_of(**t)))
      co_return fail("start " + rec.name + ": " + what + ": " + target +
                     (*t ? " is not running" : " does not exist on this host"));
    std::string ns = "/proc/" + std::to_string((*t)->pid) + "/ns/";
    if (join_net) spec->join_netns = ns + "net";
    if (rt->join_pid) spec->join_pidns = ns + "pid";
    if (rt->join_ipc) spec->join_ipcns = ns + "ipc";
    rec.joined_started_at = (*t)->started_at;  // which run of NAME it joined: the planner checks
    if (join_net)
      if (auto text = read_file(c.container_dir(target) / "resolv.conf")) spec->resolv_conf = *text;
  }
  if (auto r = note_cgroup_parents(c.paths().root, c.engine().cgroups(), spec->cgroup); !r)
    co_return fail(r.error().wrap("start " + rec.name));
  // Before the first line is written: the driver gets every line of this run (an unreachable
  // destination fails the start where docker's driver does: syslog, journald, tcp gelf,
  // fluentd without fluentd-async).
  if (auto r = shipper_->follow(rec.name, c.container_dir(rec.name), *rt, rec.created_at, true);
      !r)
    co_return fail(r.error().wrap("start " + rec.name));
  if (auto r = co_await shipper_->connected(rec.name); !r) {
    shipper_->stop(rec.name);
    co_return fail(r.error().wrap("start " + rec.name));
  }
  if (auto* cluster = daemon_.cluster_overlay()) {  // its cluster overlay addresses first
    auto reserved = co_await cluster->reserve(*rt);
    if (!reserved) {
      net.gone(rec.name);
      co_return fail(reserved.error().wrap("start " + rec.name));
    }
  }
  auto proc = co_await create_and_start(*rt, std::move(*spec));
  if (!proc) {
    net.gone(rec.name);  // addresses of a failed attach are released
    co_return fail(proc.error().wrap("start " + rec.name));
  }
  net.started(*rt, false, serve);
  if (auto r = rec.transition(state::ContainerState::kRunning, "start"); !r) co_return fail(r.error());
  rec.pid = proc->pid;
  rec.pid_start_time = proc->start_time;
  rec.started_at = proc->started_at;
  rec.finished_at = 0;
  rec.exit_code = 0;
  rec.oom_killed = false;
  rec.user_stopped = false;
  rec.health = rt && rt->health.enabled() ? "starting" : "";
  if (auto r = c.store().put_container(rec); !r) co_return fail(r.error());
  log::get("reconciler")->info("started container name={} pid={}", rec.name, rec.pid);
  publish(rec, "start", {{"pid", std::to_string(rec.pid)}});
  watch(rec);
  co_return Result<void>{};
}

// init.c's sequence: the engine creates the container on the pool (it blocks on the init's
// handshake), the networks are attached here on the loop, whose state they are, and the
// engine starts it on the pool; no pool thread ever waits for the loop. A failure after the
// create abandons the container (killed, its cgroup removed); the caller releases what the
// attach allocated. Without networks to attach, both phases go in one trip to the pool.
awaitable<Result<engine::ContainerProcess>> Supervisor::create_and_start(
    const RuntimeRecord& rt, engine::ContainerSpec spec) {
  auto& engine = daemon_.controller().engine();
  auto& pool = *daemon_.pool_;
  auto& net = daemon_.networking();
  if (!net.attaches(rt)) {
    auto whole = [&engine, &spec]() -> Result<engine::ContainerProcess> {
      auto created = engine.create(spec);
      if (!created) return fail(created.error());
      return engine.start(std::move(*created));
    };
    auto proc = co_await on_pool(pool, std::move(whole));
    co_return proc;
  }
  uint64_t ticket = next_ticket_++;
  auto create = [this, &engine, &spec, ticket]() -> Result<void> {
    auto created = engine.create(spec);
    if (!created) return fail(created.error());
    std::lock_guard lock(created_mutex_);
    created_.emplace(ticket, std::move(*created));
    return {};
  };
  auto made = co_await on_pool(pool, std::move(create));
  if (!made) co_return fail(made.error());
  std::optional<engine::Created> created;
  {
    std::lock_guard lock(created_mutex_);
    if (auto node = created_.extract(ticket); !node.empty())
      created.emplace(std::move(node.mapped()));
  }
  if (!created) co_return fail("created container lost");
  if (auto r = net.attach(rt, created->pid(), created->netns_fd()); !r) {
    auto drop = [&engine, c = std::move(*created)]() mutable -> Result<void> {
      engine.abandon(std::move(c));
      return {};
    };
    (void)co_await on_pool(pool, std::move(drop));
    co_return fail(r.error().wrap("attach networks"));
  }
  auto go = [&engine, c = std::move(*created)]() mutable { return engine.start(std::move(c)); };
  auto proc = co_await on_pool(pool, std::move(go));
  co_return proc;
}

void Supervisor::watch(const state::ContainerRecord& rec) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, rec.pid, 0));
  if (fd < 0 || engine::process_start_time(rec.pid) != rec.pid_start_time) {
    if (fd >= 0) ::close(fd);
    adopt_exited(rec);  // gone before we could watch it
    return;
  }
  // An adopted container (a daemon restart): its lines from now on.
  if (rec.runtime && !shipper_->following(rec.name))
    if (auto r = shipper_->follow(rec.name, daemon_.controller().container_dir(rec.name),
                                  *rec.runtime, rec.created_at);
        !r)
      log::get("reconciler")->warn("log driver name={}: {}", rec.name, r.error().message);
  uint64_t gen = next_generation_++;
  auto& w = watches_[rec.name];
  w = Watch{gen, false, streaks_[rec.name], std::chrono::steady_clock::now()};
  asio::co_spawn(daemon_.io_, watch_loop(gen, fd), asio::detached);
  if (rec.runtime && rec.runtime->health.enabled())
    asio::co_spawn(daemon_.io_, health_loop(rec.name, gen), asio::detached);
  changed_->notify();
}

void Supervisor::adopt_exited(const state::ContainerRecord& rec) {
  uint64_t gen = next_generation_++;
  watches_[rec.name] = Watch{gen, false, streaks_[rec.name], std::chrono::steady_clock::now()};
  asio::co_spawn(daemon_.io_, after_exit(rec.name, gen, false), asio::detached);
}

std::optional<std::string> Supervisor::name_of(uint64_t generation) const {
  for (const auto& [name, w] : watches_)
    if (w.generation == generation) return name;
  return std::nullopt;
}

void Supervisor::rename(const std::string& from, const std::string& to) {
  shipper_->rename(from, to);
  if (auto node = watches_.extract(from); !node.empty()) {
    node.key() = to;
    watches_.insert(std::move(node));
  }
  if (auto node = streaks_.extract(from); !node.empty()) {
    node.key() = to;
    streaks_.insert(std::move(node));
  }
}

awaitable<void> Supervisor::watch_loop(uint64_t generation, int pidfd) {
  co_await wait_pidfd(pidfd);
  ::close(pidfd);
  // Looked up by generation: the container may have been renamed meanwhile.
  auto current = name_of(generation);
  if (shutdown_ || !current) co_return;
  co_await after_exit(*current, generation, watches_[*current].stopping);
}

awaitable<void> Supervisor::after_exit(std::string name, uint64_t generation, bool stopping) {
  auto log = log::get("reconciler");
  auto& c = daemon_.controller();
  auto rec = record(name);
  if (!rec) {
    watches_.erase(name);
    changed_->notify();
    co_return;
  }
  auto started = watches_[name].started;
  // No exit record means the init itself was killed: drift, not the service's decision.
  bool recorded = ::access((c.container_dir(name) / "exit").c_str(), F_OK) == 0;
  if (auto r = c.refresh(*rec); !r) log->error("record exit name={}: {}", name, r.error().message);
  daemon_.networking().gone(name);  // its DNS names, address and ports go at once
  watches_.erase(name);
  publish(*rec, "die", {{"exit_code", std::to_string(rec->exit_code)}});
  if (rec->oom_killed) publish(*rec, "oom");
  log->info("container exited name={} code={} oom={}", name, rec->exit_code, rec->oom_killed);
  changed_->notify();
  // `run -d --rm`: removed once it has exited, whatever ended it (as docker's AutoRemove), by
  // `rm`'s own removal. Spawned: that takes the project's lock, which whoever stopped it (a
  // `stop`, a `down`) may hold while it waits for this exit.
  if (rec->runtime && rec->runtime->auto_remove && !shutdown_) {
    asio::co_spawn(daemon_.io_, remove_exited(daemon_, rec->project, name), asio::detached);
    co_return;
  }
  if (shutdown_ || stopping || rec->user_stopped) co_return;

  if (!rec->runtime) co_return;
  const RuntimeRecord* rt = rec->runtime.get();
  milliseconds delay{0};
  std::string reason;
  if (!recorded) {
    reason = "drift";
    publish(*rec, "drift_repaired", {{"reason", "container init killed from outside"}});
    log->info("drift: container init killed from outside, starting it again name={}", name);
  } else {
    auto policy = RestartPolicy::parse(rt->restart).value_or(RestartPolicy{});
    if (rt->restart_delay.count() > 0) policy.delay = rt->restart_delay;
    if (rt->restart_window.count() > 0) policy.window = rt->restart_window;
    ExitFacts facts{rec->exit_code, false,
                    std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() -
                                                             started),
                    rec->restarts};
    auto d = restart_delay(policy, facts, streaks_[name]);
    if (!d) co_return;
    delay = *d;
    reason = "restart policy " + policy.str();
  }
  if (auto r = rec->transition(state::ContainerState::kRestarting, "restart"); !r) {
    log->error("{}", r.error().message);
    co_return;
  }
  (void)c.store().put_container(*rec);
  watches_[name] = Watch{generation, false, streaks_[name], std::chrono::steady_clock::now()};
  co_await sleep_for(delay);
  // Stopped, removed or taken over by someone else while we waited.
  auto it = watches_.find(name);
  if (shutdown_ || it == watches_.end() || it->second.generation != generation || it->second.stopping)
    co_return;
  watches_.erase(it);
  auto fresh = record(name);
  if (!fresh || fresh->user_stopped) co_return;
  fresh->restarts++;
  if (auto r = co_await start(*fresh); !r) {
    log->error("restart name={}: {}", name, r.error().message);
    fresh->state = state::ContainerState::kExited;  // from restarting: its restart failed
    fresh->exit_code = 127;
    (void)c.store().put_container(*fresh);
    adopt_exited(*fresh);  // the policy decides again, with a longer backoff
    co_return;
  }
  publish(*fresh, "restart", {{"reason", reason}, {"delay_ms", std::to_string(delay.count())}});
  co_await restart_dependents(*fresh);
}

awaitable<Result<void>> Supervisor::stop(const std::string& name, int signal, milliseconds grace) {
  auto rec = record(name);
  if (!rec) co_return fail(rec.error());
  auto it = watches_.find(name);
  if (it == watches_.end()) {
    // Not supervised: not running, or waiting out a restart backoff.
    auto r = daemon_.controller().refresh(*rec);
    if (!r) co_return fail(r.error());
    if (rec->state == state::ContainerState::kRestarting) {
      rec->state = state::ContainerState::kExited;
      (void)daemon_.controller().store().put_container(*rec);
    }
    co_return Result<void>{};
  }
  it->second.stopping = true;
  uint64_t gen = it->second.generation;
  auto gone = [&] {
    auto w = watches_.find(name);
    return w == watches_.end() || w->second.generation != gen;
  };
  auto& engine = daemon_.controller().engine();
  auto proc = process_of(*rec);
  if (rec->state == state::ContainerState::kRestarting && rec->pid == 0) {  // in its backoff
    watches_.erase(name);
    rec->state = state::ContainerState::kExited;
    (void)daemon_.controller().store().put_container(*rec);
    co_return Result<void>{};
  }
  if (rec->runtime && !rec->runtime->pre_stop.empty() && rec->pid != 0) {
    // pre_stop before the signal, each within the grace period; a failing one is in the log
    // and the stop goes on (a stop must not be refused by the container it stops).
    auto rt = rec->runtime;
    auto dir = daemon_.controller().container_dir(name);
    auto hooks = [&engine, proc, rt, dir, grace, name]() -> Result<void> {
      auto budget = std::max(grace, milliseconds(1000));
      for (size_t i = 0; i < rt->pre_stop.size(); i++)
        if (auto r = run_hook(engine, proc, rt->spec.cgroup, rt->pre_stop[i], dir,
                              "pre_stop hook " + std::to_string(i + 1), budget);
            !r)
          log::get("reconciler")->error("{}: {}", name, r.error().message);
      return {};
    };
    (void)co_await on_pool(*daemon_.pool_, std::move(hooks));
  }
  auto deadline = std::chrono::steady_clock::now() + grace;
  if (grace.count() > 0 && engine.signal(proc, signal)) {
    while (!gone() && std::chrono::steady_clock::now() < deadline)
      co_await changed_->wait_for(std::chrono::duration_cast<milliseconds>(
          deadline - std::chrono::steady_clock::now()));
  }
  if (!gone()) {
    // Killing PID 1 of the namespace takes every process in it along.
    (void)engine.signal(proc, SIGKILL);
    auto kill_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!gone() && std::chrono::steady_clock::now() < kill_deadline)
      co_await changed_->wait_for(milliseconds(500));
    if (!gone()) co_return fail("stop " + name + ": still running 10 s after SIGKILL");
  }
  co_return Result<void>{};
}

awaitable<Result<void>> Supervisor::restart(const std::string& name, std::string reason) {
  auto rec = record(name);
  if (!rec) co_return fail(rec.error());
  RuntimeRecord defaults;  // an unreadable record is stopped with the defaults
  const RuntimeRecord& rt = rec->runtime ? *rec->runtime : defaults;
  if (auto r = co_await stop(name, rt.stop_signal, rt.stop_grace); !r) co_return r;
  auto fresh = record(name);
  if (!fresh) co_return fail(fresh.error());
  fresh->restarts++;
  if (auto r = co_await start(*fresh); !r) co_return r;
  publish(*fresh, "restart", {{"reason", reason}});
  co_await restart_dependents(*fresh);
  co_return Result<void>{};
}

awaitable<void> Supervisor::restart_dependents(state::ContainerRecord rec) {
  // depends_on with `restart: true`: dependents follow a dependency that was restarted.
  auto stack = daemon_.stacks_.find(rec.project);
  if (stack == daemon_.stacks_.end()) co_return;
  for (const auto& svc : stack->second.services) {
    bool follows = false;
    for (const auto& d : dependencies_of(svc))
      if (d.service == rec.service && d.restart) follows = true;
    if (!follows) continue;
    auto records = daemon_.controller().store().list_containers(rec.project);
    if (!records) co_return;
    for (const auto& dep : *records)
      if (dep.service == svc.name && dep.state == state::ContainerState::kRunning && !dep.user_stopped)
        if (auto r = co_await restart(dep.name, "dependency " + rec.name + " restarted"); !r)
          log::get("reconciler")->error("restart dependent name={}: {}", dep.name, r.error().message);
  }
}

awaitable<bool> Supervisor::probe(const state::ContainerRecord& rec,
                                  const std::vector<std::string>& argv, milliseconds timeout) {
  if (!rec.runtime) co_return false;
  const RuntimeRecord* rt = rec.runtime.get();
  engine::ProcessSpec p = rt->spec.process;
  p.argv = argv;
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  auto helper = daemon_.controller().engine().spawn(process_of(rec), rt->spec.cgroup, p,
                                                    {devnull.get(), devnull.get(), devnull.get()});
  if (!helper) co_return false;
  auto status = co_await wait_pidfd_for(helper->pidfd.get(), timeout);
  if (!status) {  // timed out: a probe that hangs is a failed probe
    ::syscall(SYS_pidfd_send_signal, helper->pidfd.get(), SIGKILL, nullptr, 0);
    co_await wait_pidfd(helper->pidfd.get());
    co_return false;
  }
  co_return *status == 0;
}

awaitable<void> Supervisor::health_loop(std::string name, uint64_t generation) {
  auto rec = record(name);
  if (!rec) co_return;
  if (!rec->runtime) co_return;
  auto rt = rec->runtime;  // shared: the record itself is read again below
  HealthState health(rt->health);
  auto t0 = std::chrono::steady_clock::now();
  auto alive = [&] {  // and NAME follows a rename
    auto current = name_of(generation);
    if (shutdown_ || !current) return false;
    name = *current;
    return !watches_[name].stopping;
  };
  for (;;) {
    auto since = [&] {
      return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
    };
    co_await sleep_for(health.next_delay(since()));
    if (!alive()) co_return;
    auto current = record(name);
    if (!current) co_return;
    // A paused container cannot answer: no probe until `unpause`, rather than a probe that
    // times out and makes it unhealthy (and restarted).
    if (auto f = daemon_.controller().engine().cgroups().frozen(rt->spec.cgroup); f && *f) continue;
    bool ok = co_await probe(*current, rt->health.argv, rt->health.timeout);
    if (!alive()) co_return;
    Health before = health.status();
    Health now = health.record(ok, since());
    if (now == before) continue;
    current = record(name);
    if (!current) co_return;
    current->health = health_name(now);
    (void)daemon_.controller().store().put_container(*current);
    publish(*current, "health_status", {{"health", current->health}});
    // In a cluster, the endpoint records carry it: the routing mesh reaches healthy replicas.
    if (auto* overlay = daemon_.cluster_overlay()) overlay->health(name, current->health);
    log::get("reconciler")->info("health name={} status={}", name, current->health);
    changed_->notify();
    if (now != Health::Unhealthy || !rt->restart_on_unhealthy) continue;
    // Beyond compose (moby#28400): an unhealthy container whose restart policy is not "no" is
    // restarted, as Swarm does; `x-stack: {restart_on_unhealthy: false}` opts out.
    auto policy = RestartPolicy::parse(rt->restart).value_or(RestartPolicy{});
    if (policy.kind == RestartPolicy::Kind::No) continue;
    if (auto r = co_await restart(name, "unhealthy"); !r)
      log::get("reconciler")->error("restart unhealthy name={}: {}", name, r.error().message);
    co_return;  // the new run has its own health loop
  }
}

}  // namespace stack::reconciler
