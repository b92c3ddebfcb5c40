// What stack-runtime keeps of a container under its state root (<root>/<id>/state.json) and
// the per-ID lock that serialises create, start, kill, pause, update and delete of one ID.
// Reads the live process and cgroup to tell the status; changes nothing but those files.
// Internal to src/runtime (holds nlohmann/json: never include it from a widely used header).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "engine/cgroup.h"

namespace stack::runtime {

struct Record {
  std::string id, bundle, created, cgroup;
  pid_t pid = 0;
  uint64_t start_time = 0;
  bool started = false;
  bool paused = false;  // set by pause, cleared by resume: only then is the freezer read
  nlohmann::json annotations = nlohmann::json::object();
};

[[nodiscard]] Result<void> check_id(const std::string& id);
// /proc/PID/stat: its start time (field 22), 0 when gone or a zombie (exited, not reaped).
uint64_t live_start_time(pid_t pid);
std::string rfc3339_now();
[[nodiscard]] Result<std::unique_ptr<engine::CgroupDriver>> cgroups();
// created | running | paused | stopped, from the live process (its start time) and freezer.
std::string status_of(const Record& r);
// The runtime spec's state object.
nlohmann::json state_json(const Record& r, const std::string& status);
[[nodiscard]] Result<Record> read_record(const std::filesystem::path& dir, const std::string& id);
[[nodiscard]] Result<void> write_record(const std::filesystem::path& dir, const Record& r);

// An exclusive flock(2) on the container's directory DIR, held until the descriptor closes
// (O_CLOEXEC: a process we exec never holds it; a fork must close it). Waits for the holder of
// the lock. "does not exist" when DIR is absent or was removed while we waited (a deleted
// directory keeps its inode: st_nlink 0 tells).
[[nodiscard]] Result<UniqueFd> lock_container(const std::filesystem::path& dir,
                                              const std::string& id);

}  // namespace stack::runtime
