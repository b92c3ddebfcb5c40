// Registry transfers as the CLI runs them (pulls and pushes streamed from the daemon, their
// progress on stderr) and the auth file's place. Private to src/cli: image_commands.cpp and
// push_command.cpp share it; transfer_display.cpp owns the drawing.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>

#include "cli/cli.h"

namespace CLI {
class App;
}

namespace stack::cli {

// The auth file docker and podman use: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json,
// ~/.docker/config.json (fs::default_auth_file, which the CLI may not include).
inline std::filesystem::path auth_file() {
  if (const char* f = std::getenv("REGISTRY_AUTH_FILE"); f && *f) return f;
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d)
    return std::filesystem::path(d) / "config.json";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/root") / ".docker" / "config.json";
}

// Runs a pull or a push through the daemon (POST BODY, a JSON object, to /v1/images/pull or
// /v1/images/push) with its progress on stderr unless QUIET: one line per layer and a total,
// a TTY redrawn in place. The result line's value ("pulled": the image, "pushed": reference,
// digest, size...); an error the daemon reports is printed and ends `stack` with 1.
enum class Transfer { pull, push };
nlohmann::json stream_transfer(Transfer kind, const nlohmann::json& body, bool quiet);

// `stack push [SERVICE...]` and `stack image push NAME` (push_command.cpp).
void add_push_commands(CLI::App& app, CLI::App* image);

}  // namespace stack::cli
