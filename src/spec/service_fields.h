// The process and resource fields of a service that need more than their shape to be valid
// here: platform against this host, runtime, ulimit names, namespaced sysctls (runc's list),
// the restart policy of deploy. Pure: no host state beyond what the build targets.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "spec/diagnostics.h"
#include "spec/stack.h"

namespace stack::spec {

// Every problem of SERVICE's process and resource fields, at the key that says it.
void check_service_fields(const Service& service, Diagnostics& diag);

// Problems between services: a container_name taken twice in the stack (or equal to another
// replica's generated name), a network_mode service:NAME whose NAME has a container_name.
void check_stack_fields(const Stack& stack, Diagnostics& diag);

// A post_start or pre_stop hook as written: run inside the container like `exec`.
struct LifecycleHook {
  std::vector<std::string> argv;  // a string command is split into words as a shell would
  std::string user;               // "" : the service's user
  bool privileged = false;
  std::string working_dir;                     // "" : the service's
  std::map<std::string, std::string> environment;  // over the service's
};

// The hooks under KEY ("post_start" or "pre_stop"), in order; an error names the key.
[[nodiscard]] Result<std::vector<LifecycleHook>> lifecycle_hooks(const Service& service,
                                                                 const std::string& key);

// The service whose namespaces SERVICE joins: NAME of network_mode, pid or ipc service:NAME
// (check_stack_fields refuses two different ones); "" for none.
[[nodiscard]] std::string joined_service(const Service& service);

// RLIMIT_* of a compose ulimit name ("nofile"), none for an unknown one.
[[nodiscard]] std::optional<int> rlimit_resource(std::string_view name);

// The platform this build runs containers for: "linux/amd64".
[[nodiscard]] std::string host_platform();

// The pull policy the planner applies: pull_policy, or with pull_refresh_after D (and
// pull_policy refresh, missing or none) "every_<D in seconds>s": pulled when missing or when
// the last pull is older than D.
[[nodiscard]] std::string effective_pull_policy(const Service& service);

// The restart policy stack applies: `restart`, or deploy.restart_policy's condition and
// max_attempts when given (compose lets deploy win): "no", "always", "on-failure[:N]".
[[nodiscard]] std::string effective_restart(const Service& service);

}  // namespace stack::spec
