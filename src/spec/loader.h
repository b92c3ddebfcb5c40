// Loading a stack file: YAML with positions, interpolation, validation, normalisation into
// spec::Stack. Reads files, never touches anything else on the host.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "spec/stack.h"

namespace stack::spec {

struct LoadOptions {
  std::vector<std::filesystem::path> files;  // empty: stack.yaml, compose.yaml, docker-compose.yml
  std::optional<std::string> project_name;   // -p
  std::filesystem::path working_dir;         // where default files are looked for
  std::map<std::string, std::string> environment;  // the caller's shell environment
};

// The files that would be loaded: the given ones made absolute, or the first default file
// found in working_dir. Error when none exists.
[[nodiscard]] Result<std::vector<std::filesystem::path>> resolve_files(const LoadOptions& opts);

// Loads, interpolates, validates and normalises. On failure the error message holds every
// problem found, one per line, each as "file:line:col: message", sorted by position.
[[nodiscard]] Result<Stack> load(const LoadOptions& opts);

// A project name made valid as compose does: lower case, [a-z0-9_-], starting with a letter
// or digit.
[[nodiscard]] std::string normalize_project_name(std::string_view name);

// Parses "512m", "1gb", "1024" into bytes.
[[nodiscard]] std::optional<int64_t> parse_bytes(std::string_view text);
// Parses compose durations: "10s", "1m30s", "250ms", "1h".
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// sha256 over the canonical JSON of a normalised service: the same meaning gives the same hash
// whatever the key order or formatting of the file.
[[nodiscard]] std::string config_hash(const Service& service);

}  // namespace stack::spec
