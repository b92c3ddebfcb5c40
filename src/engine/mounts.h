// The container's own mounts as records of the init's message (init/wire.h): binds, volumes
// (subpath, seeding), tmpfs, propagation, a read-only root and /dev/shm's size. Internal to
// src/engine; pure (builds bytes, touches nothing).
#pragma once

#include "engine/wire.h"
#include "model/container.h"

namespace stack::engine {

// MS_* flags of a bind's propagation ("rshared" -> MS_SHARED|MS_REC); 0 for "" and an unknown
// word (the spec checks the words).
[[nodiscard]] uint32_t propagation_flags(const std::string& propagation);
void add_mounts(wire::Writer& cfg, const model::ContainerSpec& spec);

}  // namespace stack::engine
