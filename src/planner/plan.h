// The planner: from what a project should be and what it is, the plan that makes the host
// match — a DAG of typed steps, each with its reason and the steps it must follow. A pure
// function of its inputs (no syscalls, no clock, no I/O), so the plan `stack plan` prints is the
// plan `stack up` executes, networks included; the executor never re-derives an order.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"
#include "planner/state.h"

namespace stack::planner {

// Pulls REF for PLATFORM into the image store; the creates of the services using it follow it.
// REASON says why: "missing", "policy always", "policy daily", ...
struct PullImage {
  std::string ref;
  std::string platform;
};
// Builds CONFIG's image with stack's build engine, one step per image however many services
// use it; their creates follow it. REASON says why: "missing", "up --build", "pull_policy build".
struct BuildImage {
  std::string image;
  std::vector<std::string> services;
  std::shared_ptr<const model::BuildConfig> config;
};
// Makes a network, or makes it again: REASON says which (new, bridge missing, changed).
struct EnsureNetwork {
  std::string name;
  std::shared_ptr<const model::NetworkConfig> config;
  bool recreate = false;  // its definition changed: removed first, then made anew
};
struct RemoveNetwork {
  std::string name;
};
// Makes a named volume's directory (and mounts it, with the local driver's options) and
// records it; a volume already there is kept with its data.
struct EnsureVolume {
  std::string name;
  std::shared_ptr<const model::VolumeConfig> config;
};
// `down -v`: a volume no container uses any more, removed with its data.
struct RemoveVolume {
  std::string name;
};
// Records the container and prepares its directory; nothing runs yet.
struct CreateContainer {
  std::string name;
  std::string service;
  int number = 1;
  std::shared_ptr<const model::RuntimeRecord> record;
};
// Namespaces made, networks attached, the service started, supervision begun. Without SERVE
// (the new container of a start-first update) its ports and names wait for SwitchTraffic.
struct StartContainer {
  std::string name;
  bool serve = true;
};
// Waits until NAME has reached CONDITION (and, with MONITOR, stays there that long). For a
// replica an update replaced, UPDATE says what it replaced and what to do if it fails.
struct UpdateCheck {
  std::string previous;  // start-first: the old container, serving under this name; "" stop-first
  UpdatePolicy::FailureAction on_failure = UpdatePolicy::FailureAction::kPause;
  int tolerated = 0;  // failed replicas of the service this pass lets go on (max_failure_ratio)
};
struct AwaitContainer {
  std::string name;
  Condition condition = Condition::kStarted;
  bool required = true;
  milliseconds monitor{0};
  std::optional<UpdateCheck> update;
};
// Its stop signal, its grace period, then SIGKILL; marked stopped on purpose when USER is set.
struct StopContainer {
  std::string name;
  bool user = false;
};
// REPLACED: an update's old container, whose record is kept as the service's previous
// configuration (for `stack rollback`).
struct RemoveContainer {
  std::string name;
  bool replaced = false;
};
// A start-first update keeps the old container running under another name while the new one
// takes its name.
struct RenameContainer {
  std::string from, to;
};
// Published ports and DNS names move from FROM to TO at once.
struct SwitchTraffic {
  std::string from, to;
};
// `deploy.update_config.delay` between two batches of an update.
struct Delay {
  milliseconds duration{0};
};

// A provider service (compose's `provider:`): its binary run as
// `TYPE compose --project-name P COMMAND --opt=value... SERVICE`, COMMAND "up" or "down". Only an
// explicit `up` or `down` plans it; the continuous reconcile never runs a provider again.
struct RunProvider {
  std::string service;
  std::string command;
  std::shared_ptr<const model::ProviderConfig> config;
};

using Step = std::variant<EnsureNetwork, RemoveNetwork, CreateContainer, StartContainer,
                          AwaitContainer, StopContainer, RemoveContainer, RenameContainer,
                          SwitchTraffic, Delay, EnsureVolume, RemoveVolume, PullImage, BuildImage,
                          RunProvider>;

struct Node {
  Step step;
  std::string reason;         // "new", "environment changed", "start-first update", ...
  std::string service;        // the service it belongs to, "" for networks
  std::vector<size_t> after;  // indexes of the nodes that must be done first
};

struct Plan {
  std::vector<Node> nodes;             // in an order that respects `after` (a topological one)
  std::vector<std::string> unchanged;  // containers already as desired
  std::vector<std::string> orphans;    // containers of services no longer in the file, kept
  [[nodiscard]] bool empty() const { return nodes.empty(); }
};

struct PlanOptions {
  std::vector<std::string> services;  // empty: all (and their dependencies)
  bool force_recreate = false;
  bool remove_orphans = false;
  // The continuous reconcile leaves alone what is down on purpose: containers the user
  // stopped, and containers that completed (see ObservedContainer::completed). An explicit
  // `up` starts them again, as compose does.
  bool continuous = false;
  // Services whose update is held (paused after a failure): their containers are left as
  // they are, changed or not, while the file still asks for what failed.
  std::set<std::string> held;
  // Services whose containers are created and not started (`create`, `up --no-start`, and the
  // daemon's passes while `create` is not followed by `start` or `up`): one that does not run is
  // left so, and their creates wait for no dependency.
  std::set<std::string> no_start;
  // Services `rm` removed: a replica of theirs that has no container is not made again.
  std::set<std::string> removed;
  bool no_recreate = false;           // `up --no-recreate`: existing containers are kept
  bool always_recreate_deps = false;  // `up --always-recreate-deps`: dependencies recreated
  bool no_deps = false;               // `up --no-deps`: the named services, not their dependencies
  // `run`: this service's one desired replica is a one-off container (its records[0], named
  // by its container_name), made beside the service's own replicas, which are left alone.
  std::string one_off;
  // `up --pull`: replaces every service's pull_policy ("" keeps each service's own).
  std::string pull;
  // `up --build`: every selected service with a build section is built again (the layer cache
  // decides what actually runs). BUILT: this up's builds are done (its second plan, made
  // against the images they produced): no BuildImage again.
  bool build = false;
  bool built = false;
  // This up's providers have run (their variables are in the dependents' records now): no
  // RunProvider again in its second plan.
  bool providers_done = false;
  // The planner reads no clock: pull_policy daily/weekly/every_ are decided against this.
  std::chrono::system_clock::time_point now{};
};

// "<project>-<service>-<n>", n from 1: the name of a container, also its id.
std::string container_name(const std::string& project, const std::string& service, int n);
// Replica N of S: its container_name when it has one (one replica then), else the above.
std::string replica_name(const std::string& project, const DesiredService& s, int n);

// The services in start order (each after what it depends on); an error names a cycle
// ("dependency cycle: web -> api -> web") or an unknown dependency.
[[nodiscard]] Result<std::vector<std::string>> start_order(const std::vector<DesiredService>& services);

// `up`: what makes the project match DESIRED.
[[nodiscard]] Result<Plan> plan(const DesiredState& desired, const ObservedState& observed,
                                const PlanOptions& options = {});

// `down`: every container stopped (dependents first) and removed, then the networks.
// DEPENDS_ON gives the order; containers of services it does not know go first.
// VOLUMES (`down -v`): the project's named volumes go last, with their data.
// PROVIDERS (the provider services whose `up` ran): each one's `down` after every container
// is removed and after the providers that depend on it.
[[nodiscard]] Plan plan_down(const std::vector<DesiredService>& services,
                             const ObservedState& observed, bool volumes = false,
                             const std::vector<RunProvider>& providers = {});

// `stop` of the containers of ONLY's services (all when empty), dependents first, marked as
// stopped by the user.
[[nodiscard]] Plan plan_stop(const std::vector<DesiredService>& services,
                             const ObservedState& observed, const std::vector<std::string>& only);
// `rm`: the containers of ONLY's services (all when empty) that do not run, removed; with
// STOP, the running ones are stopped first (marked stopped by the user) and removed too.
[[nodiscard]] Plan plan_rm(const std::vector<DesiredService>& services,
                           const ObservedState& observed, const std::vector<std::string>& only,
                           bool stop);
// `start`: the existing containers of ONLY's services that do not run, each after the
// conditions of what it depends on.
[[nodiscard]] Plan plan_start(const std::vector<DesiredService>& services,
                              const ObservedState& observed, const std::vector<std::string>& only);
// `restart`: the running containers of ONLY's services stopped and started again, and after
// each restarted dependency, the services that depend on it with `restart: true`.
[[nodiscard]] Plan plan_restart(const std::vector<DesiredService>& services,
                                const ObservedState& observed, const std::vector<std::string>& only);

// What a step does, in a word: "network", "create", "start", "await", "stop", ...
[[nodiscard]] const char* step_kind(const Step& step);
// The object a step acts on: a network or container name, an image ("" for a delay).
[[nodiscard]] std::string step_object(const Step& step);
// As a person reads a diff, one line per step:
//   "+ network demo_default (new)", "+ create demo-web-1 (new)", "> start demo-web-1",
//   "… await demo-db-1 healthy (web depends on db)", "- remove demo-old-1 (orphan)".
[[nodiscard]] std::string render(const Plan& plan);
[[nodiscard]] std::string render_step(const Node& node);
[[nodiscard]] const char* condition_name(Condition c);

}  // namespace stack::planner
