// The plans of the commands on existing containers: `down` (every container stopped, dependents
// before what they depend on, removed, then the project's networks), `stop` (stopped on
// purpose, kept), `start` and `restart` (in dependency order, each after its dependencies'
// conditions).
#include <algorithm>
#include <map>
#include <set>

#include "planner/plan.h"
#include "planner/plan_builder.h"

namespace stack::planner {

namespace {

// Stops the containers of OBSERVED (those of ONLY's services when given) in reverse start
// order: a container stops after every container that depends on it. Returns the stop nodes.
std::vector<std::string> order_of(const std::vector<DesiredService>& services) {
  if (auto o = start_order(services)) return *o;
  std::vector<std::string> order;  // a file with a cycle can still be taken down: file order
  for (const auto& s : services) order.push_back(s.name);
  return order;
}

std::map<std::string, size_t> add_stops(PlanBuilder& b, const std::vector<DesiredService>& services,
                                        const ObservedState& observed, bool user,
                                        const std::vector<std::string>& only, const char* reason,
                                        bool running_only = false) {
  std::vector<std::string> order = order_of(services);
  std::map<std::string, std::vector<std::string>> dependents;
  for (const auto& s : services) {
    for (const auto& d : s.depends_on) dependents[d.service].push_back(s.name);
    if (!s.network_service.empty()) dependents[s.network_service].push_back(s.name);
  }
  auto wanted = [&](const std::string& service) {
    return only.empty() || std::count(only.begin(), only.end(), service) > 0;
  };
  std::map<std::string, std::vector<size_t>> stops_of;  // service -> its stop nodes
  std::map<std::string, size_t> stop_node;
  auto stop_all = [&](const std::string& service, const std::vector<size_t>& after) {
    for (const auto& c : observed.containers)
      if (c.service == service && wanted(service) && (!running_only || c.running)) {
        size_t n = b.add(StopContainer{c.name, user}, reason, service, after);
        stops_of[service].push_back(n);
        stop_node[c.name] = n;
      }
  };
  // Containers of services the file no longer has: nothing depends on them.
  std::set<std::string> known(order.begin(), order.end());
  std::set<std::string> unknown;
  for (const auto& c : observed.containers)
    if (!known.count(c.service)) unknown.insert(c.service);
  for (const auto& s : unknown) stop_all(s, {});
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    std::vector<size_t> after;
    for (const auto& d : dependents[*it])
      after.insert(after.end(), stops_of[d].begin(), stops_of[d].end());
    stop_all(*it, after);
  }
  return stop_node;
}

}  // namespace

Plan plan_down(const std::vector<DesiredService>& services, const ObservedState& observed,
               bool volumes, const std::vector<RunProvider>& providers) {
  PlanBuilder b;
  auto stops = add_stops(b, services, observed, true, {}, "down");
  std::vector<size_t> removed;
  for (const auto& c : observed.containers)
    removed.push_back(b.add(RemoveContainer{c.name}, "down", c.service, {stops.at(c.name)}));
  // Providers last, dependents first (as compose's reverse dependency order): the containers
  // that used what a provider made are gone before it is released.
  std::map<std::string, std::vector<std::string>> dependents;
  for (const auto& s : services)
    for (const auto& d : s.depends_on) dependents[d.service].push_back(s.name);
  std::vector<std::string> order = order_of(services);
  std::map<std::string, const RunProvider*> by_service;
  for (const auto& p : providers) by_service[p.service] = &p;
  for (const auto& p : providers)  // those the file no longer names: no order to keep
    if (std::find(order.begin(), order.end(), p.service) == order.end()) order.push_back(p.service);
  std::map<std::string, size_t> provider_down;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    auto p = by_service.find(*it);
    if (p == by_service.end()) continue;
    std::vector<size_t> after = removed;
    for (const auto& d : dependents[*it])
      if (auto n = provider_down.find(d); n != provider_down.end()) after.push_back(n->second);
    RunProvider step = *p->second;
    step.command = "down";
    provider_down[*it] = b.add(std::move(step), "down", *it, after);
  }
  for (const auto& n : observed.networks) b.add(RemoveNetwork{n.name}, "down", "", removed);
  if (volumes)
    for (const auto& v : observed.volumes) b.add(RemoveVolume{v.name}, "down -v", "", removed);
  return std::move(b.plan);
}

