// A project as the cluster keeps it: /stack/projects/<project> holds the stack's canonical JSON
// (spec::stack_json, loadable again as a stack file), its sha256 and each service's placement,
// so the scheduler never parses a stack file. Pure: encoding and decoding, no store, no host.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cluster/scheduler.h"
#include "common/result.h"

namespace stack::cluster {

struct ProjectRecord {
  std::string name;
  std::string spec;  // the canonical JSON text of the stack
  std::string hash;  // sha256 (hex) of SPEC
  std::vector<ServicePlacement> placements;
};

inline std::string project_key(std::string_view project) {
  return "/stack/projects/" + std::string(project);
}
inline constexpr std::string_view kProjectsPrefix = "/stack/projects/";
inline constexpr std::string_view kAssignPrefix = "/stack/assign/";
inline constexpr std::string_view kNodeAssignPrefix = "/stack/node-assign/";
inline std::string assign_prefix(std::string_view project) {
  return std::string(kAssignPrefix) + std::string(project) + "/";
}

[[nodiscard]] std::string encode_project(const ProjectRecord& project);
// WHAT names the key in errors.
[[nodiscard]] Result<ProjectRecord> decode_project(std::string_view json, std::string_view what);

// "/stack/assign/<project>/<service>/<slot>" → its parts; false when KEY is not one.
struct SlotKey {
  std::string project, service;
  int slot = 0;
};
[[nodiscard]] bool parse_assign_key(std::string_view key, SlotKey& out);
// "/stack/node-assign/<node>/<project>/<service>/<slot>" → node and slot; false when not one.
[[nodiscard]] bool parse_node_assign_key(std::string_view key, std::string& node, SlotKey& out);

}  // namespace stack::cluster
