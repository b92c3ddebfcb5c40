// The daemon's steps (see steps.h). Each one converges its object and is safe to run again:
// a pass interrupted half-way (a daemon killed, a step failed) is finished by the next one.
#include "reconciler/steps.h"

#include "reconciler/cluster_overlay.h"

#include <unistd.h>

#include <algorithm>

#include "common/files.h"
#include "common/log.h"
#include "reconciler/async.h"
#include "reconciler/builds.h"
#include "reconciler/cluster_ingress.h"
#include "reconciler/container_builder.h"
#include "reconciler/daemon.h"
#include "reconciler/desired.h"
#include "reconciler/hooks.h"
#include "reconciler/images.h"
#include "reconciler/networking.h"
#include "reconciler/supervisor.h"
#include "reconciler/volumes.h"
#include "state/store.h"

#include <spdlog/spdlog.h>

namespace stack::reconciler {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using S = state::ContainerState;

milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

// Failures the kernel may not repeat a moment later are retried; the rest are final.
Outcome outcome_of(const Error& e) {
  switch (e.sys_errno) {
    case EAGAIN:
    case EBUSY:
    case EINTR:
    case ENOMEM:
      return RetryAfter{milliseconds(200), e};
    default:
      return Terminal{e};
  }
}

}  // namespace

awaitable<Outcome> DaemonSteps::run(const planner::Node& node, PassId pass) {
  if (daemon_.stopping_) co_return Terminal{Error{"the daemon is stopping"}};
  if (auto* s = std::get_if<planner::EnsureNetwork>(&node.step)) co_return co_await ensure_network(*s, pass);
  if (auto* s = std::get_if<planner::RemoveNetwork>(&node.step)) co_return co_await remove_network(*s, pass);
  if (auto* s = std::get_if<planner::CreateContainer>(&node.step))
    co_return co_await create(*s, node.reason, pass);
  if (auto* s = std::get_if<planner::StartContainer>(&node.step)) co_return co_await start(*s, pass);
  if (auto* s = std::get_if<planner::AwaitContainer>(&node.step)) co_return co_await await(*s, pass);
  if (auto* s = std::get_if<planner::StopContainer>(&node.step)) co_return co_await stop(*s, pass);
  if (auto* s = std::get_if<planner::RemoveContainer>(&node.step))
    co_return co_await remove(*s, node.reason, pass);
  if (auto* s = std::get_if<planner::RenameContainer>(&node.step)) co_return co_await rename(*s, pass);
  if (auto* s = std::get_if<planner::SwitchTraffic>(&node.step))
    co_return co_await switch_traffic(*s, pass);
  if (auto* s = std::get_if<planner::EnsureVolume>(&node.step)) co_return co_await ensure_volume(*s, pass);
  if (auto* s = std::get_if<planner::RemoveVolume>(&node.step)) co_return co_await remove_volume(*s, pass);
  if (auto* s = std::get_if<planner::PullImage>(&node.step)) co_return co_await pull(*s, node.reason, pass);
  if (auto* s = std::get_if<planner::BuildImage>(&node.step))
    co_return co_await build_image(*s, node.reason, pass);
  if (auto* s = std::get_if<planner::RunProvider>(&node.step)) co_return co_await run_provider(*s, pass);
  if (auto* s = std::get_if<planner::Delay>(&node.step)) {
    co_await sleep_for(s->duration);
    co_return Done{};
  }
  co_return Terminal{Error{std::string("step not supported yet: ") + planner::step_kind(node.step)}};
}

awaitable<Outcome> DaemonSteps::ensure_network(const planner::EnsureNetwork& s, PassId pass) {
  auto t0 = Clock::now();
  auto& net = daemon_.networking();
  if (s.recreate)
    if (auto r = net.remove_network(s.name); !r) co_return outcome_of(r.error());
  if (!s.config) co_return Terminal{Error{"network " + s.name + ": no configuration"}};
  if (auto* cluster = daemon_.cluster_overlay()) {  // its subnet from the cluster's store first
    auto prepared = co_await cluster->prepare(*s.config);
    if (!prepared) co_return outcome_of(prepared.error());
  }
  if (auto r = net.ensure(*s.config); !r) co_return outcome_of(r.error());
  // A bridge made again: the containers still running on it are put back, without a restart.
  for (const auto& fixed : net.reattach_detached())
    daemon_.events_.publish({0, "drift_repaired", project_, "", fixed.container,
                             {{"action", "reattach"}, {"pass", pass.str()}}});
  log::get("reconciler")->info("network ready name={} pass={}", s.name, pass.str());
  progress_("network " + s.name, "Created", since(t0));
  co_return Done{};
}

