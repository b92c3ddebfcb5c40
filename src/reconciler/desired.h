// What a project should be, from its loaded stack file: each network with its configuration and
// each service with one runtime record per replica, every image in the store resolved and what
// the kernel would refuse found first. A service whose image is missing gets no records: the
// planner decides its pull, and its creates make the records from the pulled image. Reads the image store and the images' files; changes nothing on
// the host (bind sources and free host ports are the CreateContainer step's).
#pragma once

#include <map>
#include <string>

#include "common/result.h"
#include "planner/state.h"
#include "reconciler/controller.h"
#include "spec/stack.h"
#include "state/store.h"

namespace stack::fs {
class ImageStore;
}

namespace stack::reconciler {

// A rolled-back service: the records its replicas had before the update (by replica number).
using Rollbacks = std::map<std::string, std::vector<state::HistoryRecord>>;

// Every problem at once (a missing image, a user the image lacks, an environment too large for
// execve), one per line with its position.
[[nodiscard]] Result<planner::DesiredState> desired_state(const spec::Stack& stack,
                                                          const Paths& paths,
                                                          fs::ImageStore& images);
// Each service of ROLLBACKS keeps the records its replicas had before its last update, and is
// updated back with its rollback_config.
void apply_rollbacks(planner::DesiredState& desired, const spec::Stack& stack,
                     const Rollbacks& rollbacks);

// The runtime record of replica NUMBER of SERVICE, its image taken from IMAGES now: for the
// CreateContainer of a service whose image the plan pulls first (desired_state left it null).
[[nodiscard]] Result<std::shared_ptr<const RuntimeRecord>> replica_record(
    const spec::Stack& stack, const std::string& service, int number, fs::ImageStore& images,
    const Paths& paths);

// A service's `build:` as the plan's BuildImage step carries it; null without one.
std::shared_ptr<const model::BuildConfig> build_config(const spec::Service& service);

// depends_on as the planner reads it.
std::vector<planner::Dependency> dependencies_of(const spec::Service& service);

}  // namespace stack::reconciler
