// The executor of a build: stages in order, each instruction applied to the stage's image
// (config steps in memory; RUN, COPY, ADD and WORKDIR make layers), with the cache consulted
// and written for each layer step. Private to src/build; build.cpp is its entry point.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "build/build.h"
#include "build/context.h"
#include "build/dockerfile.h"
#include "build/stages.h"
#include "fs/image_build.h"

namespace stack::build {

// A stage's image as it is built, and what identifies it for the cache.
struct StageState {
  fs::ImageRecipe recipe;
  Vars args;       // the stage's declared ARGs that have a value
  std::string id;  // the chain of what made it: "image:sha256:..." or "scratch", then hashed
  bool cmd_set = false;  // a CMD of this stage (an ENTRYPOINT then keeps it)

  [[nodiscard]] std::vector<std::filesystem::path> layer_dirs(const fs::ImageStore& store) const;
  // What instructions expand with: ARGs, overridden by ENV.
  [[nodiscard]] Vars vars() const;
};

// The identity after a step: hex sha256 of the parent's and the step's cache text. The cache
// key of a layer step is the identity it leads to. Pure.
[[nodiscard]] std::string next_state_id(std::string_view parent, std::string_view step);

// Go's time.ParseDuration for HEALTHCHECK flags ("30s", "1m30s", "500ms"): nanoseconds.
[[nodiscard]] Result<int64_t> parse_duration(std::string_view s);

// EXPOSE's "80", "80/udp", "8000-8002/tcp" as the config's keys ("80/tcp", ...).
[[nodiscard]] Result<std::vector<std::string>> expose_ports(const std::string& word);

// What builds whose process died (a daemon killed mid-build) left in WORK_DIR: their RUN
// containers killed and removed, their scratch directories unmounted and removed. Builds of
// live processes are not touched.
void sweep_stale_builds(const std::filesystem::path& work_dir, engine::Engine& engine,
                        const std::string& cgroup_parent);

class Builder {
 public:
  Builder(const BuildRequest& request, BuildHost& host, const Progress& progress,
          const Dockerfile& df, const StagePlan& plan, IgnoreRules rules);
  [[nodiscard]] Result<BuildResult> run();

 private:
  struct Step {
    const Instruction* ins;
    const Stage* stage;
  };
  Result<void> from(const Stage& stage, StageState& st);
  Result<void> apply(const Instruction& ins, const Stage& stage, StageState& st);
  Result<void> config_step(const Instruction& ins, StageState& st);
  Result<void> run_step(const Instruction& ins, StageState& st);
  Result<void> copy_step(const Instruction& ins, const Stage& stage, StageState& st);
  Result<void> workdir_step(const Instruction& ins, StageState& st);

  // A layer step's cache: on a hit KEY's layer is appended (HISTORY with it) and CACHED
  // reported; true then. Else the step runs and add_layer stores its upper directory.
  Result<bool> cached(const std::string& key, StageState& st, const std::string& history);
  Result<void> add_layer(const std::string& key, const std::filesystem::path& upper,
                         StageState& st, const std::string& history);

  Result<StageState> image_state(const std::string& reference, const std::string& platform,
                                 int line);
  std::string at(int line) const { return df_.name + ":" + std::to_string(line); }
  void emit(BuildEvent::Kind kind, std::string text = {});
  std::filesystem::path scratch(const std::string& what);  // a fresh directory in work_dir
  bool cancelled() const { return host_.cancel && host_.cancel->load(); }

  const BuildRequest& req_;
  BuildHost& host_;
  const Progress& progress_;
  const Dockerfile& df_;
  const StagePlan& plan_;
  IgnoreRules rules_;
  std::map<int, StageState> done_;  // stage index -> its final state
  // The step being run, for events.
  std::string stage_label_;
  int step_ = 0, steps_ = 0, line_ = 0;
  std::string instruction_;
  int cached_ = 0;
  std::string build_id_;  // random hex: names of RUN containers and scratch directories
  int scratch_n_ = 0;
};

}  // namespace stack::build