// Networks and volumes are named with their kind ("network demo_default"): the CLI prints
// compose's "Network demo_default  Removed".
awaitable<Outcome> DaemonSteps::remove_network(const planner::RemoveNetwork& s, PassId) {
  auto t0 = Clock::now();
  // A network named in the file (name:) that a container of another project still joins is
  // kept, and becomes that project's: its down removes it (compose would leave it behind).
  auto& store = daemon_.controller().store();
  auto all = store.list_all_containers();
  if (!all) co_return outcome_of(all.error());
  for (const auto& c : *all) {
    if (c.project == project_ || !c.runtime) continue;
    bool joins = std::any_of(c.runtime->networks.begin(), c.runtime->networks.end(),
                             [&](const auto& j) { return j.network == s.name; });
    if (!joins) continue;
    if (auto r = daemon_.networking().hand_over(s.name, c.project); !r)
      co_return outcome_of(r.error());
    log::get("reconciler")
        ->info("network kept name={} used_by={} container={}", s.name, c.project, c.name);
    progress_("network " + s.name, "Kept (in use by project " + c.project + ")", since(t0));
    co_return Done{};
  }
  // The cluster's ingress network: kept while another project of the cluster has services on
  // it (there may be none of its containers on this node, yet its ports are meshed here).
  if (s.name == kIngressNetwork)
    for (const auto& p : daemon_.mesh_projects(s.name)) {
      if (p == project_) continue;
      if (auto r = daemon_.networking().hand_over(s.name, p); !r) co_return outcome_of(r.error());
      log::get("reconciler")->info("network kept name={} used_by={}", s.name, p);
      progress_("network " + s.name, "Kept (in use by project " + p + ")", since(t0));
      co_return Done{};
    }
  if (auto r = daemon_.networking().remove_network(s.name); !r) co_return outcome_of(r.error());
  progress_("network " + s.name, "Removed", since(t0));
  co_return Done{};
}

awaitable<Outcome> DaemonSteps::ensure_volume(const planner::EnsureVolume& s, PassId pass) {
  auto t0 = Clock::now();
  if (!s.config) co_return Terminal{Error{"volume " + s.name + ": no configuration"}};
  if (auto r = ensure_volume_dir(daemon_.paths(), *s.config); !r) co_return outcome_of(r.error());
  auto& store = daemon_.controller().store();
  auto known = store.get_volume(s.name);
  if (!known) co_return outcome_of(known.error());
  if (!*known) {
    int64_t now = std::chrono::duration_cast<milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    state::VolumeRecord v{s.name, s.config->project, s.config->driver_opts, s.config->labels, now};
    if (auto r = store.put_volume(v); !r) co_return outcome_of(r.error());
  }
  log::get("reconciler")->info("volume ready name={} pass={}", s.name, pass.str());
  progress_("volume " + s.name, "Created", since(t0));
  co_return Done{};
}

awaitable<Outcome> DaemonSteps::remove_volume(const planner::RemoveVolume& s, PassId) {
  auto t0 = Clock::now();
  if (auto r = co_await daemon_.remove_volume(s.name); !r) co_return Terminal{r.error()};
  progress_("volume " + s.name, "Removed", since(t0));
  co_return Done{};
}

