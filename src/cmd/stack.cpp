// The `stack` command line: global flags (accepted before and after the subcommand, and from
// STACK_ROOT / STACK_RUN_ROOT, then the daemon's /etc/stack/daemon.json, so that the CLI finds
// the daemon the service runs), then one subcommand. Exit codes: 0 success, 1 failure, 2 usage
// (and an invalid daemon.json), and `exec` passes on its command's code.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "common/daemon_config.h"

int main(int argc, char** argv) {
  using namespace stack::cli;
  CLI::App app{
      "stack: a declarative multi-container orchestrator for Linux.\n"
      "Runs Compose-format stack files on its own container engine.",
      "stack"};
  app.fallthrough();  // global flags after the subcommand reach this parser too
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every command");
  auto& g = globals();
  const char* env_root = std::getenv("STACK_ROOT");
  const char* env_run = std::getenv("STACK_RUN_ROOT");
  auto config = stack::load_daemon_config(stack::daemon_config_path());
  // A file this user may not read (0600: it may hold credentials one day) leaves the defaults:
  // a member of group stack still reaches the daemon of the default run root.
  if (!config && config.error().sys_errno == EACCES) config = stack::DaemonConfig{};
  if (!config) {
    std::fprintf(stderr, "stack: %s\n", config.error().message.c_str());
    return 2;  // as a usage error: the unit's RestartPreventExitStatus=2 does not retry it
  }
  g.root = env_root && *env_root ? env_root : config->root.value_or("/var/lib/stack");
  g.run_root = env_run && *env_run ? env_run : config->run_root.value_or("/run/stack");
  app.add_option("--root", g.root, "State, images and containers (env STACK_ROOT)")
      ->capture_default_str();
  app.add_option("--run-root", g.run_root, "Runtime files (env STACK_RUN_ROOT)")
      ->capture_default_str();
  // One value per -f: the arguments after it are the subcommand's (issue 15: `restart -f
  // stack.yaml web` took "web" for a file).
  app.add_option("-f,--file", g.files,
                 "Stack file; repeat to merge (default: stack.yaml, compose.yaml, "
                 "docker-compose.yml)")
      ->allow_extra_args(false);
  app.add_option("-p,--project-name", g.project,
                 "Project name (default: the file's name: or "
                 "its directory)");
  app.add_option("--log-level", g.log_level,
                 "The log level of a daemon this command starts: debug, info (default), warn or "
                 "error");

  auto* version = app.add_subcommand("version", "Show the version");
  std::string version_format = "table";
  bool version_short = false;
  version->add_option("--format", version_format, "table or json");
  version->add_flag("--short", version_short, "Only the version number");
  version->callback([&] {
    if (version_short)
      std::printf("%s\n", STACK_VERSION);
    else if (version_format == "json")
      std::printf("%s\n", nlohmann::json{{"version", STACK_VERSION}}.dump().c_str());
    else
      std::printf("stack version %s\n", STACK_VERSION);
  });
  add_project_commands(app);
  add_exec_command(app);
  add_cp_command(app);
  add_attach_command(app);
  add_watch_command(app);
  add_verbs_commands(app);
  add_lifecycle_commands(app);
  add_run_command(app);
  add_image_commands(app);
  add_volume_commands(app);
  add_network_commands(app);
  add_node_commands(app);
  add_daemon_command(app);
  add_config_command(app);
  add_stats_command(app);
  add_build_command(app);
  add_completion_commands(app);  // last: it reads the tree the others built

  std::vector<std::string> args(argv + 1, argv + argc);
  split_exec_command(args);
  std::reverse(args.begin(), args.end());  // CLI11 takes its vector in reverse
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    // Prints the help, or the parser's message; a usage error is 2 whatever CLI11's own code
    // for it (106 for a missing argument, 109 for an extra one...).
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const ExitCode& e) {
    return e.code;
  } catch (const std::exception& e) {
    // A hostile input must not end in an abort with a core: say what gave way.
    std::fprintf(stderr, "stack: unexpected failure: %s\n", e.what());
    return 1;
  }
  return 0;
}
