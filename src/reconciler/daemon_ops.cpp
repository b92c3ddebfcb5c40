// The daemon's operations on a project: up (desired state, observed state, the plan, the plan
// executed), down, stop, start and restart — each one a plan of typed steps run by the
// executor as one pass. Loop thread only; operations on one project are serialised.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "fs/image_store.h"
#include "reconciler/daemon.h"
#include "reconciler/service_fields.h"
#include "reconciler/desired.h"
#include "reconciler/networking.h"
#include "reconciler/observed.h"
#include "reconciler/project_lock.h"
#include "reconciler/providers.h"
#include "reconciler/steps.h"
#include "reconciler/supervisor.h"
#include "reconciler/volumes.h"
#include "spec/service_fields.h"
#include "state/store.h"

#include <spdlog/spdlog.h>

namespace stack::reconciler {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using S = state::ContainerState;

int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool has_builds(const planner::Plan& plan) {
  return std::any_of(plan.nodes.begin(), plan.nodes.end(), [](const planner::Node& n) {
    return std::holds_alternative<planner::BuildImage>(n.step);
  });
}

// The BuildImage steps of PLAN, on their own: they follow nothing, so they run side by side.
planner::Plan builds_of(const planner::Plan& plan) {
  planner::Plan out;
  for (const auto& n : plan.nodes)
    if (std::holds_alternative<planner::BuildImage>(n.step))
      out.nodes.push_back({n.step, n.reason, n.service, {}});
  return out;
}

bool has_providers(const planner::Plan& plan) {
  return std::any_of(plan.nodes.begin(), plan.nodes.end(), [](const planner::Node& n) {
    return std::holds_alternative<planner::RunProvider>(n.step);
  });
}

// The RunProvider steps of PLAN, on their own, with the edges between them, each run in
// ENVIRONMENT (the client's, as compose runs a provider in its own).
planner::Plan providers_of(const planner::Plan& plan,
                           const std::map<std::string, std::string>& environment) {
  planner::Plan out;
  std::map<size_t, size_t> index;  // in PLAN -> in OUT
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    const auto* run = std::get_if<planner::RunProvider>(&plan.nodes[i].step);
    if (!run) continue;
    planner::RunProvider step = *run;
    auto config = std::make_shared<model::ProviderConfig>(*run->config);
    config->environment = environment;
    step.config = std::move(config);
    std::vector<size_t> after;
    for (size_t a : plan.nodes[i].after)
      if (auto it = index.find(a); it != index.end()) after.push_back(it->second);
    index[i] = out.nodes.size();
    out.nodes.push_back({std::move(step), plan.nodes[i].reason, plan.nodes[i].service, after});
  }
  return out;
}

}  // namespace

