// The process and resource fields of a service (ulimits, sysctls, cgroup knobs, labels,
// deploy.restart_policy, ...) onto its runtime record. Private to the reconciler.
#pragma once

#include "common/result.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "model/runtime_record.h"
#include "spec/stack.h"

namespace stack::reconciler {

using model::RuntimeRecord;

// Fills R from SERVICE after build_runtime's basics; an error names the key's file:line:column.
// Reads label files, the image's /etc/group and the host's memory and CPU count.
[[nodiscard]] Result<void> apply_service_fields(const spec::Stack& stack,
                                                const spec::Service& service,
                                                const fs::Image& image, RuntimeRecord& r);

}  // namespace stack::reconciler
