// The project commands that only read (ps, logs, port, events: project_views.cpp) and the two
// requests every project command makes. Private to src/cli; project_commands.cpp registers the
// commands, keeping their order in `stack --help`.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace CLI {
class App;
}

namespace stack::cli {

// "/v1/projects/PROJECT/WHAT", the project's name encoded.
std::string project_path(const std::string& project, const std::string& what);
// The project's containers as the daemon lists them (ALL: exited ones too).
nlohmann::json ps_json(const std::string& project, bool all);

// A cluster row's state as a table shows it: another node's (REPORTED_BY it) is "unknown
// (reported by NODE only)", this node's as is (`ps`, `node ps`).
std::string cluster_state_text(const std::string& state, const std::string& reported_by);

void add_project_view_commands(CLI::App& app);  // ps, logs, port
void add_events_command(CLI::App& app);

}  // namespace stack::cli