awaitable<Result<Daemon::UpOutcome>> Daemon::up(UpRequest request, Progress progress) {
  // In a cluster the project goes to the store; this node runs what the scheduler gives it.
  if (cluster_agent) co_return co_await cluster_up(std::move(request));
  request.load.services = request.options.plan.services;  // only their env files are read
  auto loading = [opts = budgeted(request.load)] { return spec::load(opts); };  // as reconcile
  auto stack = co_await on_pool(*pool_, std::move(loading));
  if (!stack) co_return fail(stack.error());
  if (request.warn)
    for (const auto& w : stack->warnings) request.warn(w);
  // Everything the file asks for must be something stack can run: refused before any change.
  if (auto r = spec::check_supported(*stack); !r) co_return fail(r.error());
  if (auto r = prepare_up(*stack, request); !r) co_return fail(r.error());
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, stack->name);
  auto as_client = pull_as_client(stack->name, request.registry_auth);
  // The variables the providers' last up set, in their dependents' environment.
  const spec::Stack as_loaded = *stack;
  if (auto r = inject_provider_env(*stack, controller_->store()); !r) co_return fail(r.error());
  // Every image, user and limit checked before anything changes, and what the planner refuses
  // (an image missing with pull_policy never) too.
  auto desired = desired_state(*stack, paths_, controller_->images());
  if (!desired) co_return fail(desired.error());
  if (auto r = check_container_names(*stack, *desired, controller_->store()); !r)
    co_return fail(r.error());
  if (auto r = check_external_networks(*stack, *desired); !r) co_return fail(r.error());
  if (auto r = check_sublink_parents(*stack); !r) co_return fail(r.error());
  if (auto r = check_volumes_unchanged(*stack, *desired, controller_->store()); !r)
    co_return fail(r.error());
  if (auto r = check_volumes_from_containers(*stack, controller_->store()); !r)
    co_return fail(r.error());
  if (auto observed = observed_state(*controller_, *networking_, stack->name)) {
    if (auto r = add_shared_networks(*observed, *desired, *controller_, *networking_); !r)
      co_return fail(r.error());
    planner::PlanOptions check = request.options.plan;
    check.now = std::chrono::system_clock::now();
    auto p = planner::plan(*desired, *observed, check);
    if (!p) co_return fail(p.error());
    // The images this up builds, built first, before anything else changes: a build that
    // fails leaves the host as it was. The rest is planned against what they produced (a
    // changed image recreates its service's containers, an unchanged one leaves them).
    if (!request.options.dry_run && has_builds(*p)) {
      if (auto r = co_await execute(stack->name, builds_of(*p), progress); !r) co_return fail(r.error());
      request.options.plan.built = true;
      desired = desired_state(*stack, paths_, controller_->images());
      if (!desired) co_return fail(desired.error());
    }
    // Then the providers, before any network or container: one that fails leaves nothing made.
    // What they report goes into their dependents' environment, and the rest is planned
    // against that.
    if (!request.options.dry_run && has_providers(*p)) {
      auto runs = providers_of(*p, request.load.environment);
      if (auto r = co_await execute(stack->name, runs, progress); !r) co_return fail(r.error());
      request.options.plan.providers_done = true;
      *stack = as_loaded;
      if (auto r = inject_provider_env(*stack, controller_->store()); !r) co_return fail(r.error());
      desired = desired_state(*stack, paths_, controller_->images());
      if (!desired) co_return fail(desired.error());
    }
  }
  if (!request.options.dry_run) {
    // Registered before anything is made: a daemon killed half-way through finds the project,
    // with the environment its files were interpolated with, and finishes the job.
    state::ProjectRecord project;
    project.name = stack->name;
    for (const auto& f : stack->files) project.files.push_back(f.string());
    project.working_dir = stack->project_dir.string();
    project.environment_json = nlohmann::json(request.load.environment).dump();
    project.created_at = unix_ms();
    // What the daemon keeps up from now on: `up web` adds web (and, through the planner, its
    // dependencies) to what the project ran; a plain `up` means every service.
    auto known = controller_->store().get_project(stack->name);
    if (!known) co_return fail(known.error());
    const auto& asked = request.options.plan.services;
    if (!asked.empty() && (!*known || !(*known)->services.empty())) {
      std::set<std::string> names(asked.begin(), asked.end());
      if (*known) names.insert((*known)->services.begin(), (*known)->services.end());
      project.services.assign(names.begin(), names.end());
    }
    if (auto r = controller_->store().put_project(project); !r) co_return fail(r.error());
    if (auto r = reset_overrides(*stack, request); !r) co_return fail(r.error());
    register_watch(project.name, project.files);
    stacks_[stack->name] = *stack;
  }
  std::map<std::string, std::string> file_hashes;  // of the services this up brings up
  auto selected = with_dependencies(*stack, request.options.plan.services);
  for (const auto& s : desired->services)
    if (selected.count(s.name)) file_hashes[s.name] = s.config_hash;
  auto plan = co_await apply(*stack, request.options, true, progress, true, std::move(*desired));
  if (plan && !request.options.dry_run && request.options.plan.no_recreate)
    if (auto r = hold_unchanged(stack->name, file_hashes); !r) co_return fail(r.error());
  if (!plan && !request.options.dry_run) failed(stack->name, plan.error(), "up");
  if (plan && !request.options.dry_run) failures_.erase(stack->name);
  if (!plan) co_return fail(plan.error());
  if (request.wait && !request.options.dry_run)
    if (auto r = co_await wait_ready(*stack, request.wait_timeout); !r) co_return fail(r.error());
  UpOutcome out{stack->name, std::move(*plan), {}};
  for (const auto& svc : stack->services)
    if (auto a = svc.extra.find("attach"); a != svc.extra.end() && *a == false)
      out.not_attached.push_back(svc.name);
  co_return out;
}

