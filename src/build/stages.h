// A parsed Dockerfile as stages: the global ARGs (before the first FROM) resolved against the
// build args, each FROM expanded, the target chosen, and the stages it needs (FROM <stage>,
// COPY --from=<stage>) in the order they must be built. Pure. Private to src/build.
#pragma once

#include <string>
#include <vector>

#include "build/dockerfile.h"

namespace stack::build {

struct Stage {
  int index = 0;
  std::string name;      // "builder" (lower case, as Docker compares them); "" when unnamed
  std::string base;      // the FROM image, args expanded: a reference, "scratch", or a stage
  int base_stage = -1;   // >= 0: BASE names that earlier stage
  std::string platform;  // FROM --platform, expanded; "" none
  int line = 0;
  std::vector<Instruction> body;  // after its FROM
  [[nodiscard]] std::string label() const { return name.empty() ? std::to_string(index) : name; }
};

struct StagePlan {
  Vars global_args;          // ARGs before the first FROM, with build args applied
  std::vector<Stage> stages;
  int target = 0;
  std::vector<int> order;    // the stages the target needs, dependencies first, target last
  std::vector<std::string> unused_args;  // build args no ARG declares
};

// The platform builds are for (the only one this host runs): "linux/amd64" on x86-64.
std::string host_platform();

// Errors: "NAME:LINE: reason" (an unknown --from stage, a FROM that names a later stage, ...),
// or naming the target when no stage has that name.
[[nodiscard]] Result<StagePlan> plan_stages(const Dockerfile& df, const Vars& build_args,
                                            const std::string& target);

// The stage a COPY --from value names (a name or an index before CURRENT), or -1 for an image.
int stage_ref(const StagePlan& plan, const std::string& from, int current);

}  // namespace stack::build