awaitable<Outcome> DaemonSteps::create(const planner::CreateContainer& s, const std::string& reason,
                                       PassId pass) {
  auto t0 = Clock::now();
  auto& c = daemon_.controller();
  // Already recorded by an attempt of this pass that got that far.
  if (auto existing = c.store().get_container(s.name); existing && *existing) co_return Done{};
  // A service whose image this plan pulled first has its record made now, from that image.
  auto record = s.record;
  if (!record) {
    auto stack = daemon_.stacks_.find(project_);
    if (stack == daemon_.stacks_.end())
      co_return Terminal{Error{"create " + s.name + ": no runtime record"}};
    auto made = replica_record(stack->second, s.service, s.number, c.images(), daemon_.paths_);
    if (!made) co_return Terminal{made.error().wrap("create " + s.name)};
    record = std::move(*made);
  }
  // What the desired state left to the moment of creation: free host ports for `ports:`
  // entries without one, and the bind sources compose makes when they are missing.
  auto rt = std::make_shared<RuntimeRecord>(*record);
  auto cgroup = c.unused_cgroup(project_, rt->spec.cgroup);
  if (!cgroup) co_return outcome_of(cgroup.error());
  rt->spec.cgroup = *cgroup;
  if (daemon_.auto_remove_.count(s.name)) rt->auto_remove = true;
  for (auto& p : rt->ports)
    if (p.host_port == 0) {
      auto port = free_host_port(p.protocol == "udp");
      if (!port) co_return outcome_of(port.error().wrap("create " + s.name));
      p.host_port = *port;
    }
  if (auto stack = daemon_.stacks_.find(project_); stack != daemon_.stacks_.end())
    if (const spec::Service* svc = stack->second.find(s.service))
      if (auto v = container_volumes_from(daemon_.paths(), *svc, c.store(), *rt); !v)
        co_return Terminal{v.error().wrap("create " + s.name)};
  // The anonymous volumes of the container this one replaces, before any source is made.
  if (auto a = adopt_anonymous_volumes(daemon_.paths(), *rt); !a)
    co_return Terminal{a.error().wrap("create " + s.name)};
  // Secret files first: they are mount sources too.
  if (auto w = write_secret_files(daemon_.paths(), *rt); !w)
    co_return Terminal{w.error().wrap("create " + s.name)};
  for (const auto& m : rt->spec.mounts) {
    if (m.kind != model::BindMount::Kind::kBind || ::access(m.source.c_str(), F_OK) == 0) continue;
    if (!m.create_source)
      co_return Terminal{Error{"create " + s.name + ": bind source " + m.source.string() +
                               " does not exist (create_host_path: false)"}};
    if (auto made = make_dirs(m.source); !made)
      co_return Terminal{made.error().wrap("create " + s.name + ": bind source")};
  }
  if (auto o = shift_volume_owners(daemon_.paths(), *rt); !o)
    co_return Terminal{o.error().wrap("create " + s.name)};
  auto rec = c.create_record(std::move(rt), s.number);
  if (!rec) co_return outcome_of(rec.error());
  daemon_.supervisor_->forget(s.name);  // a new container starts its backoff afresh
  daemon_.errors_.erase(s.name);
  daemon_.events_.publish({0, "create", project_, s.service, s.name,
                           {{"reason", reason}, {"pass", pass.str()}}});
  progress_(s.name, "Created", since(t0));
  co_return Done{};
}

awaitable<Outcome> DaemonSteps::start(const planner::StartContainer& s, PassId) {
  auto t0 = Clock::now();
  auto& store = daemon_.controller().store();
  auto rec = store.get_container(s.name);
  if (!rec) co_return outcome_of(rec.error());
  if (!*rec) co_return Terminal{Error{"start " + s.name + ": no such container"}};
  if (auto r = daemon_.controller().refresh(**rec); !r) co_return outcome_of(r.error());
  if (state::is_up((*rec)->state) || daemon_.supervisor_->watching(s.name)) co_return Done{};
  if (auto r = co_await daemon_.supervisor_->start(**rec, s.serve); !r) {
    (void)daemon_.container_failed(**rec, r.error());
    co_return outcome_of(r.error());
  }
  // post_start, in order, once the service runs (compose: a failing hook fails `up`; the
  // container keeps running). Restarts by the restart policy do not run them, as with Docker.
  if (const auto& rt = (*rec)->runtime; rt && !rt->post_start.empty()) {
    auto& engine = daemon_.controller().engine();
    auto proc = engine::ContainerProcess{(*rec)->pid, (*rec)->pid_start_time, (*rec)->started_at};
    auto dir = daemon_.controller().container_dir(s.name);
    auto hooks = [&engine, proc, rt, dir]() -> Result<void> {
      for (size_t i = 0; i < rt->post_start.size(); i++)
        if (auto r = run_hook(engine, proc, rt->spec.cgroup, rt->post_start[i], dir,
                              "post_start hook " + std::to_string(i + 1), std::chrono::minutes(10));
            !r)
          return r;
      return {};
    };
    if (auto r = co_await on_pool(*daemon_.pool_, std::move(hooks)); !r) {
      log::get("reconciler")->error("{}: {}", s.name, r.error().message);
      co_return Terminal{Error{r.error().wrap(s.name).message}};
    }
  }
  daemon_.errors_.erase(s.name);
  progress_(s.name, "Started", since(t0));
  co_return Done{};
}