awaitable<Result<std::vector<BuiltImage>>> Daemon::build_services(BuildServicesRequest request,
                                                                 Progress progress) {
  auto loading = [opts = budgeted(request.load)] { return spec::load(opts); };
  auto stack = co_await on_pool(*pool_, std::move(loading));
  if (!stack) co_return fail(stack.error());
  if (request.warn)
    for (const auto& w : stack->warnings) request.warn(w);
  if (auto r = spec::check_supported(*stack); !r) co_return fail(r.error());
  for (const auto& name : request.services)
    if (!stack->find(name)) co_return fail("no such service: " + name);
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, stack->name);
  auto as_client = pull_as_client(stack->name, request.registry_auth);
  planner::Plan plan;
  std::map<std::string, size_t> by_image;
  std::vector<BuiltImage> built;
  for (const auto& svc : stack->services) {
    const auto& only = request.services;
    if (!svc.build || (!only.empty() && std::find(only.begin(), only.end(), svc.name) == only.end()))
      continue;
    if (auto it = by_image.find(svc.image); it != by_image.end()) {
      std::get<planner::BuildImage>(plan.nodes[it->second].step).services.push_back(svc.name);
      continue;
    }
    auto config = std::make_shared<model::BuildConfig>(*build_config(svc));
    config->no_cache |= request.no_cache;
    config->pull |= request.pull;
    for (const auto& [k, v] : request.args) config->args[k] = v;
    by_image[svc.image] = plan.nodes.size();
    plan.nodes.push_back({planner::BuildImage{svc.image, {svc.name}, config}, "stack build", svc.name, {}});
    built.push_back({svc.name, svc.image, ""});
  }
  if (plan.empty()) co_return built;
  if (auto r = co_await execute(stack->name, plan, progress); !r) co_return fail(r.error());
  for (auto& b : built)
    if (auto image = controller_->images().get(b.image)) b.id = image->id;
  co_return built;
}

Result<Daemon::Pins> Daemon::pins_of(const std::string& project,
                                     const planner::DesiredState& desired, bool release) {
  auto& store = controller_->store();
  auto pins = store.list_pins(project);
  if (!pins) return fail(pins.error());
  Pins out;
  for (const auto& p : *pins) {
    auto s = std::find_if(desired.services.begin(), desired.services.end(),
                          [&](const auto& d) { return d.name == p.service; });
    bool obsolete = s == desired.services.end() || s->config_hash != p.file_hash;
    if (obsolete || release) {
      if (auto r = store.remove_pin(project, p.service); !r) return fail(r.error());
      continue;
    }
    if (p.pinned_hash.empty()) {
      out.held.insert(p.service);
      continue;
    }
    auto history = store.list_history(project, p.service);
    if (!history) return fail(history.error());
    auto& records = out.rollbacks[p.service];
    for (auto& h : *history)
      if (h.config_hash == p.pinned_hash) records.push_back(std::move(h));
  }
  return out;
}

