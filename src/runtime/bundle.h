// A bundle's config.json (runtime-spec 1.x, Linux) read into the engine's ContainerSpec and
// its hooks: each field is honoured or refused naming it ("linux.resources.blockIO: ..."),
// never silently dropped. Pure apart from reading config.json (and /proc/PID/uid_map for a user
// namespace joined without mappings); nlohmann/json stays in the .cpp files.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "model/container.h"

namespace stack::runtime {

// One hook of config.json: run with the container's state JSON on stdin.
struct Hook {
  std::string path;
  std::vector<std::string> args, env;
  int timeout = 0;  // seconds; 0: none
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
};

// process.terminal: the container's stdio a pty of its own devpts, whose master goes to the
// caller over --console-socket; consoleSize its window (0: the kernel's default).
struct Console {
  bool terminal = false;
  uint16_t rows = 0, cols = 0;
};

struct Bundle {
  model::ContainerSpec spec;
  Console console;
  Hooks hooks;
  std::vector<std::pair<std::string, std::string>> annotations;
  // Accepted with a difference the caller logs (a cgroup mount left empty, ...).
  std::vector<std::string> warnings;
};

// config.json's text: BUNDLE is its directory (root.path is relative to it), ID the
// container's, DIR the engine's directory for it (writable layer, exit record).
[[nodiscard]] Result<Bundle> parse_config(std::string_view json, const std::filesystem::path& bundle,
                                          const std::string& id, const std::filesystem::path& dir);
// process.execCPUAffinity (runtime-spec 1.2; an exec's only): the CPUs of each list as mask
// words, CPU n at bit n % 64 of word n / 64; empty: not given.
struct ExecAffinity {
  std::vector<uint64_t> initial, final;
};

// A process JSON (`exec --process FILE`: the runtime spec's "process" object) over BASE, the
// container's own process (its seccomp profile stays: the object has none).
// Its terminal and consoleSize go to CONSOLE; what is accepted with a difference to WARNINGS;
// execCPUAffinity to AFFINITY (refused without one: the caller cannot apply it).
[[nodiscard]] Result<model::ProcessSpec> parse_process(std::string_view json,
                                                       const model::ProcessSpec& base,
                                                       Console& console,
                                                       std::vector<std::string>* warnings = nullptr,
                                                       ExecAffinity* affinity = nullptr);
// `update --resources`: the runtime spec's linux.resources object as the limits to set on a
// running container's cgroup (only those present); what cannot change refused by name, what
// is taken to no effect said in WARNINGS.
[[nodiscard]] Result<model::CgroupLimits> parse_resources(std::string_view json,
                                                          std::vector<std::string>& warnings);
// BUNDLE/config.json, with errors prefixed by the file's path.
[[nodiscard]] Result<Bundle> load_bundle(const std::filesystem::path& bundle, const std::string& id,
                                         const std::filesystem::path& dir);

}  // namespace stack::runtime
