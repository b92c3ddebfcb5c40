// Loading a stack file: YAML with positions, interpolation, include/extends/merging, profiles,
// validation, normalisation into spec::Stack; the canonical rendering `stack config` prints;
// and the check of what the engine implements. Reads files, never touches anything else.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "spec/stack.h"

namespace stack::spec {

struct LoadOptions {
  std::vector<std::filesystem::path> files;  // empty: stack.yaml, compose.yaml, docker-compose.yml
                                             // "-": stdin_text
  std::optional<std::string> project_name;   // -p
  std::filesystem::path working_dir;         // where default files are looked for
  std::map<std::string, std::string> environment;  // the caller's shell environment
  std::vector<std::string> profiles;  // --profile; empty: COMPOSE_PROFILES (comma-separated)
  std::vector<std::filesystem::path> env_files;  // --env-file: replace the project's .env
  std::optional<std::string> stdin_text;         // the content of "-" in files
  // The services the caller will run (`up web`); empty: all. Only their env_file entries (and
  // their dependencies') must be readable, as in compose.
  std::vector<std::string> services;
  // For a caller that must not wait for ever (the daemon, off its event loop): loading stops
  // with an error once DEADLINE has passed or *CANCEL is true, checked between stages and
  // every few thousand steps of the long ones.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  const std::atomic<bool>* cancel = nullptr;
};

// Input bounds (README, "Limits"): a larger file is refused with its name and the limit.
// A 500-service stack file is about 400 KiB; 100,000 services fit in 16 MiB.
inline constexpr size_t kMaxStackFileBytes = 16 << 20;  // each stack, include or extends file
inline constexpr size_t kMaxEnvFileBytes = 1 << 20;     // .env, --env-file, env_file

// The files that would be loaded: the given ones made absolute, or the first default file
// found in working_dir. Error when none exists. "-" (stdin) stays "<working_dir>/-".
[[nodiscard]] Result<std::vector<std::filesystem::path>> resolve_files(const LoadOptions& opts);

// Loads, interpolates, validates and normalises. On failure the error message holds every
// problem found, one per line, each as "file:line:col: message", sorted by position.
// Accepts every field of the Compose specification; see check_supported() for what runs.
[[nodiscard]] Result<Stack> load(const LoadOptions& opts);

// Every field STACK's files use that the engine does not implement yet, as one error with one
// "file:line:col: not supported yet: services.web.ports" line each, sorted by position.
// What is implemented is the table in supported.cpp.
// CLUSTER: the stack goes to a cluster's scheduler (stack daemon --cluster), which places
// replicas on nodes: deploy.placement and deploy.mode global are accepted there.
[[nodiscard]] Result<void> check_supported(const Stack& stack, bool cluster = false);

// A project name made valid as compose does: lower case, [a-z0-9_-], starting with a letter
// or digit.
[[nodiscard]] std::string normalize_project_name(std::string_view name);

// Names are bounded where the kernel or DNS bounds them, and load() refuses a longer one at its
// position, rather than `up` failing half-way (and `down` after it). A container is named
// <project>-<service>-<n>: 63 + 1 + 63 + 1 + 7 bytes fits a path component and a cgroup name
// (255) with room to spare.
inline constexpr size_t kMaxProjectName = 63;  // part of container names, cgroups, DNS
inline constexpr size_t kMaxServiceName = 63;  // a DNS label on its networks (RFC 1035)
inline constexpr size_t kMaxHostname = 63;     // sethostname(2): 64; an RFC 1123 label: 63
inline constexpr size_t kMaxDomainname = 64;   // setdomainname(2)
inline constexpr size_t kMaxObjectName = 255;  // networks, volumes, container_name: a path
                                               // component or cgroup name
// A container's hostname when the file sets none: its name, or where that is longer than a
// hostname may be, what docker uses for every container (12 hex digits of its id; here, of
// the sha256 of its name).
[[nodiscard]] std::string default_hostname(std::string_view container_name);

// Parses "512m", "1gb", "1024" into bytes.
[[nodiscard]] std::optional<int64_t> parse_bytes(std::string_view text);
// Parses compose durations: "10s", "1m30s", "250ms", "1h".
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// sha256 over the canonical JSON of a normalised service (service_json without replicas):
// the same meaning gives the same hash whatever the key order or formatting of the file.
[[nodiscard]] std::string config_hash(const Service& service);
// The same for a top-level network: what shapes it on the host (a changed one is made again,
// with its containers).
[[nodiscard]] std::string network_config_hash(const Network& network);
// A short hash of each top-level field of the same JSON, so a plan can say what changed
// ("environment changed").
[[nodiscard]] std::map<std::string, std::string> config_field_hashes(const Service& service);

// The canonical, normalised form of a service or a whole stack in Compose long syntax, keys
// sorted: what `stack config` prints and what config_hash() digests. stack_json writes "$" as
// "$$" (values are interpolated already), so loading its rendering gives the same rendering.
[[nodiscard]] nlohmann::json service_json(const Service& service);
[[nodiscard]] nlohmann::json stack_json(const Stack& stack);
// stack_json as YAML text (canonical order: name, services, networks, volumes, secrets,
// configs, then sorted keys) or as indented JSON text.
[[nodiscard]] std::string render_yaml(const nlohmann::json& doc);
[[nodiscard]] std::string render_json(const nlohmann::json& doc);

}  // namespace stack::spec