awaitable<Result<planner::Plan>> Daemon::apply(const spec::Stack& stack, const UpOptions& options,
                                               bool explicit_up, Progress progress,
                                               bool may_roll_back,
                                               std::optional<planner::DesiredState> given) {
  // The daemon's own passes keep what `scale`, `create` and `rm` changed since the last `up`
  // (an explicit up has applied its own already).
  planner::PlanOptions popts = options.plan;
  std::optional<spec::Stack> overridden;
  auto providers = controller_->store().list_providers(stack.name);
  if (!providers) co_return fail(providers.error());
  if (!providers->empty()) {  // their variables, in their dependents' environment
    overridden = stack;
    if (auto r = inject_provider_env(*overridden, controller_->store()); !r) co_return fail(r.error());
  }
  if (!explicit_up) {
    if (!overridden) overridden = stack;
    if (auto r = apply_overrides(*overridden, popts); !r) co_return fail(r.error());
    popts.removed.erase(popts.one_off);
    popts.no_start.erase(popts.one_off);
  }
  // A slot of this node may be above the file's replicas (a global service's slots are
  // numbered across the nodes): its replica is made like the others.
  if (auto it = cluster_slots_.find(stack.name); it != cluster_slots_.end()) {
    if (!overridden) overridden = stack;
    for (auto& svc : overridden->services)
      if (auto sl = it->second.find(svc.name); sl != it->second.end() && !sl->second.empty())
        svc.replicas = std::max(svc.replicas, *sl->second.rbegin());
  }
  const spec::Stack& use = overridden ? *overridden : stack;
  auto desired = given ? Result<planner::DesiredState>(std::move(*given))
                       : desired_state(use, paths_, controller_->images());
  if (!desired) co_return fail(desired.error());
  restrict_to_slots(*desired);
  std::map<std::string, std::string> file_hashes;  // what the file asks for, before any pin
  for (const auto& s : desired->services) file_hashes[s.name] = s.config_hash;
  // A rollback keeps a service on its previous configuration, a paused update keeps it as it
  // is, while the file still asks for what they were made against; an explicit up applies the
  // file again (and so retries the update).
  auto pins = pins_of(stack.name, *desired, explicit_up);
  if (!pins) co_return fail(pins.error());
  pins->rollbacks.erase(popts.one_off);  // its one record is the one-off container's
  apply_rollbacks(*desired, use, pins->rollbacks);
  auto observed = observed_state(*controller_, *networking_, stack.name);
  if (!observed) co_return fail(observed.error());
  if (auto r = add_shared_networks(*observed, *desired, *controller_, *networking_); !r)
    co_return fail(r.error());
  // The daemon's own passes keep up what `up` was asked for, not every service of the file.
  if (!explicit_up && popts.services.empty())
    if (auto p = controller_->store().get_project(stack.name); p && *p)
      popts.services = (*p)->services;
  popts.continuous = !explicit_up;
  popts.held = pins->held;
  popts.now = std::chrono::system_clock::now();
  auto plan = planner::plan(*desired, *observed, popts);
  if (!plan) co_return fail(plan.error());
  if (options.dry_run || plan->empty()) co_return plan;
  // The project must exist before its containers are recorded.
  if (auto p = controller_->store().get_project(stack.name); p && !*p) {
    state::ProjectRecord rec;
    rec.name = stack.name;
    rec.working_dir = stack.project_dir.string();
    for (const auto& f : stack.files) rec.files.push_back(f.string());
    rec.environment_json = "{}";
    rec.created_at = unix_ms();
    if (auto r = controller_->store().put_project(rec); !r) co_return fail(r.error());
  }
  auto done = co_await execute(stack.name, *plan, progress);
  auto failed_updates = std::move(update_failures_[stack.name]);
  update_failures_.erase(stack.name);
  if (done) co_return plan;
  // An update that failed its check: paused (held where it stopped) or rolled back (pinned to
  // the previous configuration, and the replicas already updated taken back now).
  bool roll_back = false;
  auto& store = controller_->store();
  for (const auto& [service, rollback] : failed_updates) {
    std::string pinned;
    if (rollback && may_roll_back) {  // a rollback that fails is paused, not rolled back again
      // The previous configuration: what the replicas the update has not replaced still run
      // (kept with what the replaced ones ran), else what the history holds.
      if (auto records = store.list_containers(stack.name))
        for (const auto& rec : *records)
          if (rec.service == service && rec.config_hash != file_hashes[service] && rec.runtime) {
            if (pinned.empty()) pinned = rec.config_hash;
            if (rec.config_hash == pinned) (void)store.put_history(rec, unix_ms());
          }
      if (pinned.empty())
        if (auto h = store.list_history(stack.name, service); h && !h->empty())
          pinned = h->front().config_hash;
    }
    (void)store.put_pin({stack.name, service, file_hashes[service], pinned});
    roll_back |= !pinned.empty();
  }
  if (roll_back) {
    const UpOptions defaults;  // named: see Daemon::reconcile
    if (auto back = co_await apply(stack, defaults, false, progress, false); !back)
      log::get("reconciler")->error("rollback of project={}: {}", stack.name, back.error().message);
  }
  co_return fail(done.error());
}

