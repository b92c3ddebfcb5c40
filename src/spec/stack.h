// The typed model of a stack file after loading, interpolation and normalisation: what the
// planner and the reconciler consume. Every object keeps the source position it came from so
// later errors can point at file:line:column. Plain data; no YAML or JSON types here.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace stack::spec {

struct SourcePos {
  std::string file;                       // as the user named it
  int line = 0;                           // 1-based; 0 when unknown
  int column = 0;                         // 1-based
  [[nodiscard]] std::string str() const;  // "stack.yaml:3:5"
};

// A `volumes:` entry of a service. Only binds for now; named volumes come with images.
struct Mount {
  std::string type = "bind";
  std::filesystem::path source;  // absolute (relative paths resolved against the project dir)
  std::string target;            // absolute path inside the container
  bool read_only = false;
  SourcePos pos;
};

struct Limits {
  std::optional<int64_t> memory_bytes;  // mem_limit / deploy.resources.limits.memory
  std::optional<double> cpus;           // cpus / deploy.resources.limits.cpus
  std::optional<int64_t> cpu_shares;    // cpu_shares
  std::optional<int64_t> pids;          // pids_limit / deploy.resources.limits.pids
};

// `logging.options` of the default driver; stack caps logs by default.
struct Logging {
  std::string driver = "json-file";  // json-file | local
  int64_t max_size_bytes = 10 * 1024 * 1024;
  int max_files = 3;
};

struct Service {
  std::string name;
  SourcePos pos;

  std::string image;  // "busybox:latest" form, tag defaulted to "latest"
  SourcePos image_pos;
  std::optional<std::vector<std::string>> entrypoint;  // overrides the image's
  std::optional<std::vector<std::string>> command;     // overrides the image's
  std::map<std::string, std::string> environment;      // env_file entries, then environment
  std::string working_dir;                             // empty: the image's
  std::string hostname;                                // empty: the container name
  std::string user;                                    // empty: the image's ("uid[:gid]" or names)
  Limits limits;
  std::string stop_signal = "SIGTERM";
  std::chrono::milliseconds stop_grace_period{10'000};
  std::vector<Mount> volumes;
  Logging logging;
  int replicas = 1;                     // scale / deploy.replicas
  std::vector<std::string> depends_on;  // names of services started before this one
  std::string restart = "no";           // no | always | on-failure[:N] | unless-stopped
};

struct Stack {
  std::string name;                          // the project name
  std::filesystem::path project_dir;         // directory of the first file
  std::vector<std::filesystem::path> files;  // absolute paths of the loaded files
  std::vector<Service> services;             // in file order
  std::vector<std::string> warnings;         // "file:line:col: variable "X" is not set, ..."

  [[nodiscard]] const Service* find(std::string_view service) const;
};

}  // namespace stack::spec
