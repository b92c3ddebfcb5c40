// The daemon's `scale`, `rm` and the overrides they (and `create`) leave for its own passes
// (state::OverrideRecord): a scaled service stays scaled, a created one stays not started and a
// removed one is not made again, until the next `up` clears them. Loop thread only.
#include <algorithm>

#include "reconciler/daemon.h"
#include "reconciler/observed.h"
#include "reconciler/project_lock.h"
#include "state/store.h"

namespace stack::reconciler {

std::set<std::string> with_dependencies(const spec::Stack& stack,
                                        const std::vector<std::string>& named) {
  std::set<std::string> out;
  std::vector<std::string> todo = named;
  if (todo.empty())
    for (const auto& s : stack.services) todo.push_back(s.name);
  while (!todo.empty()) {
    std::string name = todo.back();
    todo.pop_back();
    if (!out.insert(name).second) continue;
    auto s = std::find_if(stack.services.begin(), stack.services.end(),
                          [&](const auto& x) { return x.name == name; });
    if (s == stack.services.end()) continue;
    for (const auto& d : s->depends_on) todo.push_back(d);
    if (s->network_mode.rfind("service:", 0) == 0) todo.push_back(s->network_mode.substr(8));
  }
  return out;
}

namespace {

spec::Service* service_of(spec::Stack& stack, const std::string& name) {
  auto s = std::find_if(stack.services.begin(), stack.services.end(),
                        [&](const auto& x) { return x.name == name; });
  return s == stack.services.end() ? nullptr : &*s;
}

// Sets SERVICE's replica count to N, or says why it cannot be.
Result<void> scale_service(spec::Stack& stack, const std::string& service, int n) {
  auto* s = service_of(stack, service);
  if (!s) return fail("no such service in project " + stack.name + ": " + service);
  if (n < 0) return fail("service " + service + ": a replica count cannot be negative (" +
                         std::to_string(n) + ")");
  // Replica N's name is container_name itself: two replicas would take one name.
  if (n > 1 && !s->container_name.empty())
    return fail("service " + service + " has container_name \"" + s->container_name +
                "\": it cannot have more than one replica");
  s->replicas = n;
  return {};
}

}  // namespace

Result<void> Daemon::edit_override(const std::string& project, const std::string& service,
                                   const std::function<void(state::OverrideRecord&)>& edit) {
  auto& store = controller_->store();
  auto list = store.list_overrides(project);
  if (!list) return fail(list.error());
  state::OverrideRecord rec{project, service};
  for (const auto& o : *list)
    if (o.service == service) rec = o;
  edit(rec);
  if (rec.replicas < 0 && !rec.no_start && !rec.removed) return store.remove_overrides(project, service);
  return store.put_override(rec);
}

Result<void> Daemon::apply_overrides(spec::Stack& stack, planner::PlanOptions& options) {
  auto list = controller_->store().list_overrides(stack.name);
  if (!list) return fail(list.error());
  for (const auto& o : *list) {
    auto* s = service_of(stack, o.service);
    if (!s) continue;  // no longer in the file: nothing to keep
    if (o.replicas >= 0) (void)scale_service(stack, o.service, o.replicas);
    if (o.no_start) options.no_start.insert(o.service);
    if (o.removed) options.removed.insert(o.service);
  }
  return {};
}

Result<void> Daemon::reset_overrides(const spec::Stack& stack, const UpRequest& request) {
  auto& store = controller_->store();
  const auto& named = request.options.plan.services;
  if (named.empty()) {
    if (auto r = store.remove_overrides(stack.name, ""); !r) return r;
  } else {
    for (const auto& s : with_dependencies(stack, named))
      if (auto r = store.remove_overrides(stack.name, s); !r) return r;
  }
  for (const auto& [service, n] : request.scale)
    if (auto r = edit_override(stack.name, service, [n = n](auto& o) { o.replicas = n; }); !r)
      return r;
  if (request.no_start)
    for (const auto& s : with_dependencies(stack, named))
      if (auto r = edit_override(stack.name, s, [](auto& o) { o.no_start = true; }); !r) return r;
  // `up --no-deps web`: the daemon's passes, which bring up what web depends on, do not make
  // the containers of those this up left out either.
  if (request.options.plan.no_deps && !named.empty())
    for (const auto& s : with_dependencies(stack, named))
      if (!std::count(named.begin(), named.end(), s))
        if (auto r = edit_override(stack.name, s, [](auto& o) { o.removed = true; }); !r) return r;
  return {};
}

Result<void> Daemon::hold_unchanged(const std::string& project,
                                    const std::map<std::string, std::string>& file_hashes) {
  auto& store = controller_->store();
  auto records = store.list_containers(project);
  if (!records) return fail(records.error());
  std::set<std::string> differ;
  for (const auto& r : *records)
    if (auto h = file_hashes.find(r.service); h != file_hashes.end() && r.config_hash != h->second)
      differ.insert(r.service);
  for (const auto& s : differ)
    if (auto r = store.put_pin({project, s, file_hashes.at(s), ""}); !r) return r;
  return {};
}

// `up --scale` and `up --no-start` change the stack and the plan's options before the desired
// state is made (daemon_ops.cpp calls this from `up`).
Result<void> prepare_up(spec::Stack& stack, UpRequest& request) {
  for (const auto& [service, n] : request.scale)
    if (auto r = scale_service(stack, service, n); !r) return fail(r.error().wrap("--scale"));
  if (request.no_start)
    for (const auto& s : stack.services) request.options.plan.no_start.insert(s.name);
  return {};
}

awaitable<Result<void>> Daemon::scale(std::string project, std::map<std::string, int> replicas,
                                      bool no_deps, Progress progress) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  auto stack = load_registered(project);
  if (!stack) co_return fail(stack.error());
  if (replicas.empty()) co_return fail("scale: no SERVICE=N given");
  // Every count checked before any is recorded.
  for (const auto& [service, n] : replicas)
    if (auto r = scale_service(*stack, service, n); !r) co_return r;
  UpOptions options;
  for (const auto& [service, n] : replicas) {
    auto r = edit_override(project, service, [n = n](auto& o) {
      o.replicas = n;
      o.no_start = false;  // asked to run N: they start
      o.removed = false;
    });
    if (!r) co_return r;
    options.plan.services.push_back(service);
  }
  options.plan.no_deps = no_deps;
  stacks_[project] = *stack;
  auto plan = co_await apply(*stack, options, false, progress);
  if (!plan) co_return fail(plan.error());
  co_return Result<void>{};
}