std::shared_ptr<void> Daemon::pull_as_client(const std::string& project,
                                             std::shared_ptr<const RegistryAuths> auth) {
  client_auth_[project] = auth ? std::move(auth) : std::make_shared<const RegistryAuths>();
  return std::shared_ptr<void>(nullptr, [this, project](void*) { client_auth_.erase(project); });
}

std::shared_ptr<void> Daemon::pull_as_daemon(const std::string& project) {
  own_pulls_.insert(project);
  return std::shared_ptr<void>(nullptr, [this, project](void*) { own_pulls_.erase(project); });
}

awaitable<Result<void>> Daemon::execute(const std::string& project, const planner::Plan& plan,
                                        Progress progress, std::optional<std::chrono::seconds> timeout) {
  PassId pass{next_pass_++};
  auto log = log::get("reconciler");
  log->info("pass={} project={} steps={}", pass.str(), project, plan.nodes.size());
  for (const auto& n : plan.nodes) log->debug("pass={} plan: {}", pass.str(), planner::render_step(n));
  std::shared_ptr<const RegistryAuths> auth;  // null: the daemon's own pass, its own file
  if (!own_pulls_.count(project)) {
    auto it = client_auth_.find(project);
    auth = it != client_auth_.end() ? it->second : std::make_shared<const RegistryAuths>();
  }
  DaemonSteps steps(*this, std::move(progress), project, timeout, std::move(auth));
  ExecOptions options;
  options.cancelled = [this, project] { return stopping_ || cancelled(project); };
  auto t0 = Clock::now();
  auto result = co_await reconciler::execute(plan, steps, std::move(options), pass);
  supervisor_->changed().notify();
  auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  if (!result.ok()) {
    auto error = result.error(plan);
    log->error("pass={} project={} failed after {} ms: {}", pass.str(), project, ms, error.message);
    co_return fail(error);
  }
  log->info("pass={} project={} done in {} ms", pass.str(), project, ms);
  co_return Result<void>{};
}

std::vector<planner::DesiredService> Daemon::services_of(const std::string& project) {
  std::vector<planner::DesiredService> out;
  auto it = stacks_.find(project);
  if (it == stacks_.end()) return out;
  for (const auto& svc : it->second.services) {
    planner::DesiredService s;
    s.name = svc.name;
    s.depends_on = dependencies_of(svc);
    s.network_service = spec::joined_service(svc);
    out.push_back(std::move(s));
  }
  return out;
}

Result<void> Daemon::check_services(const std::string& project,
                                    const std::vector<std::string>& services) {
  auto records = controller_->store().list_containers(project);
  if (!records) return fail(records.error());
  for (const auto& s : services)
    if (std::none_of(records->begin(), records->end(), [&](auto& r) { return r.service == s; }))
      return fail("no such service in project " + project + ": " + s);
  return {};
}

awaitable<Result<void>> Daemon::mark_stopped(const planner::Plan& plan) {
  // Marked before anything stops: a container that dies while an earlier one is being stopped
  // (Ctrl-C twice kills them all) is part of this stop, not drift to repair.
  auto& store = controller_->store();
  for (const auto& n : plan.nodes) {
    auto* stop = std::get_if<planner::StopContainer>(&n.step);
    if (!stop || !stop->user) continue;
    auto rec = store.get_container(stop->name);
    if (!rec) co_return fail(rec.error());
    if (!*rec) continue;
    (*rec)->user_stopped = true;
    if (auto r = store.put_container(**rec); !r) co_return r;
  }
  co_return Result<void>{};
}

