// Shared by the `stack` commands: the global flags, and the ways every command reaches the
// controller, the stack file and the terminal. CLI11 stays out of this header.
#pragma once

#include <chrono>
#include <functional>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "reconciler/controller.h"
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
  std::string log_level = "warn";
};

Globals& globals();

[[nodiscard]] Result<std::unique_ptr<reconciler::Controller>> open_controller();
// Loads the stack file(s) named by -f, or the default file in the current directory.
[[nodiscard]] Result<spec::Stack> load_stack();
// The project a project-scoped command acts on: -p, else the name the stack file gives.
[[nodiscard]] Result<std::string> project_name();

// Prints "Container demo-web-1  Started  3.1ms" lines to stderr.
reconciler::Progress progress_printer();
// Prints the error as "stack: <message>" to stderr and returns the exit code for it.
int report(const Error& e);
bool stdout_is_tty();

// Follows the logs of the given containers, each line prefixed by its name, until every one
// of them has exited or STOP returns true. FROM_START: print what is already logged.
void follow_logs(reconciler::Controller& c, const std::vector<std::string>& containers,
                 bool from_start, bool timestamps, const std::function<bool()>& stop);

// `stack exec SERVICE CMD...`: CMD is cut from the arguments before parsing, so its own
// options ("ls -la") are never taken for stack's.
std::vector<std::string>& exec_command();
void split_exec_command(std::vector<std::string>& args);

void add_project_commands(CLI::App& app);
void add_image_commands(CLI::App& app);
void add_config_command(CLI::App& app);

}  // namespace stack::cli
