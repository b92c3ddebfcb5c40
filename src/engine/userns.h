// Internal to src/engine: the user namespace of a container started with
// ContainerSpec::userns. The engine creates it (maps written by root on the host, so any
// subordinate range works) and hands stack-init a descriptor of it; see init.c, step 3.
#pragma once

#include <sys/types.h>

#include <filesystem>

#include "common/result.h"
#include "common/unique_fd.h"
#include "engine/container.h"

namespace stack::engine {

// A new user namespace mapping container ids 0..count-1 to MAP's host ranges (or MAP's several
// ranges, uid_map and gid_map, when given), held by the returned descriptor (the process that
// made it is gone).
[[nodiscard]] Result<UniqueFd> make_userns(const IdMapping& map);
// Gives the container's directory, and what the init writes or binds from it, to the mapped
// root: after it joins the namespace the init is that user on the host.
[[nodiscard]] Result<void> own_for(const std::filesystem::path& dir, const IdMapping& map);
// Whether PID lives in a user namespace other than ours.
bool in_other_userns(pid_t pid);

// Whether LAYER's filesystem takes idmapped mounts (through USERNS_FD); probed once per
// filesystem.
bool idmap_supported(const std::filesystem::path& layer, int userns_fd);
// LAYER copied with every owner shifted into MAP (ids past its count become 65534), under
// CACHE/<uid_base>-<gid_base>-<count>/: made once per mapping and layer, then reused.
[[nodiscard]] Result<std::filesystem::path> shifted_layer(const std::filesystem::path& layer,
                                                          const IdMapping& map,
                                                          const std::filesystem::path& cache);

}  // namespace stack::engine
