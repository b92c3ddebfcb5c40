// The process and resource fields of a service that need more than their shape to be valid
// here: platform against this host, runtime, ulimit names, namespaced sysctls (runc's list),
// the restart policy of deploy. Pure: no host state beyond what the build targets.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "spec/diagnostics.h"
#include "spec/stack.h"

namespace stack::spec {

// Every problem of SERVICE's process and resource fields, at the key that says it.
void check_service_fields(const Service& service, Diagnostics& diag);

// Problems between services: a container_name taken twice in the stack (or equal to another
// replica's generated name), a network_mode service:NAME whose NAME has a container_name.
void check_stack_fields(const Stack& stack, Diagnostics& diag);

// RLIMIT_* of a compose ulimit name ("nofile"), none for an unknown one.
[[nodiscard]] std::optional<int> rlimit_resource(std::string_view name);

// The platform this build runs containers for: "linux/amd64".
[[nodiscard]] std::string host_platform();

// The restart policy stack applies: `restart`, or deploy.restart_policy's condition and
// max_attempts when given (compose lets deploy win): "no", "always", "on-failure[:N]".
[[nodiscard]] std::string effective_restart(const Service& service);

}  // namespace stack::spec
