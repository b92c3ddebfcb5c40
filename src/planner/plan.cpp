// The diff of `up`: for each network and each replica of each selected service, what to do
// (nothing, create, start, recreate, restart), then the steps of it as a DAG — networks before
// the containers on them, a dependency's await before its dependents start, an update's
// batches one after another, and its order (stop-first or start-first) spelled out step by step.
#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "planner/plan.h"
#include "planner/plan_builder.h"
#include "planner/pull_policy.h"

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

enum class Todo { kNone, kCreate, kStart, kRecreate, kRestart };

struct Replica {
  std::string name;
  int number = 1;
  Todo todo = Todo::kNone;
  std::string reason;
  bool force_stop_first = false;  // its network is made again: the old one cannot keep serving
  const ObservedContainer* observed = nullptr;
};

// The services that `up SERVICE...` touches: those named and, transitively, what they need.
Result<std::set<std::string>> selection(const DesiredState& desired, const PlanOptions& options) {
  std::set<std::string> selected;
  std::map<std::string, const DesiredService*> by_name;
  for (const auto& s : desired.services) by_name[s.name] = &s;
  if (options.services.empty()) {
    for (const auto& s : desired.services) selected.insert(s.name);
    return selected;
  }
  std::vector<std::string> todo = options.services;
  while (!todo.empty()) {
    std::string name = todo.back();
    todo.pop_back();
    auto it = by_name.find(name);
    if (it == by_name.end()) return fail("no such service: " + name);
    if (!selected.insert(name).second || options.no_deps) continue;
    for (const auto& d : it->second->depends_on) todo.push_back(d.service);
    if (!it->second->network_service.empty()) todo.push_back(it->second->network_service);
  }
  return selected;
}

// `up --always-recreate-deps`: the services a selected one depends on, transitively.
std::set<std::string> dependencies(const DesiredState& desired, const std::set<std::string>& selected) {
  std::map<std::string, const DesiredService*> by_name;
  for (const auto& s : desired.services) by_name[s.name] = &s;
  std::set<std::string> out;
  std::vector<std::string> todo(selected.begin(), selected.end());
  while (!todo.empty()) {
    auto it = by_name.find(todo.back());
    todo.pop_back();
    if (it == by_name.end()) continue;
    std::vector<std::string> needs;
    for (const auto& d : it->second->depends_on) needs.push_back(d.service);
    if (!it->second->network_service.empty()) needs.push_back(it->second->network_service);
    for (const auto& n : needs)
      if (out.insert(n).second) todo.push_back(n);
  }
  return out;
}

class UpPlanner {
 public:
  UpPlanner(const DesiredState& d, const ObservedState& o, const PlanOptions& opts)
      : desired_(d), observed_(o), options_(opts) {
    for (const auto& s : d.services) services_[s.name] = &s;
    for (const auto& c : o.containers) containers_[c.name] = &c;
    for (const auto& n : o.networks) observed_networks_[n.name] = &n;
    for (const auto& n : d.networks) network_hash_[n.name] = n.config_hash;
  }

  Result<Plan> run() {
    auto order = start_order(desired_.services);
    if (!order) return fail(order.error());
    auto selected = selection(desired_, options_);
    if (!selected) return fail(selected.error());
    order_ = std::move(*order);
    selected_ = std::move(*selected);
    if (options_.always_recreate_deps) recreate_deps_ = dependencies(desired_, selected_);
    classify_networks();
    for (const auto& name : order_)
      if (selected_.count(name)) classify_service(*services_[name]);
    if (auto r = emit_pulls(); !r) return fail(r.error());
    emit_network_teardown();
    emit_networks();
    emit_volumes();
    for (const auto& name : order_)
      if (selected_.count(name)) emit_service(*services_[name]);
    emit_orphans();
    emit_released_networks();
    return std::move(b_.plan);
  }

 private:
  void classify_networks() {
    for (const auto& n : desired_.networks) {
      auto it = observed_networks_.find(n.name);
      if (it == observed_networks_.end()) network_reason_[n.name] = "new";
      else if (!it->second->config_hash.empty() && it->second->config_hash != n.config_hash)
        network_reason_[n.name] = "definition changed", remade_.insert(n.name);
      else if (!it->second->present) network_reason_[n.name] = "bridge missing";
    }
  }

