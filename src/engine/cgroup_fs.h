// File helpers shared by the cgroup v1 and v2 drivers; internal to src/engine, not part of
// the CgroupDriver interface. Works on any directory tree (the real cgroupfs or a fake one in a
// temp dir). Errors name the file; the driver prefixes "cgroup v1"/"cgroup v2".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::engine::cgroupfs {

// Rejects absolute paths, empty paths and ".." so a cgroup path cannot leave the hierarchy.
[[nodiscard]] Result<void> check_relative(const std::string& path);

// One open(2) + write(2) of VALUE, as the kernel parses a control file per write. Creates the
// file when missing, which only happens in a fake tree (cgroupfs refuses to create files).
[[nodiscard]] Result<void> write_value(const std::filesystem::path& file, std::string_view value);
[[nodiscard]] Result<std::string> read_value(const std::filesystem::path& file);
// The whole file as one unsigned number ("123\n").
[[nodiscard]] Result<uint64_t> read_u64(const std::filesystem::path& file);
// The value of KEY in a flat-keyed file ("key value" lines: memory.events, cpu.stat).
[[nodiscard]] Result<uint64_t> read_key(const std::filesystem::path& file, std::string_view key);
// The PIDs listed in a cgroup.procs file.
[[nodiscard]] Result<std::vector<pid_t>> read_pids(const std::filesystem::path& file);

// mkdir(2) of BASE/REL and each level above it under BASE; existing levels are fine.
// Returns whether the leaf was newly created.
[[nodiscard]] Result<bool> make_dirs(const std::filesystem::path& base, const std::string& rel);

// rmdir(2) of BASE/REL, retrying EBUSY for ~100 ms (a just-killed task may still be exiting),
// then of each empty parent up to, not including, BASE/<first component of REL> (the "stack"
// directory). A missing directory is not an error; a non-empty parent ends the walk. Under any
// other first component (a service's cgroup_parent, which may be the user's) only the leaf
// goes: the reconciler removes a parent it made itself.
[[nodiscard]] Result<void> remove_dirs(const std::filesystem::path& base, const std::string& rel);

[[nodiscard]] bool is_dir(const std::filesystem::path& path);
[[nodiscard]] bool exists(const std::filesystem::path& path);

}  // namespace stack::engine::cgroupfs