// An external network is made by another project or `stack network create`: each one a
// service joins must exist now (its bridge there); this project never makes or removes it.
Result<void> Daemon::check_external_networks(const spec::Stack& stack,
                                             const planner::DesiredState& desired) {
  auto missing = networking_->missing();
  for (const auto& n : stack.networks) {
    if (!n.external) continue;
    bool used = std::any_of(desired.services.begin(), desired.services.end(), [&](const auto& s) {
      return std::count(s.networks.begin(), s.networks.end(), n.name) > 0;
    });
    if (!used) continue;
    auto rec = controller_->store().get_network(n.name);
    if (!rec) return fail(rec.error());
    if (!*rec || std::count(missing.begin(), missing.end(), n.name))
      return fail(n.pos.str() + ": network " + n.key + " is external: network " + n.name +
                  " does not exist on this host (make it with `stack network create " + n.name +
                  "`, or up the project that defines it)");
  }
  return {};
}

// docker's macvlan and ipvlan drivers give a parent link to one network: a second one would
// share its segment with another IPAM handing out the same addresses. An 802.1Q
// sub-interface ("eth0.20") is a parent of its own. Checked before anything is made.
Result<void> Daemon::check_sublink_parents(const spec::Stack& stack) {
  std::map<std::string, const spec::Network*> by_parent;
  for (const auto& n : stack.networks) {
    if (n.external || (n.driver != "macvlan" && n.driver != "ipvlan")) continue;
    auto p = n.driver_opts.find("parent");
    if (p == n.driver_opts.end() || p->second.empty()) continue;  // stack's own dummy parent
    const std::string& parent = p->second;
    std::string other;
    if (auto it = by_parent.find(parent); it != by_parent.end())
      other = it->second->name;
    else
      other = networking_->parent_user(parent, n.name);
    if (!other.empty())
      return fail(n.pos.str() + ": network " + n.name + " cannot use parent interface " +
                  parent + ": network " + other + " is already using parent interface " +
                  parent + " (another network on that link needs an 802.1Q sub-interface of "
                  "another VLAN: parent: IFACE.VLAN)");
    by_parent[parent] = &n;
  }
  return {};
}

awaitable<Result<void>> Daemon::down(std::string project, std::optional<std::chrono::seconds> timeout,
                                     Progress progress, bool volumes) {
  // Every node's share goes: the store's record first, so no scheduler places it again. The
  // store unreachable: this node's share goes anyway, the record when the store is back.
  if (cluster_agent)
    if (auto r = co_await cluster_down(project); !r) {
      if (auto later = cluster_down_later(project); !later) co_return fail(later.error());
      log::get("cluster")->warn("project={}: {}; removed here, the record when etcd is back",
                                project, r.error().message);
      progress(project,
               "Removed here only: the cluster record could not be removed (" +
                   r.error().message + "); it is removed when etcd is reachable again",
               std::chrono::milliseconds(0));
    }
  cancels_.insert(project);  // a plan of this project waiting on something gives up
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  cancels_.erase(project);
  auto observed = observed_state(*controller_, *networking_, project);
  if (!observed) co_return fail(observed.error());
  auto recorded = controller_->store().list_providers(project);
  if (!recorded) co_return fail(recorded.error());
  std::vector<planner::RunProvider> providers;
  for (const auto& p : *recorded)
    providers.push_back({p.service, "down", std::make_shared<const model::ProviderConfig>(p.config)});
  auto plan = planner::plan_down(services_of(project), *observed, volumes, providers);
  if (auto r = co_await mark_stopped(plan); !r) co_return r;
  if (auto r = co_await execute(project, plan, progress, timeout); !r) co_return r;
  // Networks not in the record of any step (made by an older version) go too.
  if (auto r = networking_->remove_project(project); !r) co_return r;
  stacks_.erase(project);
  failures_.erase(project);
  unregister_watch(project);
  cluster_leaving_.erase(project);
  co_return controller_->store().remove_project(project);
}

awaitable<Result<void>> Daemon::stop(std::string project, std::vector<std::string> services,
                                     std::optional<std::chrono::seconds> timeout,
                                     Progress progress) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  if (auto r = check_services(project, services); !r) co_return r;
  auto observed = observed_state(*controller_, *networking_, project);
  if (!observed) co_return fail(observed.error());
  auto plan = planner::plan_stop(services_of(project), *observed, services);
  if (auto r = co_await mark_stopped(plan); !r) co_return r;
  co_return co_await execute(project, plan, progress, timeout);
}