  // One pull per image and platform the selected services need, as pull_policy (or `up --pull`)
  // decides; a service whose image is missing and may not be pulled stops the plan. The
  // continuous reconcile (a file edit, a resync, the retries of a failed pass) pulls nothing:
  // pulls are an explicit `up`'s or `stack pull`'s, so a registry that is down is not asked
  // again every few seconds, and a missing image is reported as missing.
  Result<void> emit_pulls() {
    std::map<std::string, size_t> pulls;  // "ref|platform" -> node
    for (const auto& name : order_) {
      if (!selected_.count(name)) continue;
      const DesiredService& s = *services_[name];
      if (auto r = emit_mount_pulls(s, pulls); !r) return r;
      if (s.image.empty()) continue;
      if (s.build) {
        if (auto r = emit_build(s); !r) return r;
        continue;
      }
      std::string policy = options_.pull.empty() ? s.pull_policy : options_.pull;
      std::string where = (s.image_where.empty() ? "" : s.image_where + ": ") + "service \"" +
                          s.name + "\": image \"" + s.image + "\"";
      auto action = pull_action(policy, s.image_present, s.last_pulled, options_.now);
      if (!action) return fail(action.error().wrap(where + ": pull_policy"));
      if (options_.continuous && s.image_present) continue;
      if (options_.continuous)
        return fail(where + " is not in the image store (pull it with: stack pull " + s.name +
                    ", or stack up)");
      switch (*action) {
        case PullAction::use_local: continue;
        case PullAction::fail_missing:
          return fail(where + " is not in the image store and its pull_policy is " + policy +
                      " (pull it with: stack pull " + s.name + ")");
        case PullAction::build:
          if (s.image_present) continue;
          return fail(where + " is not in the image store and its pull_policy is build "
                              "without a build section");
        case PullAction::pull: break;
      }
      std::string key = s.image + "|" + s.platform;
      auto it = pulls.find(key);
      if (it == pulls.end())
        it = pulls.emplace(key, b_.add(PullImage{s.image, s.platform},
                                       s.image_present ? "policy " + policy : "missing", s.name, {}))
                 .first;
      pull_node_[s.name] = it->second;
    }
    return {};
  }

  // The images of S's `type: image` mounts, each decided by S's pull_policy as its own image
  // is; the service's creates follow their pulls.
  Result<void> emit_mount_pulls(const DesiredService& s, std::map<std::string, size_t>& pulls) {
    std::string policy = options_.pull.empty() ? s.pull_policy : options_.pull;
    for (const auto& m : s.mount_images) {
      std::string where = (s.image_where.empty() ? "" : s.image_where + ": ") + "service \"" +
                          s.name + "\": image mount \"" + m.ref + "\"";
      auto action = pull_action(policy == "build" ? "missing" : policy, m.present, m.last_pulled,
                                options_.now);
      if (!action) return fail(action.error().wrap(where + ": pull_policy"));
      if (options_.continuous && m.present) continue;
      if (options_.continuous)
        return fail(where + " is not in the image store (pull it with: stack pull, or stack up)");
      if (*action == PullAction::use_local) continue;
      if (*action == PullAction::fail_missing)
        return fail(where + " is not in the image store and its pull_policy is " + policy);
      std::string key = m.ref + "|" + s.platform;
      auto it = pulls.find(key);
      if (it == pulls.end())
        it = pulls.emplace(key, b_.add(PullImage{m.ref, s.platform},
                                       m.present ? "policy " + policy : "missing", s.name, {}))
                 .first;
      mount_pull_nodes_.emplace(s.name, it->second);
    }
    return {};
  }

