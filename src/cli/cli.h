// Shared by the `stack` commands: the global flags, the daemon client, the stack file, and
// printing. CLI11 and nlohmann/json stay out of this header.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/client.h"
#include "common/result.h"
#include "spec/stack.h"

namespace CLI {
class App;
}

namespace stack::cli {

// Thrown by a command to end `stack` with CODE (after it has printed what went wrong).
struct ExitCode {
  int code;
};

// Flags accepted before and after any subcommand.
struct Globals {
  std::string root;
  std::string run_root;
  std::vector<std::string> files;  // -f, repeatable; "-" is stdin
  std::string project;             // -p
  std::string log_level;           // the daemon's, when the CLI starts one; empty: its default
};

Globals& globals();

// The daemon of this --root/--run-root, started in the background if none answers.
api::Client& daemon_client();
// The daemon's program: `stackd` next to this one, else ../libexec/stack/stackd.
std::filesystem::path daemon_binary();
// The global flags a daemon started by this command gets: --root, --run-root, --log-level.
std::vector<std::string> daemon_global_args();
// Loads the stack file(s) named by -f, or the default file in the current directory.
[[nodiscard]] Result<spec::Stack> load_stack();
// The project a project-scoped command acts on: -p, else the name the stack file gives.
[[nodiscard]] Result<std::string> project_name();
// What `up` sends the daemon so that it can load the files itself: absolute paths, -p, the
// working directory and this shell's environment (for interpolation), and the user's registry
// credentials (its pulls use them, never the daemon's own), as a JSON object text.
std::string load_request_json();

// Unwraps R or prints its error and ends with exit code 1.
template <class T>
T value_or_exit(Result<T> r);
void check(Result<void> r);
int report(const Error& e);

// A request whose reply is one JSON document; prints the daemon's error and exits on failure.
std::string call(std::string_view method, std::string_view target, std::string_view body = {});
// A request whose reply streams progress lines ("Container x  Started  0.1s") and ends with
// {"ok"}, {"plan"} or {"error"}; returns that last line's text.
// 1234567 -> "1.2MB", as docker prints sizes.
std::string human_size(uint64_t bytes);

// One line of a build's progress, as compose prints it: "[web] step 2/4: RUN make".
void print_build_line(const std::string& service, const std::string& line);

std::string run_operation(std::string_view method, std::string_view target, std::string_view body,
                          const std::function<bool()>& stop = {});

bool stdout_is_tty();
// ROWS as columns three spaces apart, each as wide as its widest cell (the first row: titles).
void print_table(const std::vector<std::vector<std::string>>& rows);
// Percent-encodes for a URL query value.
std::string url_encode(std::string_view s);

// Prints log lines from the daemon, each prefixed by its container's name.
class LogPrinter {
 public:
  // COLOR: on a terminal, each container's prefix in its own colour; PREFIX: "name |" at all
  // (`logs --no-color`, `--no-log-prefix`).
  LogPrinter(bool timestamps, size_t width, bool color = true, bool prefix = true)
      : timestamps_(timestamps), width_(width), color_(color), prefix_(prefix) {}
  void print(std::string_view json_line);

 private:
  bool timestamps_;
  size_t width_;
  bool color_, prefix_;
  std::vector<std::string> seen_;  // containers in order of first line, for colours
};

void add_project_commands(CLI::App& app);
void add_image_commands(CLI::App& app);
// `image import|load|save`: image_transfer_commands.cpp.
void add_image_transfer_commands(CLI::App* image);
void add_volume_commands(CLI::App& app);
void add_network_commands(CLI::App& app);  // network_commands.cpp
void add_node_commands(CLI::App& app);  // node_commands.cpp
void add_daemon_command(CLI::App& app);
void add_config_command(CLI::App& app);
void add_exec_command(CLI::App& app);
void add_verbs_commands(CLI::App& app);  // verbs_commands.cpp
// `completion bash|zsh` and `help COMMAND`, from APP's own tree: registered last.
void add_completion_commands(CLI::App& app);
void add_stats_command(CLI::App& app);
void add_lifecycle_commands(CLI::App& app);  // create, rm, scale: lifecycle_command.cpp
void add_run_command(CLI::App& app);         // run_command.cpp
// "web=3" arguments of `scale` and `up --scale`: SERVICE -> N; a malformed one ends COMMAND
// with a usage error (exit 2).
std::map<std::string, int> parse_scale(const std::vector<std::string>& args, const char* command);
void add_cp_command(CLI::App& app);      // cp_command.cpp
void add_attach_command(CLI::App& app);  // attach_command.cpp
// `run -i/-t`: this terminal attached to CONTAINER, `run`'s of SERVICE, as `stack attach` does,
// its output from its first line; its exit code, nullopt when it no longer runs.
std::optional<int> attach_run(const std::string& project, const std::string& service,
                              const std::string& container, bool sig_proxy);
void add_watch_command(CLI::App& app);   // watch_command.cpp
// The develop.watch loop of `watch` and `up --watch`: returns only on an error.
int run_watch(const std::string& project, const std::vector<std::string>& services);
void add_build_command(CLI::App& app);  // build_command.cpp
// `stack exec SERVICE CMD...`: CMD is cut from the arguments before parsing, so its own
// options ("ls -la") are never taken for stack's.
std::vector<std::string>& exec_command();
void split_exec_command(std::vector<std::string>& args);

template <class T>
T value_or_exit(Result<T> r) {
  if (!r) throw ExitCode{report(r.error())};
  return std::move(*r);
}

}  // namespace stack::cli
