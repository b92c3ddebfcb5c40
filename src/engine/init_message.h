// Internal to src/engine: the messages the engine sends stack-init (wire.h), built from a
// spec. Pure: no I/O, nothing on the host; the caller sends them.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/container.h"
#include "engine/wire.h"

namespace stack::engine {

// execve(2) takes C strings: a NUL in an argument, an environment value or the working
// directory is refused, naming what holds it.
[[nodiscard]] Result<void> check_c_strings(const ProcessSpec& p);

// P's seccomp program, compiled (or found in the cache) with P's own capabilities.
struct Filter {
  std::shared_ptr<const std::string> program;  // null: none
  unsigned flags = 0;
};
[[nodiscard]] Result<Filter> filter_for(const ProcessSpec& p);

// The process records of a run or exec message (W_ARG ... W_SECCOMP_FLAGS).
void add_process(wire::Writer& w, const ProcessSpec& p, const Filter& filter);

// The host id container id ID maps to through MAP (its uid ranges when UID, else its gid ranges);
// 65534 when no range holds it.
[[nodiscard]] uint32_t host_id(const IdMapping& map, uint32_t id, bool uid);

// overlayfs' lowerdir= value of LAYERS (lowest first): topmost first, ':'-separated.
[[nodiscard]] Result<std::string> lower_dirs(const std::vector<std::filesystem::path>& layers);

// The container's configuration (step 2 of init.c's sequence): its root, binds, devices,
// masks and process. LOWERS as lower_dirs made it (of the shifted copies when LAYERS_SHIFTED).
// PAUSE_PIVOT: the init stops before pivot_root for the caller's hooks (W_PAUSE_PIVOT).
[[nodiscard]] std::string container_config(const ContainerSpec& spec, const std::string& lowers,
                                           bool layers_shifted, const Filter& filter,
                                           bool pause_pivot = false);

}  // namespace stack::engine