awaitable<Outcome> DaemonSteps::await(const planner::AwaitContainer& s, PassId pass) {
  // Until NAME meets the condition, it fails it for good, or the project is taken down.
  auto t0 = Clock::now();
  auto log = log::get("reconciler");
  auto& c = daemon_.controller();
  std::optional<Clock::time_point> met;  // when it first met the condition (for MONITOR)
  for (;;) {
    if (daemon_.stopping_) co_return Terminal{Error{"the daemon is stopping"}};
    if (daemon_.cancelled(project_)) co_return Terminal{Error{"cancelled"}};
    auto rec = c.store().get_container(s.name);
    if (!rec) co_return outcome_of(rec.error());
    std::string failure;
    bool ok = false;
    if (!*rec) {
      failure = s.name + " does not exist";
    } else {
      auto& r = **rec;
      if (auto fresh = c.refresh(r); !fresh) co_return outcome_of(fresh.error());
      std::string code = std::to_string(r.exit_code);
      switch (s.condition) {
        case planner::Condition::kStarted:
          // compose: it was started; a one-shot one that already exited counts.
          ok = state::is_up(r.state) || (r.state == S::kExited && r.started_at > 0);
          break;
        case planner::Condition::kHealthy:
          if (!state::is_up(r.state)) failure = s.name + " is " + state::state_name(r.state) + " (exit code " + code + ")";
          else if (r.health == "unhealthy") failure = s.name + " is unhealthy";
          else ok = r.health == "healthy" || (r.health.empty() && r.runtime && !r.runtime->health.enabled());
          break;
        case planner::Condition::kCompletedSuccessfully:
          if (r.state == S::kExited && r.exit_code != 0) failure = s.name + " exited with code " + code;
          else ok = r.state == S::kExited && r.started_at > 0;
          break;
      }
      if (met && !ok && failure.empty()) failure = s.name + " stopped meeting the condition";
    }
    if (!failure.empty() && s.update) co_return co_await update_failed(s, failure, pass);
    if (!failure.empty()) {
      if (!s.required) {
        log->warn("optional dependency failed container={} pass={}: {}", s.name, pass.str(), failure);
        co_return Done{};
      }
      co_return Terminal{Error{"dependency failed to start: " + failure}};
    }
    if (ok && !met) met = Clock::now();
    if (ok && Clock::now() - *met >= s.monitor) {
      if (s.condition == planner::Condition::kHealthy) progress_(s.name, "Healthy", since(t0));
      co_return Done{};
    }
    if (ok) co_await daemon_.changed().wait_for(std::chrono::duration_cast<milliseconds>(
        s.monitor - (Clock::now() - *met)));
    else co_await daemon_.changed().wait_for(milliseconds(1000));
  }
}

awaitable<Outcome> DaemonSteps::stop(const planner::StopContainer& s, PassId pass) {
  auto t0 = Clock::now();
  auto& store = daemon_.controller().store();
  auto rec = store.get_container(s.name);
  if (!rec) co_return outcome_of(rec.error());
  if (!*rec) co_return Done{};  // gone already
  RuntimeRecord defaults;  // an unreadable record is stopped with the defaults
  const RuntimeRecord& rt = (*rec)->runtime ? *(*rec)->runtime : defaults;
  auto grace = timeout_ ? milliseconds(*timeout_) : rt.stop_grace;
  // A paused container is thawed first: frozen, its service would not see the stop signal
  // before the grace period ran out.
  if ((*rec)->runtime) {
    auto& cgroups = daemon_.controller().engine().cgroups();
    if (auto f = cgroups.frozen(rt.spec.cgroup); f && *f)
      if (auto r = cgroups.freeze(rt.spec.cgroup, false); !r) co_return outcome_of(r.error());
  }
  if (auto r = co_await daemon_.supervisor_->stop(s.name, rt.stop_signal, grace); !r)
    co_return outcome_of(r.error());
  daemon_.events_.publish({0, "stop", project_, (*rec)->service, s.name, {{"pass", pass.str()}}});
  progress_(s.name, "Stopped", since(t0));
  co_return Done{};
}