awaitable<Result<void>> Daemon::start_services(std::string project, std::vector<std::string> services,
                                               Progress progress) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  if (auto r = check_services(project, services); !r) co_return r;
  auto observed = observed_state(*controller_, *networking_, project);
  if (!observed) co_return fail(observed.error());
  // Created by `create`: from now on the daemon's passes keep them running.
  auto overrides = controller_->store().list_overrides(project);
  if (!overrides) co_return fail(overrides.error());
  for (const auto& o : *overrides)
    if (o.no_start && (services.empty() || std::count(services.begin(), services.end(), o.service)))
      if (auto r = edit_override(project, o.service, [](auto& x) { x.no_start = false; }); !r)
        co_return r;
  co_return co_await execute(project, planner::plan_start(services_of(project), *observed, services),
                             progress);
}

awaitable<Result<void>> Daemon::restart(std::string project, std::vector<std::string> services,
                                        std::optional<std::chrono::seconds> timeout,
                                        Progress progress) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  if (auto r = check_services(project, services); !r) co_return r;
  auto observed = observed_state(*controller_, *networking_, project);
  if (!observed) co_return fail(observed.error());
  co_return co_await execute(
      project, planner::plan_restart(services_of(project), *observed, services), progress, timeout);
}

awaitable<Result<void>> Daemon::rollback(std::string project, std::vector<std::string> services,
                                         Progress progress) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  auto stack = load_registered(project);
  if (!stack) co_return fail(stack.error());
  auto desired = desired_state(*stack, paths_, controller_->images());
  if (!desired) co_return fail(desired.error());
  auto& store = controller_->store();
  std::vector<std::string> chosen = services;
  if (chosen.empty())
    for (const auto& s : desired->services)
      if (auto h = store.list_history(project, s.name); h && !h->empty()) chosen.push_back(s.name);
  if (chosen.empty()) co_return fail("no service of project " + project + " has a previous configuration");
  for (const auto& name : chosen) {
    auto s = std::find_if(desired->services.begin(), desired->services.end(),
                          [&](const auto& d) { return d.name == name; });
    if (s == desired->services.end()) co_return fail("no such service in project " + project + ": " + name);
    // What it ran before what it runs now: the newest configuration in its history that is not
    // its containers' current one.
    auto history = store.list_history(project, name);
    if (!history) co_return fail(history.error());
    auto records = store.list_containers(project);
    if (!records) co_return fail(records.error());
    std::string current;
    for (const auto& r : *records)
      if (r.service == name) current = r.config_hash;
    auto previous = std::find_if(history->begin(), history->end(),
                                 [&](const auto& h) { return h.config_hash != current; });
    if (previous == history->end())
      co_return fail("service " + name + " has no previous configuration to roll back to");
    if (auto r = store.put_pin({project, name, s->config_hash, previous->config_hash}); !r)
      co_return r;
  }
  stacks_[project] = *stack;
  const UpOptions defaults;  // named: see Daemon::reconcile
  auto plan = co_await apply(*stack, defaults, false, progress);
  if (!plan) co_return fail(plan.error());
  co_return Result<void>{};
}

awaitable<Result<void>> Daemon::wait_ready(const spec::Stack& stack, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto records = controller_->store().list_containers(stack.name);
    if (!records) co_return fail(records.error());
    bool ready = true;
    for (const auto& r : *records) {
      if (r.state == S::kExited && r.exit_code != 0 && !r.user_stopped)
        co_return fail(r.name + " exited with code " + std::to_string(r.exit_code) +
                       (r.oom_killed ? " (OOM-killed)" : ""));
      if (r.health == "unhealthy") co_return fail(r.name + " is unhealthy");
      if (r.state == S::kRunning && (r.health.empty() || r.health == "healthy")) continue;
      if (r.state == S::kExited || r.user_stopped) continue;  // completed
      ready = false;
    }
    if (ready) co_return Result<void>{};
    if (Clock::now() >= deadline) co_return fail("timed out waiting for the stack to be ready");
    co_await supervisor_->changed().wait_for(
        std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
  }
}

}  // namespace stack::reconciler