  // A service with `build:` has its image built, never pulled: when it is missing, with
  // `up --build`, and always with pull_policy build. One build per image name, however many
  // services use it. The continuous reconcile builds nothing, as it pulls nothing.
  Result<void> emit_build(const DesiredService& s) {
    std::string where = (s.image_where.empty() ? "" : s.image_where + ": ") + "service \"" +
                        s.name + "\": image \"" + s.image + "\"";
    if (options_.built) return {};
    if (options_.continuous) {
      if (s.image_present) return {};
      return fail(where + " is not in the image store (build it with: stack build " + s.name +
                  ", or stack up)");
    }
    std::string reason = !s.image_present          ? "missing"
                         : s.pull_policy == "build" ? "pull_policy build"
                         : options_.build           ? "up --build"
                                                    : "";
    if (reason.empty()) return {};
    auto it = builds_.find(s.image);
    if (it == builds_.end())
      it = builds_.emplace(s.image, b_.add(BuildImage{s.image, {}, s.build}, reason, s.name, {}))
               .first;
    std::get<BuildImage>(b_.plan.nodes[it->second].step).services.push_back(s.name);
    pull_node_[s.name] = it->second;
    return {};
  }

  // Why a running container must be made again, or "".
  std::string recreate_reason(const DesiredService& s, const ObservedContainer& c) {
    if (options_.force_recreate) return "forced";
    if (recreate_deps_.count(s.name)) return "dependency, always recreated";
    if (c.config_hash != s.config_hash) return changed_fields(s.fields, c.fields);
    if (!s.image_id.empty() && c.image_id != s.image_id) return "image changed";
    for (const auto& net : s.networks) {
      if (remade_.count(net)) return "network " + net + " changed";
      // Made again since this container joined it (an update interrupted half-way).
      auto joined = c.networks.find(net);
      if (joined != c.networks.end() && !joined->second.empty() &&
          joined->second != network_hash_[net])
        return "network " + net + " changed";
    }
    return "";
  }

  void classify_service(const DesiredService& s) {
    auto& replicas = replicas_[s.name];
    for (int n = 1; n <= s.replicas; n++) {
      Replica r;
      r.name = replica_name(desired_.project, s, n);
      r.number = n;
      if (!here(s, n)) {  // another node's: a placeholder keeps replicas[n - 1] replica n
        replicas.push_back(r);
        continue;
      }
      auto it = containers_.find(r.name);
      if (it == containers_.end()) {
        if (!options_.removed.count(s.name)) r.todo = Todo::kCreate, r.reason = "new";
        replicas.push_back(r);
        continue;
      }
      const ObservedContainer& c = *it->second;
      r.observed = &c;
      bool as_desired = c.config_hash == s.config_hash && (s.image_id.empty() || c.image_id == s.image_id);
      std::string why = recreate_reason(s, c);
      // --no-recreate keeps what exists, changed or not (a forced recreate still goes).
      if (options_.no_recreate && !options_.force_recreate && !recreate_deps_.count(s.name))
        why.clear();
      for (const auto& net : s.networks)
        if (remade_.count(net)) r.force_stop_first = true;
      // A user's stop outlasts an edit of the file; a completed job runs again only when what
      // it runs changed.
      if (options_.continuous && !c.running && (c.user_stopped || (c.completed && as_desired)))
        r.todo = Todo::kNone;
      else if (!why.empty() && options_.held.count(s.name)) r.todo = Todo::kNone;  // paused
      else if (!why.empty()) r.todo = Todo::kRecreate, r.reason = why;
      else if (!c.running) r.todo = Todo::kStart, r.reason = "not running";
      else if (joined_namespace_gone(s, c)) r.todo = Todo::kRestart, r.reason = joined_reason(s);
      if (options_.no_start.count(s.name) && (r.todo == Todo::kStart || r.todo == Todo::kRestart))
        r.todo = Todo::kNone;
      replicas.push_back(r);
    }
    // network_mode service:NAME joins NAME's first replica: started anew, it takes the joiners
    // along (their namespace is the old one's).
    if (!s.network_service.empty() && starts_anew(s.network_service, 1))
      for (auto& r : replicas)
        if (r.todo == Todo::kNone && r.observed && r.observed->running)
          r.todo = Todo::kRestart, r.reason = joined_reason(s);
    // depends_on restart: true — a dependency started anew restarts its dependents.
    for (const auto& d : s.depends_on) {
      if (!d.restart || !services_.count(d.service)) continue;
      bool restarted = false;
      for (int n = 1; n <= services_[d.service]->replicas; n++) restarted |= starts_anew(d.service, n);
      if (!restarted) continue;
      for (auto& r : replicas)
        if (r.todo == Todo::kNone && r.observed && r.observed->running)
          r.todo = Todo::kRestart, r.reason = "dependency " + d.service + " restarted";
    }
  }