awaitable<Result<std::vector<std::string>>> Daemon::remove_containers(
    std::string project, std::vector<std::string> services, bool stop, Progress progress,
    std::vector<std::string> containers) {
  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, project);
  if (auto r = check_services(project, services); !r) co_return fail(r.error());
  auto observed = observed_state(*controller_, *networking_, project);
  if (!observed) co_return fail(observed.error());
  if (!containers.empty()) {
    std::erase_if(observed->containers, [&](const auto& c) {
      return !std::count(containers.begin(), containers.end(), c.name);
    });
    if (observed->containers.empty()) co_return fail("no such container: " + containers.front());
  }
  auto plan = planner::plan_rm(services_of(project), *observed, services, stop);
  std::vector<std::string> removed;
  std::set<std::string> touched;
  for (const auto& n : plan.nodes)
    if (auto* rm = std::get_if<planner::RemoveContainer>(&n.step)) {
      removed.push_back(rm->name);
      touched.insert(n.service);
    }
  // Recorded first: a removal that fails half-way leaves no container for a pass to remake.
  for (const auto& s : containers.empty() ? touched : std::set<std::string>{})
    if (auto r = edit_override(project, s, [](auto& o) { o.removed = true; }); !r) co_return fail(r.error());
  if (auto r = co_await mark_stopped(plan); !r) co_return fail(r.error());
  if (auto r = co_await execute(project, plan, progress); !r) co_return fail(r.error());
  co_return removed;
}

}  // namespace stack::reconciler
