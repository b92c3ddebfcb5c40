// The process and resource fields of a service (ulimits, sysctls, cgroup knobs, labels,
// deploy.restart_policy, ...) onto its runtime record. Private to the reconciler.
#pragma once

#include "common/result.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "model/runtime_record.h"
#include "planner/state.h"
#include "state/store.h"
#include "spec/stack.h"

namespace stack::reconciler {

using model::RuntimeRecord;

// "stack.yaml:12:5: service \"web\"": where SERVICE writes KEY ("sysctls", "post_start"),
// else where the service starts; the head of a message about that field.
[[nodiscard]] std::string where(const spec::Service& svc, const std::string& key);

// Fills R from SERVICE after build_runtime's basics; an error names the key's file:line:column.
// Reads label files, the image's /etc/group and the host's memory and CPU count.
[[nodiscard]] Result<void> apply_service_fields(const spec::Stack& stack,
                                                const spec::Service& service,
                                                const fs::Image& image, RuntimeRecord& r);

// Every container DESIRED names must be free on this host or already this project's: a
// container_name (or a generated name) that another project's container holds is an error
// naming both, before anything is made.
[[nodiscard]] Result<void> check_container_names(const spec::Stack& stack,
                                                 const planner::DesiredState& desired,
                                                 state::Store& store);

// cgroup_parent: the levels of CGROUP's parent path that do not exist yet are stack's to make
// and to remove. note_cgroup_parents records them (in ROOT/cgroup-parents) before the
// container's cgroup is made; release_cgroup_parents removes, deepest first, each recorded
// one no running container of STORE is under. The "stack" tree is the driver's own business.
[[nodiscard]] Result<void> note_cgroup_parents(const std::filesystem::path& root,
                                               engine::CgroupDriver& cgroups,
                                               const std::string& cgroup);
void release_cgroup_parents(const std::filesystem::path& root, engine::CgroupDriver& cgroups,
                            state::Store& store);

}  // namespace stack::reconciler
