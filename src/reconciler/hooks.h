// Lifecycle hooks (post_start, pre_stop): built from the service against the image as the
// service's own process is, and run inside the running container through Engine::spawn with
// their output appended to the container's log. Running one blocks: callers use the pool.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "common/result.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "model/runtime_record.h"
#include "spec/stack.h"

namespace stack::reconciler {

// R.post_start and R.pre_stop from SERVICE, after R.spec.process is final (each hook starts
// from it: user, environment, working directory, capabilities and ulimits of the service).
[[nodiscard]] Result<void> build_hooks(const spec::Service& service, const fs::Image& image,
                                       model::RuntimeRecord& r);

// Runs HOOK in the running container P (cgroup CGROUP); each line it writes goes to the
// container's log in DIR. An error when it cannot start, exits non-zero or outlives TIMEOUT
// (then it is killed): "WHAT exited with status N".
[[nodiscard]] Result<void> run_hook(engine::Engine& engine, const engine::ContainerProcess& p,
                                    const std::string& cgroup, const engine::ProcessSpec& hook,
                                    const std::filesystem::path& dir, const std::string& what,
                                    std::chrono::milliseconds timeout);

}  // namespace stack::reconciler