  // The container whose namespaces S joins: the first replica of its network_service (by its
  // container_name when it has one).
  std::string joined_container(const DesiredService& s) {
    auto it = services_.find(s.network_service);
    return it != services_.end() ? replica_name(desired_.project, *it->second, 1)
                                 : container_name(desired_.project, s.network_service, 1);
  }

  std::string joined_reason(const DesiredService& s) {
    return "joins the network namespace of " + joined_container(s) + ", started anew";
  }

  bool joined_namespace_gone(const DesiredService& s, const ObservedContainer& c) {
    if (s.network_service.empty()) return false;
    auto target = containers_.find(joined_container(s));
    return target != containers_.end() && target->second->running && c.joined_started_at != 0 &&
           c.joined_started_at != target->second->started_at;
  }

  static bool here(const DesiredService& s, int n) { return !s.slots || s.slots->count(n) > 0; }

  // Whether replica N of SERVICE gets a new process in this plan (created, started, recreated).
  bool starts_anew(const std::string& service, int n) {
    auto it = replicas_.find(service);
    if (it == replicas_.end() || n > static_cast<int>(it->second.size())) return false;
    return it->second[n - 1].todo != Todo::kNone;
  }

  // Containers on a network made again are stopped and removed before it is.
  void emit_network_teardown() {
    for (const auto& name : order_) {
      if (!selected_.count(name)) continue;
      for (auto& r : replicas_[name]) {
        if (r.todo != Todo::kRecreate || !r.force_stop_first) continue;
        size_t stop = b_.add(StopContainer{r.name}, r.reason, name, {});
        teardown_[r.name] = b_.add(RemoveContainer{r.name, true}, r.reason, name, {stop});
      }
    }
  }

  void emit_networks() {
    for (const auto& n : desired_.networks) {
      auto why = network_reason_.find(n.name);
      if (why == network_reason_.end()) continue;
      std::vector<size_t> after;
      if (remade_.count(n.name))
        for (const auto& [container, node] : teardown_) after.push_back(node);
      network_ready_[n.name] =
          b_.add(EnsureNetwork{n.name, n.config, remade_.count(n.name) > 0}, why->second, "", after);
    }
  }

  // A named volume not recorded, or whose directory is gone, is made before any container
  // that mounts it is created.
  void emit_volumes() {
    std::map<std::string, const ObservedVolume*> observed;
    for (const auto& v : observed_.volumes) observed[v.name] = &v;
    for (const auto& v : desired_.volumes) {
      auto it = observed.find(v.name);
      if (it != observed.end() && it->second->present) continue;
      volume_ready_[v.name] = b_.add(EnsureVolume{v.name, v.config},
                                     it == observed.end() ? "new" : "directory missing", "", {});
    }
  }

  // What a container of S must follow before it starts: its networks, and its dependencies'
  // conditions (one await node per dependency container and condition, shared).
  // Without STARTS (created, not started), only what its creates need: no dependency's await.
  std::vector<size_t> start_prerequisites(const DesiredService& s, bool starts = true) {
    std::vector<size_t> after;
    if (auto pull = pull_node_.find(s.name); pull != pull_node_.end()) after.push_back(pull->second);
    for (auto [m, end] = mount_pull_nodes_.equal_range(s.name); m != end; ++m)
      after.push_back(m->second);
    for (const auto& net : s.networks)
      if (auto it = network_ready_.find(net); it != network_ready_.end()) after.push_back(it->second);
    for (const auto& vol : s.volumes)
      if (auto it = volume_ready_.find(vol); it != volume_ready_.end()) after.push_back(it->second);
    if (!starts) return after;
    auto depend = [&](const std::string& service, Condition cond, bool required) {
      if (!services_.count(service)) return;
      if (options_.no_deps && !selected_.count(service)) return;  // not ours to wait for
      if (auto run = provider_run_.find(service); run != provider_run_.end())
        after.push_back(run->second);
      for (int n = 1; n <= services_[service]->replicas; n++) {
        // A replica on another node is not awaited: depends_on holds within a node.
        if (!here(*services_[service], n)) continue;
        std::string target = replica_name(desired_.project, *services_[service], n);
        auto key = target + "/" + condition_name(cond);
        auto found = awaits_.find(key);
        if (found == awaits_.end()) {
          std::vector<size_t> deps;
          if (auto st = started_.find(target); st != started_.end()) deps.push_back(st->second);
          found = awaits_.emplace(key, b_.add(AwaitContainer{target, cond, required},
                                              s.name + " depends on " + service, service, deps))
                      .first;
        }
        after.push_back(found->second);
      }
    };
    for (const auto& d : s.depends_on) depend(d.service, d.condition, d.required);
    if (!s.network_service.empty()) depend(s.network_service, Condition::kStarted, true);
    return after;
  }