Plan plan_stop(const std::vector<DesiredService>& services, const ObservedState& observed,
               const std::vector<std::string>& only) {
  PlanBuilder b;
  add_stops(b, services, observed, true, only, "stop");
  return std::move(b.plan);
}

Plan plan_rm(const std::vector<DesiredService>& services, const ObservedState& observed,
             const std::vector<std::string>& only, bool stop) {
  PlanBuilder b;
  std::map<std::string, size_t> stops;
  if (stop) stops = add_stops(b, services, observed, true, only, "rm --stop", true);
  for (const auto& c : observed.containers) {
    if (!only.empty() && !std::count(only.begin(), only.end(), c.service)) continue;
    auto s = stops.find(c.name);
    if (c.running && s == stops.end()) continue;  // compose's rm leaves a running one
    b.add(RemoveContainer{c.name}, "rm", c.service,
          s == stops.end() ? std::vector<size_t>{} : std::vector<size_t>{s->second});
  }
  return std::move(b.plan);
}

namespace {

// Starts of the containers of ONLY's services (all when empty) that need one (those that do
// not run, or all with EVERY), in start order, each after its own node in AFTER_OF (its stop,
// for a restart) and after the conditions of its dependencies (awaited once per container and
// condition).
void add_starts(PlanBuilder& b, const std::vector<DesiredService>& services,
                const ObservedState& observed, const std::set<std::string>& only, bool every,
                const std::map<std::string, size_t>& after_of, const char* reason) {
  std::map<std::string, const DesiredService*> by_name;
  for (const auto& s : services) by_name[s.name] = &s;
  std::map<std::string, size_t> started, awaited;
  for (const auto& name : order_of(services)) {
    if (!only.empty() && !only.count(name)) continue;
    const DesiredService& s = *by_name[name];
    std::vector<size_t> prereq;
    auto depend = [&](const std::string& dep, Condition cond) {
      for (const auto& c : observed.containers) {
        if (c.service != dep) continue;
        std::string key = c.name + "/" + condition_name(cond);
        if (!awaited.count(key)) {
          std::vector<size_t> after;
          if (auto st = started.find(c.name); st != started.end()) after.push_back(st->second);
          awaited[key] = b.add(AwaitContainer{c.name, cond}, name + " depends on " + dep, dep, after);
        }
        prereq.push_back(awaited[key]);
      }
    };
    bool any = false;
    for (const auto& c : observed.containers) any |= c.service == name && (every || !c.running);
    if (!any) continue;
    for (const auto& d : s.depends_on) depend(d.service, d.condition);
    if (!s.network_service.empty()) depend(s.network_service, Condition::kStarted);
    for (const auto& c : observed.containers) {
      if (c.service != name || (!every && c.running)) continue;
      auto after = prereq;
      if (auto a = after_of.find(c.name); a != after_of.end()) after.push_back(a->second);
      started[c.name] = b.add(StartContainer{c.name}, reason, name, after);
    }
  }
}

}  // namespace

Plan plan_start(const std::vector<DesiredService>& services, const ObservedState& observed,
                const std::vector<std::string>& only) {
  PlanBuilder b;
  add_starts(b, services, observed, {only.begin(), only.end()}, false, {}, "start");
  return std::move(b.plan);
}

Plan plan_restart(const std::vector<DesiredService>& services, const ObservedState& observed,
                  const std::vector<std::string>& only) {
  // The services asked for, and those that follow one of them with `restart: true`.
  std::set<std::string> chosen(only.begin(), only.end());
  if (chosen.empty())
    for (const auto& s : services) chosen.insert(s.name);
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& s : services)
      for (const auto& d : s.depends_on)
        if (d.restart && chosen.count(d.service) && chosen.insert(s.name).second) grew = true;
  }
  PlanBuilder b;
  auto stops = add_stops(b, services, observed, false, {chosen.begin(), chosen.end()}, "restart",
                         true);
  add_starts(b, services, observed, chosen, true, stops, "restart");
  return std::move(b.plan);
}

}  // namespace stack::planner
