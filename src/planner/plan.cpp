#include "planner/plan.h"

#include <algorithm>
#include <map>
#include <set>

namespace stack::planner {

namespace {

// "environment, command changed": the fields whose hashes differ, when both sides know them.
std::string changed_fields(const std::map<std::string, std::string>& desired,
                           const std::map<std::string, std::string>& observed) {
  if (desired.empty() || observed.empty()) return "configuration changed";
  std::vector<std::string> changed;
  for (const auto& [k, v] : desired)
    if (auto it = observed.find(k); it == observed.end() || it->second != v) changed.push_back(k);
  for (const auto& [k, v] : observed)
    if (!desired.count(k)) changed.push_back(k);
  if (changed.empty()) return "configuration changed";
  std::string out;
  for (const auto& k : changed) out += (out.empty() ? "" : ", ") + k;
  return out + " changed";
}

}  // namespace

std::string container_name(const std::string& project, const std::string& service, int n) {
  return project + "-" + service + "-" + std::to_string(n);
}

const char* kind_name(Action::Kind kind) {
  switch (kind) {
    case Action::Kind::Create: return "create";
    case Action::Kind::Start: return "start";
    case Action::Kind::Recreate: return "recreate";
    case Action::Kind::Remove: return "remove";
  }
  return "?";
}

Result<std::vector<std::string>> start_order(const std::vector<DesiredService>& services) {
  std::map<std::string, const DesiredService*> by_name;
  for (const auto& s : services) by_name[s.name] = &s;
  enum Mark { None, Visiting, Done };
  std::map<std::string, Mark> mark;
  std::vector<std::string> order, path;
  Error cycle;
  // Depth-first, visiting services in file order so the result is stable.
  auto visit = [&](auto&& self, const DesiredService& s) -> bool {
    if (mark[s.name] == Done) return true;
    if (mark[s.name] == Visiting) {
      auto from = std::find(path.begin(), path.end(), s.name);
      std::string text;
      for (auto it = from; it != path.end(); ++it) text += *it + " -> ";
      cycle = Error{"dependency cycle: " + text + s.name};
      return false;
    }
    mark[s.name] = Visiting;
    path.push_back(s.name);
    for (const auto& dep : s.depends_on) {
      auto it = by_name.find(dep);
      if (it == by_name.end()) {
        cycle = Error{"service \"" + s.name + "\" depends on unknown service \"" + dep + "\""};
        return false;
      }
      if (!self(self, *it->second)) return false;
    }
    path.pop_back();
    mark[s.name] = Done;
    order.push_back(s.name);
    return true;
  };
  for (const auto& s : services)
    if (!visit(visit, s)) return fail(cycle);
  return order;
}

Result<Plan> plan(const std::string& project, const std::vector<DesiredService>& desired,
                  const std::vector<ObservedContainer>& observed, const PlanOptions& options) {
  auto order = start_order(desired);
  if (!order) return fail(order.error());
  std::map<std::string, const DesiredService*> by_name;
  for (const auto& s : desired) by_name[s.name] = &s;

  // The selected services and, transitively, what they depend on.
  std::set<std::string> selected;
  if (options.services.empty()) {
    for (const auto& s : desired) selected.insert(s.name);
  } else {
    std::vector<std::string> todo = options.services;
    while (!todo.empty()) {
      std::string name = todo.back();
      todo.pop_back();
      auto it = by_name.find(name);
      if (it == by_name.end()) return fail("no such service: " + name);
      if (!selected.insert(name).second) continue;
      for (const auto& d : it->second->depends_on) todo.push_back(d);
    }
  }

  std::map<std::string, const ObservedContainer*> existing;
  for (const auto& c : observed) existing[c.name] = &c;

  Plan p;
  for (const auto& name : *order) {
    if (!selected.count(name)) continue;
    const DesiredService& s = *by_name[name];
    for (int n = 1; n <= s.replicas; n++) {
      std::string cname = container_name(project, s.name, n);
      auto it = existing.find(cname);
      using K = Action::Kind;
      if (it == existing.end()) {
        p.actions.push_back({K::Create, cname, s.name, n, "new"});
        continue;
      }
      const ObservedContainer& c = *it->second;
      bool as_desired = c.config_hash == s.config_hash && c.image_id == s.image_id;
      // A user's stop outlasts an edit of the file; a completed job runs again only when
      // what it runs changed.
      if (options.continuous && !c.running && (c.user_stopped || (c.completed && as_desired)))
        p.unchanged.push_back(cname);
      else if (options.force_recreate)
        p.actions.push_back({K::Recreate, cname, s.name, n, "forced"});
      else if (c.config_hash != s.config_hash)
        p.actions.push_back({K::Recreate, cname, s.name, n, changed_fields(s.fields, c.fields)});
      else if (c.image_id != s.image_id)
        p.actions.push_back({K::Recreate, cname, s.name, n, "image changed"});
      else if (!c.running)
        p.actions.push_back({K::Start, cname, s.name, n, "not running"});
      else
        p.unchanged.push_back(cname);
    }
    // Scaling down removes the highest numbers first.
    std::vector<const ObservedContainer*> extra;
    for (const auto& c : observed)
      if (c.service == s.name && c.number > s.replicas) extra.push_back(&c);
    std::sort(extra.begin(), extra.end(),
              [](auto* a, auto* b) { return a->number > b->number; });
    for (auto* c : extra)
      p.actions.push_back({Action::Kind::Remove, c->name, c->service, c->number, "scaled down"});
  }
  for (const auto& c : observed) {
    if (by_name.count(c.service)) continue;
    if (options.remove_orphans)
      p.actions.push_back({Action::Kind::Remove, c.name, c.service, c.number, "orphan"});
    else
      p.orphans.push_back(c.name);
  }
  return p;
}

std::string render(const Plan& plan) {
  std::string out;
  for (const auto& a : plan.actions) {
    char sign = a.kind == Action::Kind::Create ? '+'
                : a.kind == Action::Kind::Remove ? '-'
                : a.kind == Action::Kind::Recreate ? '~'
                                                   : '>';
    out += sign;
    out += ' ';
    out += kind_name(a.kind);
    out += ' ' + a.container + " (" + a.reason + ")\n";
  }
  return out;
}

}  // namespace stack::planner
