// What `watch` does to a service's containers, through the daemon like every command: copy a
// host path into one (cp_command.cpp) and run a command in one (watch_command.cpp). Private
// to src/cli; light header.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace stack::cli {

// Copies SOURCE (a host path) to DEST in SERVICE's replica INDEX, as `stack cp` does, DEST's
// missing parent directories made first; for "dir/." (its contents) DEST is the directory.
[[nodiscard]] Result<void> copy_into_service(const std::string& project,
                                             const std::string& service, int index,
                                             const std::string& source, const std::string& dest);

struct ServiceCommand {
  std::vector<std::string> argv, env;  // env: "KEY=VALUE"
  std::string user, workdir;
};
// Runs COMMAND in SERVICE's replica INDEX without a terminal; its exit code, and its output
// (stdout and stderr together).
[[nodiscard]] Result<std::pair<int, std::string>> run_in_service(const std::string& project,
                                                                 const std::string& service,
                                                                 int index,
                                                                 const ServiceCommand& command);

}  // namespace stack::cli
