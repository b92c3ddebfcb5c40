// The planner: from the desired services and the observed containers of one project, the
// actions that make the host match. A pure function of its inputs: no syscalls, no clock, no
// I/O, so the plan printed by `stack up --dry-run` is the plan `stack up` executes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace stack::planner {

struct DesiredService {
  std::string name;
  std::string config_hash;
  std::map<std::string, std::string> fields;  // field -> hash, to name what changed
  std::string image_id;
  int replicas = 1;
  std::vector<std::string> depends_on;
};

struct ObservedContainer {
  std::string name;
  std::string service;
  int number = 1;
  std::string config_hash;
  std::map<std::string, std::string> fields;  // as created; empty when not recorded
  std::string image_id;
  bool running = false;
  bool user_stopped = false;  // stopped with `stack stop`
  // Exited by itself (its init recorded the exit) and its restart policy keeps it down: a
  // one-shot job that ran, or on-failure past its maximum. A reached state, not drift.
  bool completed = false;
};

struct PlanOptions {
  std::vector<std::string> services;  // empty: all (and their dependencies)
  bool force_recreate = false;
  bool remove_orphans = false;
  // The continuous reconcile leaves alone what is down on purpose: containers the user
  // stopped, and containers that completed (see ObservedContainer::completed). An explicit
  // `up` starts them again, as compose does.
  bool continuous = false;
};

struct Action {
  enum class Kind { Create, Start, Recreate, Remove };
  Kind kind;
  std::string container;  // "<project>-<service>-<n>"
  std::string service;
  int number = 1;
  std::string reason;  // "new", "configuration changed", ...
};

struct Plan {
  std::vector<Action> actions;         // in execution order (dependencies first)
  std::vector<std::string> orphans;    // containers of services no longer in the file, kept
  std::vector<std::string> unchanged;  // containers already as desired
  [[nodiscard]] bool empty() const { return actions.empty(); }
};

// "<project>-<service>-<n>", n from 1: the name of a container, also its id.
std::string container_name(const std::string& project, const std::string& service, int n);

// The services in start order (each after what it depends on); an error names a cycle
// ("dependency cycle: web -> api -> web") or an unknown dependency.
[[nodiscard]] Result<std::vector<std::string>> start_order(const std::vector<DesiredService>& services);

[[nodiscard]] Result<Plan> plan(const std::string& project,
                                const std::vector<DesiredService>& desired,
                                const std::vector<ObservedContainer>& observed,
                                const PlanOptions& options = {});

// As a person reads a diff: "+ create demo-web-1 (new)", "~ recreate ...", "- remove ...".
[[nodiscard]] std::string render(const Plan& plan);
[[nodiscard]] const char* kind_name(Action::Kind kind);

}  // namespace stack::planner