  // A provider service has no container: an explicit up runs its binary, after the providers
  // it depends on; what depends on it waits for that run (start_prerequisites).
  void emit_provider(const DesiredService& s) {
    if (options_.continuous || options_.providers_done) return;
    std::vector<size_t> after;
    for (const auto& d : s.depends_on)
      if (auto it = provider_run_.find(d.service); it != provider_run_.end()) after.push_back(it->second);
    provider_run_[s.name] = b_.add(RunProvider{s.name, "up", s.provider}, "up", s.name, after);
  }

  void emit_service(const DesiredService& s) {
    if (s.provider) return emit_provider(s);
    auto& replicas = replicas_[s.name];
    bool touched = std::any_of(replicas.begin(), replicas.end(),
                               [](const Replica& r) { return r.todo != Todo::kNone; });
    if (touched) {
      auto prereq = start_prerequisites(s, !options_.no_start.count(s.name));
      emit_replicas(s, replicas, prereq);
    }
    for (const auto& r : replicas)
      if (r.todo == Todo::kNone && r.observed) b_.plan.unchanged.push_back(r.name);
    if (s.name != options_.one_off) emit_scale_down(s);
  }

  void emit_replicas(const DesiredService& s, std::vector<Replica>& replicas,
                     const std::vector<size_t>& prereq) {
    // New containers and plain starts go at once; replacements of running ones go in batches
    // of `parallelism`, each batch after the previous one (and its delay).
    size_t batch_size = s.update.parallelism > 0 ? static_cast<size_t>(s.update.parallelism)
                                                 : replicas.size();
    std::vector<size_t> previous_batch;
    size_t in_batch = 0;
    std::vector<size_t> this_batch;
    for (auto& r : replicas) {
      auto record = static_cast<size_t>(r.number - 1) < s.records.size() ? s.records[r.number - 1] : nullptr;
      switch (r.todo) {
        case Todo::kNone: break;
        case Todo::kCreate: {
          size_t c = b_.add(CreateContainer{r.name, s.name, r.number, record}, r.reason, s.name, prereq);
          if (options_.no_start.count(s.name)) break;
          started_[r.name] = b_.add(StartContainer{r.name}, r.reason, s.name, with(prereq, c));
          break;
        }
        case Todo::kStart:
          started_[r.name] = b_.add(StartContainer{r.name}, r.reason, s.name, prereq);
          break;
        case Todo::kRestart:
        case Todo::kRecreate: {
          if (in_batch == batch_size) {
            previous_batch = this_batch;
            if (s.update.delay.count() > 0)
              previous_batch = {b_.add(Delay{s.update.delay}, "update delay", s.name, previous_batch)};
            this_batch.clear();
            in_batch = 0;
          }
          in_batch++;
          auto after = prereq;
          after.insert(after.end(), previous_batch.begin(), previous_batch.end());
          size_t last = r.todo == Todo::kRestart ? emit_restart(s, r, after)
                                                 : emit_recreate(s, r, record, after);
          this_batch.push_back(last);
          break;
        }
      }
    }
  }

  static int tolerated(const DesiredService& s) {
    return static_cast<int>(s.update.max_failure_ratio * s.replicas);
  }

  static std::vector<size_t> with(std::vector<size_t> v, size_t extra) {
    v.push_back(extra);
    return v;
  }

