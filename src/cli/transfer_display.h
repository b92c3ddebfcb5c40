// Registry transfers as the CLI runs them: pulls and pushes streamed from the daemon with the
// user's credential for the registry, their progress on stderr. Private to src/cli:
// image_commands.cpp and push_command.cpp share it; transfer_display.cpp owns the drawing.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "cli/cli.h"

namespace CLI {
class App;
}

namespace stack::cli {

// Runs a pull or a push through the daemon (POST BODY, a JSON object, to /v1/images/pull or
// /v1/images/push) with its progress on stderr unless QUIET: one line per layer and a total,
// a TTY redrawn in place. BODY's reference gets the credential of its registry from this user's
// auth file (read here: the daemon opens no path a request names). The result line's value
// ("pulled": the image, "pushed": reference, digest, size...); an error the daemon reports, or
// an auth file that does not parse, is printed and ends `stack` with 1.
enum class Transfer { pull, push };
nlohmann::json stream_transfer(Transfer kind, nlohmann::json body, bool quiet);

// `stack push [SERVICE...]` and `stack image push NAME` (push_command.cpp).
void add_push_commands(CLI::App& app, CLI::App* image);

}  // namespace stack::cli
