// The root filesystem of a container that does not run (created, exited): its upper directory
// over its image's layers, as a read-only overlay mounted nowhere (a detached mount, seen by no
// mount namespace) and handed back as a descriptor, for `stack cp` to resolve paths in as it
// does in a running container's /proc/PID/root. Root on the host.
#pragma once

#include <optional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "model/container.h"

namespace stack::engine {

// Refused for a container with a user namespace (its layers are shifted copies).
[[nodiscard]] Result<UniqueFd> open_stopped_root(const model::ContainerSpec& spec);

// The volume, bind, tmpfs or /etc file of SPEC that PATH (absolute, in the container) is at or
// under: its target; nullopt when PATH is in the container's own filesystem.
[[nodiscard]] std::optional<std::string> mount_holding(const model::ContainerSpec& spec,
                                                       const std::string& path);

}  // namespace stack::engine