  size_t emit_restart(const DesiredService& s, const Replica& r, const std::vector<size_t>& after) {
    size_t stop = b_.add(StopContainer{r.name}, r.reason, s.name, after);
    started_[r.name] = b_.add(StartContainer{r.name}, r.reason, s.name, {stop});
    return started_[r.name];
  }

  size_t emit_recreate(const DesiredService& s, const Replica& r,
                       std::shared_ptr<const model::RuntimeRecord> record,
                       const std::vector<size_t>& after) {
    bool no_start = options_.no_start.count(s.name) > 0;
    bool start_first = s.update.order == UpdatePolicy::Order::kStartFirst && !r.force_stop_first &&
                       r.observed && r.observed->running && !no_start;
    CreateContainer create{r.name, s.name, r.number, std::move(record)};
    if (!start_first) {
      std::vector<size_t> gone = after;
      if (auto t = teardown_.find(r.name); t != teardown_.end()) {
        gone.push_back(t->second);
      } else {
        size_t stop = b_.add(StopContainer{r.name}, r.reason, s.name, after);
        gone = {b_.add(RemoveContainer{r.name, true}, r.reason, s.name, {stop})};
      }
      size_t c = b_.add(std::move(create), r.reason, s.name, gone);
      if (no_start) return c;
      started_[r.name] = b_.add(StartContainer{r.name}, r.reason, s.name, with(after, c));
      if (s.update.monitor.count() == 0 || !r.observed) return started_[r.name];
      // Watched for MONITOR after its start: a failure then is the update's (failure_action).
      AwaitContainer watch{r.name, s.healthcheck ? Condition::kHealthy : Condition::kStarted, true,
                           s.update.monitor, UpdateCheck{"", s.update.failure_action, tolerated(s)}};
      return b_.add(std::move(watch), r.reason, s.name, {started_[r.name]});
    }
    // start-first: the old one serves until the new one is up (healthy when it has a health
    // check), then traffic moves in one step and the old one goes.
    std::string old = r.name + "-old";
    std::string why = r.reason + ", start-first";
    size_t rename = b_.add(RenameContainer{r.name, old}, why, s.name, after);
    size_t c = b_.add(std::move(create), why, s.name, {rename});
    size_t start = b_.add(StartContainer{r.name, false}, why, s.name, with(after, c));
    started_[r.name] = start;
    size_t ready = b_.add(AwaitContainer{r.name, s.healthcheck ? Condition::kHealthy : Condition::kStarted,
                                         true, s.update.monitor,
                                         UpdateCheck{old, s.update.failure_action, tolerated(s)}},
                          why, s.name, {start});
    size_t sw = b_.add(SwitchTraffic{old, r.name}, why, s.name, {ready});
    size_t stop = b_.add(StopContainer{old}, why, s.name, {sw});
    return b_.add(RemoveContainer{old, true}, why, s.name, {stop});
  }

  void emit_scale_down(const DesiredService& s) {
    std::vector<const ObservedContainer*> extra;
    for (const auto& c : observed_.containers)
      if (c.service == s.name && (c.number > s.replicas || !here(s, c.number))) extra.push_back(&c);
    std::sort(extra.begin(), extra.end(), [](auto* a, auto* b) { return a->number > b->number; });
    for (auto* c : extra) {
      const char* why = c->number > s.replicas ? "scaled down" : "slot moved to another node";
      size_t stop = b_.add(StopContainer{c->name}, why, s.name, {});
      b_.add(RemoveContainer{c->name}, why, s.name, {stop});
    }
  }

  void emit_orphans() {
    for (const auto& c : observed_.containers) {
      if (services_.count(c.service)) continue;
      if (!options_.remove_orphans) {
        b_.plan.orphans.push_back(c.name);
        continue;
      }
      size_t stop = b_.add(StopContainer{c.name}, "orphan", c.service, {});
      b_.add(RemoveContainer{c.name}, "orphan", c.service, {stop});
    }
  }

