// What bundle.cpp, bundle_mounts.cpp and bundle_resources.cpp share: refusing a config.json
// member by its path, the mounts, and linux.resources into the engine's cgroup limits. Private
// to src/runtime (it includes nlohmann/json: never from a header others include).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/container.h"

namespace stack::runtime {
struct Bundle;
}

namespace stack::runtime::detail {

inline tl::unexpected<Error> refuse(const std::string& field, const std::string& why) {
  return fail(field + ": " + why);
}

// Whether OBJ's member KEY is given: present and neither null nor empty.
inline bool is_set(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key)) return false;
  const nlohmann::json& v = obj.at(key);
  return !(v.is_null() || (v.is_array() && v.empty()) || (v.is_object() && v.empty()) ||
           (v.is_string() && v.get<std::string>().empty()));
}

// A member that must be absent, null or empty for this runtime.
inline Result<void> refuse_if_set(const nlohmann::json& obj, const char* key,
                                  const std::string& field, const std::string& why) {
  if (!is_set(obj, key)) return {};
  return refuse(field, why);
}

// A member this runtime takes to no effect, as crun and runc do: WARNINGS says so when it is
// set ("FIELD ignored: WHY"), never silently.
inline void warn_if_set(const nlohmann::json& obj, const char* key, const std::string& field,
                        const std::string& why, std::vector<std::string>& warnings) {
  if (is_set(obj, key)) warnings.push_back(field + " ignored: " + why);
}

// config.json's mounts into B's spec (bundle_mounts.cpp): each option honoured or refused.
[[nodiscard]] Result<void> read_mounts(const nlohmann::json& mounts, Bundle& b);

// linux.resources (also `update --resources`'s document) into SPEC's limits and device rules;
// what is taken to no effect is said in WARNINGS.
[[nodiscard]] Result<void> read_resources(const nlohmann::json& r, model::ContainerSpec& spec,
                                          std::vector<std::string>& warnings);

// bundle_process.cpp: process.ioPriority (ioprio_set(2)'s value), process.scheduler,
// linux.memoryPolicy (nodes checked against this host's) and linux.timeOffsets.
[[nodiscard]] Result<uint32_t> read_io_priority(const nlohmann::json& io);
[[nodiscard]] Result<model::Scheduler> read_scheduler(const nlohmann::json& s);
[[nodiscard]] Result<model::MemoryPolicy> read_memory_policy(const nlohmann::json& m);
[[nodiscard]] Result<model::TimeOffsets> read_time_offsets(const nlohmann::json& t);
// A cpuset(7) list ("0-3,7", ids below 1024) as mask words: id n at bit n % 64 of word n / 64.
// WHAT names an item ("node", "CPU") in the refusal of FIELD.
[[nodiscard]] Result<std::vector<uint64_t>> read_id_list(const std::string& text,
                                                         const std::string& field,
                                                         const char* what);

}  // namespace stack::runtime::detail