awaitable<Outcome> DaemonSteps::remove(const planner::RemoveContainer& s, const std::string& reason,
                                       PassId pass) {
  auto t0 = Clock::now();
  auto& c = daemon_.controller();
  auto rec = c.store().get_container(s.name);
  if (!rec) co_return outcome_of(rec.error());
  if (!*rec) co_return Done{};
  if (auto r = c.refresh(**rec); !r) co_return outcome_of(r.error());
  if (state::is_up((*rec)->state)) co_return Terminal{Error{"cannot remove a running container " + s.name}};
  // An update's old container: what it ran is the service's previous configuration.
  if (s.replaced)
    if (auto r = c.store().put_history(**rec, std::chrono::duration_cast<milliseconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count());
        !r)
      log::get("reconciler")->warn("keep previous configuration of {}: {}", s.name, r.error().message);
  daemon_.networking().gone(s.name);
  // A replaced container's anonymous volumes go to its successor under the same name (a
  // stop-first update). With start-first the successor runs already, with its own.
  bool successor = false;
  if (auto all = c.store().list_containers(project_))
    for (const auto& other : *all)
      successor = successor || (other.name != s.name && other.service == (*rec)->service &&
                                other.number == (*rec)->number);
  if (s.replaced && !successor) {
    if (auto r = keep_anonymous_volumes(daemon_.paths(), s.name); !r) co_return outcome_of(r.error());
  } else {
    drop_kept_volumes(daemon_.paths(), s.name);
  }
  auto aside = c.remove_container(**rec);
  if (!aside) co_return outcome_of(aside.error());
  if (!aside->empty()) {  // a big writable layer: deleted on the pool, the loop answers meanwhile
    auto erase = [dir = *aside] { return remove_tree(dir); };
    if (auto r = co_await on_pool(*daemon_.pool_, std::move(erase)); !r)
      co_return outcome_of(r.error().wrap("remove " + s.name));
  }
  if (auto r = remove_secret_files(daemon_.paths(), s.name); !r) co_return outcome_of(r.error());
  daemon_.supervisor_->forget(s.name);
  daemon_.errors_.erase(s.name);
  daemon_.events_.publish({0, "destroy", project_, (*rec)->service, s.name,
                           {{"reason", reason}, {"pass", pass.str()}}});
  progress_(s.name, "Removed", since(t0));
  co_return Done{};
}

awaitable<Result<void>> DaemonSteps::rename_container(const std::string& from,
                                                      const std::string& to) {
  auto& c = daemon_.controller();
  auto rec = c.store().get_container(from);
  if (!rec) co_return fail(rec.error());
  if (!*rec) co_return fail("rename " + from + ": no such container");
  auto renamed = c.rename_container(**rec, to);
  if (!renamed) co_return fail(renamed.error());
  daemon_.supervisor_->rename(from, to);
  if (auto r = daemon_.networking().rename(from, to); !r) co_return r;
  if (auto e = daemon_.errors_.extract(from); !e.empty()) daemon_.errors_[to] = e.mapped();
  co_return Result<void>{};
}

awaitable<Outcome> DaemonSteps::rename(const planner::RenameContainer& s, PassId pass) {
  auto& store = daemon_.controller().store();
  // Done already by an earlier attempt of this pass: FROM gone, TO there.
  auto from = store.get_container(s.from);
  if (!from) co_return outcome_of(from.error());
  if (!*from) {
    auto to = store.get_container(s.to);
    if (to && *to) co_return Done{};
    co_return Terminal{Error{"rename " + s.from + ": no such container"}};
  }
  if (auto r = co_await rename_container(s.from, s.to); !r) co_return outcome_of(r.error());
  log::get("reconciler")->info("renamed container name={} to={} pass={}", s.from, s.to, pass.str());
  co_return Done{};
}