  // A released network (DesiredState::released_networks) goes after the removal of every
  // container of the project on it; one that a container this plan keeps still joins stays.
  void emit_released_networks() {
    std::map<std::string, size_t> removal;  // container -> its RemoveContainer node
    for (size_t i = 0; i < b_.plan.nodes.size(); ++i)
      if (const auto* r = std::get_if<RemoveContainer>(&b_.plan.nodes[i].step))
        removal[r->name] = i;
    for (const auto& n : observed_.networks) {
      if (!desired_.released_networks.count(n.name)) continue;
      std::vector<size_t> after;
      bool kept = false;
      for (const auto& c : observed_.containers) {
        if (!c.networks.count(n.name)) continue;
        auto it = removal.find(c.name);
        if (it == removal.end()) kept = true;
        else after.push_back(it->second);
      }
      if (!kept) b_.add(RemoveNetwork{n.name}, "no replica here", "", after);
    }
  }

  const DesiredState& desired_;
  const ObservedState& observed_;
  const PlanOptions& options_;
  PlanBuilder b_;
  std::vector<std::string> order_;
  std::set<std::string> selected_;
  std::map<std::string, const DesiredService*> services_;
  std::map<std::string, const ObservedContainer*> containers_;
  std::map<std::string, const ObservedNetwork*> observed_networks_;
  std::map<std::string, size_t> volume_ready_;  // volume -> its EnsureVolume node
  std::map<std::string, std::string> network_hash_;     // desired
  std::map<std::string, std::string> network_reason_;   // networks to ensure, and why
  std::set<std::string> remade_;                        // networks made again
  std::map<std::string, size_t> network_ready_;         // network -> its ensure node
  std::map<std::string, size_t> teardown_;              // container -> its removal before a remade network
  std::map<std::string, std::vector<Replica>> replicas_;
  std::map<std::string, size_t> started_;               // container -> its start node
  std::map<std::string, size_t> awaits_;                // "container/condition" -> await node
  std::map<std::string, size_t> pull_node_;             // service -> the pull (or build) of its image
  std::multimap<std::string, size_t> mount_pull_nodes_;  // service -> pulls of its image mounts
  std::map<std::string, size_t> builds_;                // image -> its build
  std::map<std::string, size_t> provider_run_;          // provider service -> its RunProvider
  std::set<std::string> recreate_deps_;                 // --always-recreate-deps: recreated
};

}  // namespace

std::string container_name(const std::string& project, const std::string& service, int n) {
  return project + "-" + service + "-" + std::to_string(n);
}

std::string replica_name(const std::string& project, const DesiredService& s, int n) {
  return s.container_name.empty() ? container_name(project, s.name, n) : s.container_name;
}

Result<std::vector<std::string>> start_order(const std::vector<DesiredService>& services) {
  std::map<std::string, const DesiredService*> by_name;
  for (const auto& s : services) by_name[s.name] = &s;
  enum Mark { kNone, kVisiting, kDone };
  std::map<std::string, Mark> mark;
  std::vector<std::string> order, path;
  Error cycle;
  // Depth-first, visiting services in file order so the result is stable.
  auto visit = [&](auto&& self, const DesiredService& s) -> bool {
    if (mark[s.name] == kDone) return true;
    if (mark[s.name] == kVisiting) {
      auto from = std::find(path.begin(), path.end(), s.name);
      std::string text;
      for (auto it = from; it != path.end(); ++it) text += *it + " -> ";
      cycle = Error{"dependency cycle: " + text + s.name};
      return false;
    }
    mark[s.name] = kVisiting;
    path.push_back(s.name);
    std::vector<std::string> needs;
    for (const auto& d : s.depends_on) needs.push_back(d.service);
    if (!s.network_service.empty()) needs.push_back(s.network_service);
    for (const auto& dep : needs) {
      auto it = by_name.find(dep);
      if (it == by_name.end()) {
        cycle = Error{"service \"" + s.name + "\" depends on unknown service \"" + dep + "\""};
        return false;
      }
      if (!self(self, *it->second)) return false;
    }
    path.pop_back();
    mark[s.name] = kDone;
    order.push_back(s.name);
    return true;
  };
  for (const auto& s : services)
    if (!visit(visit, s)) return fail(cycle);
  return order;
}

Result<Plan> plan(const DesiredState& desired, const ObservedState& observed,
                  const PlanOptions& options) {
  return UpPlanner(desired, observed, options).run();
}

}  // namespace stack::planner
