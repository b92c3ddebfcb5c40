// Mapping a service of the stack file and its image onto what the engine runs. Private to the
// reconciler.
#pragma once

#include <string>

#include "common/result.h"
#include "fs/image_store.h"
#include "reconciler/controller.h"
#include "reconciler/runtime_record.h"
#include "spec/stack.h"

namespace stack::reconciler {

[[nodiscard]] Result<RuntimeRecord> build_runtime(const Paths& paths, const spec::Stack& stack,
                                                  const spec::Service& service, int number,
                                                  const fs::Image& image);

}  // namespace stack::reconciler