awaitable<Outcome> DaemonSteps::switch_traffic(const planner::SwitchTraffic& s, PassId pass) {
  auto t0 = Clock::now();
  auto rec = daemon_.controller().store().get_container(s.to);
  if (!rec) co_return outcome_of(rec.error());
  if (!*rec || !(*rec)->runtime) co_return Terminal{Error{"switch traffic to " + s.to + ": no such container"}};
  if (auto r = daemon_.networking().switch_traffic(s.from, *(*rec)->runtime); !r)
    co_return outcome_of(r.error());
  daemon_.events_.publish({0, "switch", project_, (*rec)->service, s.to,
                           {{"from", s.from}, {"pass", pass.str()}}});
  progress_(s.to, "Serving", since(t0));
  co_return Done{};
}

// Runs on the image workers (a long pull holds up no other step); its layers' progress goes to
// the client as "image REF" lines: each status change, and a download's bytes at most every
// 200 ms. A failed pull is terminal, with the registry's message: the pull retried its
// requests itself.
awaitable<Outcome> DaemonSteps::pull(const planner::PullImage& s, const std::string& reason,
                                     PassId pass) {
  auto t0 = Clock::now();
  std::string object = "image " + s.ref;
  progress_(object, "Pulling", since(t0));
  fs::PullRequest request;
  request.reference = s.ref;
  if (!s.platform.empty()) request.platform = s.platform;
  request.now = std::chrono::system_clock::now();
  apply_auth(request, auth_.get());
  struct Seen {
    std::string status;
    Clock::time_point at;
  };
  auto seen = std::make_shared<std::map<std::string, Seen>>();
  request.progress = [progress = progress_, object, seen, t0](const fs::PullEvent& e) {
    if (e.kind != fs::PullEvent::Kind::layer) return;
    auto& last = (*seen)[e.id];
    auto now = Clock::now();
    if (e.status == last.status && now - last.at < milliseconds(200)) return;
    last = {e.status, now};
    std::string text = e.id + " " + e.status;
    if (e.status == "Downloading" && e.total > 0)
      text += " " + std::to_string(e.current) + "/" + std::to_string(e.total);
    else if (!e.message.empty())
      text += ": " + e.message;
    progress(object, text, since(t0));
  };
  auto image = co_await daemon_.images().pull(std::move(request));
  if (!image) {
    // The executor names the step ("pull REF: "); the store's message may too.
    Error e = image.error();
    if (e.message.rfind("pull " + s.ref + ": ", 0) == 0) e.message.erase(0, s.ref.size() + 7);
    co_return Terminal{e};
  }
  log::get("reconciler")->info("pulled image ref={} id={} reason={} pass={}", s.ref, image->id,
                               reason, pass.str());
  daemon_.events_.publish({0, "pull", project_, "", "",
                           {{"image", s.ref}, {"reason", reason}, {"pass", pass.str()}}});
  progress_(object, "Pulled", since(t0));
  co_return Done{};
}

static std::string build_line(const build::BuildEvent& e) {
  std::string step = "step " + std::to_string(e.step) + "/" + std::to_string(e.steps) + ": ";
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1fs", static_cast<double>(e.duration_ms) / 1000.0);
  switch (e.kind) {
    case build::BuildEvent::Kind::kStep: return step + e.instruction;
    case build::BuildEvent::Kind::kCached: return step + "CACHED";
    case build::BuildEvent::Kind::kOutput: return "| " + e.text;
    case build::BuildEvent::Kind::kDone: return step + "DONE " + seconds;
    case build::BuildEvent::Kind::kNote: return "note: " + e.text;
    case build::BuildEvent::Kind::kError: return "ERROR " + e.text;
  }
  return e.text;
}

