// Mapping a service of the stack file and its image onto what the engine runs. Private to the
// reconciler.
#pragma once

#include <string>

#include "common/result.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "reconciler/controller.h"
#include "model/runtime_record.h"
#include "spec/stack.h"

namespace stack::reconciler {

// The service's process: command (entrypoint + command, compose's rules against the image's),
// environment, working directory and user. Reads the image's files; changes nothing.
[[nodiscard]] Result<engine::ProcessSpec> build_process(const spec::Service& service,
                                                        const fs::Image& image,
                                                        const std::string& hostname,
                                                        std::string* user = nullptr);

// What the kernel will refuse at exec time, checked before anything is made: execve(2) takes
// at most 128 KiB per argument or variable and 2 MiB for all of them (with the default 8 MiB
// stack limit). The error names the service and its largest value.
[[nodiscard]] Result<void> check_exec_limits(const spec::Service& service,
                                             const engine::ProcessSpec& process);

// A host port the kernel considers free now, for a `ports:` entry without one ("80").
[[nodiscard]] Result<int> free_host_port(bool udp);

// The runtime record of replica NUMBER of SERVICE. Pure: published ports without a host port
// keep 0 (chosen when the container is created), missing bind sources are made then too.
[[nodiscard]] Result<RuntimeRecord> build_runtime(const Paths& paths, const spec::Stack& stack,
                                                  const spec::Service& service, int number,
                                                  const fs::Image& image,
                                                  const fs::ImageStore* images = nullptr);

}  // namespace stack::reconciler