// Runs on the build workers (builds.h): its steps go to the client as "build SERVICE" lines
// (build_line), the CLI prints them as "[SERVICE] step 2/4: RUN make". A failed build is
// terminal: its error names the Dockerfile's line.
awaitable<Outcome> DaemonSteps::build_image(const planner::BuildImage& s, const std::string& reason,
                                            PassId pass) {
  auto t0 = Clock::now();
  if (!s.config) co_return Terminal{Error{"no build configuration"}};
  std::string object = "build " + (s.services.empty() ? s.image : s.services.front());
  // A step is CACHED or has its time, as compose shows it: not both.
  auto cached_step = std::make_shared<int>(0);
  build::Progress progress = [report = progress_, object, t0, cached_step](const build::BuildEvent& e) {
    if (e.kind == build::BuildEvent::Kind::kCached) *cached_step = e.step;
    if (e.kind == build::BuildEvent::Kind::kDone && *cached_step == e.step) return;
    report(object, build_line(e), since(t0));
  };
  // Made before the co_await: g++ 12 mishandles a default argument's temporary inside one
  // (its map is left unconstructed).
  build::BuildRequest request = build_request(*s.config);
  auto built = co_await daemon_.builds().build(std::move(request), std::move(progress), auth_);
  if (!built) {
    Error e = built.error();
    if (!s.config->where.empty()) e = e.wrap(s.config->where);
    co_return Terminal{e};
  }
  log::get("reconciler")->info("built image ref={} id={} steps={} cached={} reason={} pass={}",
                               s.image, built->image_id, built->steps, built->cached, reason,
                               pass.str());
  daemon_.events_.publish({0, "build", project_, s.services.empty() ? "" : s.services.front(), "",
                           {{"image", s.image}, {"id", built->image_id}, {"reason", reason},
                            {"pass", pass.str()}}});
  progress_(object, "Built " + s.image + " " + built->image_id.substr(0, 19) + " (" +
                        std::to_string(built->steps) + " steps, " + std::to_string(built->cached) +
                        " cached)",
            since(t0));
  co_return Done{};
}

awaitable<Outcome> DaemonSteps::update_failed(const planner::AwaitContainer& s, const std::string& why,
                                              PassId pass) {
  using A = planner::UpdatePolicy::FailureAction;
  auto log = log::get("reconciler");
  auto& c = daemon_.controller();
  auto rec = c.store().get_container(s.name);
  std::string service = rec && *rec ? (*rec)->service : "";
  daemon_.events_.publish({0, "update_failed", project_, service, s.name,
                           {{"reason", why}, {"pass", pass.str()}}});
  // Within max_failure_ratio the update goes on, as with failure_action: continue.
  if (s.update->on_failure == A::kContinue || ++update_failures_[service] <= s.update->tolerated) {
    log->warn("update of {} failed at {}, continuing pass={}: {}", service, s.name, pass.str(), why);
    co_return Done{};
  }
  // The new container goes; with start-first the old one, which kept serving, takes its name
  // back. Stop-first has nothing left to undo here: the old one is gone (a rollback makes it
  // again from the history).
  if (!s.update->previous.empty()) {
    RuntimeRecord defaults;
    const RuntimeRecord& rt = rec && *rec && (*rec)->runtime ? *(*rec)->runtime : defaults;
    if (auto r = co_await daemon_.supervisor_->stop(s.name, rt.stop_signal, rt.stop_grace); !r)
      co_return Terminal{r.error()};
    if (auto fresh = c.store().get_container(s.name); fresh && *fresh) {
      daemon_.networking().gone(s.name);
      auto aside = c.remove_container(**fresh);
      if (!aside) co_return Terminal{aside.error()};
      if (!aside->empty()) {
        auto erase = [dir = *aside] { return remove_tree(dir); };
        if (auto r = co_await on_pool(*daemon_.pool_, std::move(erase)); !r)
          co_return Terminal{r.error().wrap("remove " + s.name)};
      }
    }
    if (auto r = co_await rename_container(s.update->previous, s.name); !r) co_return Terminal{r.error()};
  }
  bool rollback = s.update->on_failure == A::kRollback;
  daemon_.update_failures_[project_][service] = rollback;
  log->error("update of {} failed at {}, {} pass={}: {}", service, s.name,
             rollback ? "rolling back" : "paused", pass.str(), why);
  co_return Terminal{Error{"update of " + service + " failed at " + s.name + ": " + why + " (" +
                           (rollback ? "rolled back" : "paused") + ")"}};
}

}  // namespace stack::reconciler
