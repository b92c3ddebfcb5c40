// `stack config`: loads, validates and prints the normalised stack file. Needs neither root
// nor the daemon: it only reads files (and stdin for `-f -`).
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>

#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "spec/loader.h"

extern char** environ;

namespace stack::cli {
namespace {

struct ConfigFlags {
  std::string format = "yaml";
  bool services = false;
  bool volumes = false;
  bool profiles = false;
  bool quiet = false;
  std::string hash;
  std::vector<std::string> profile;
  std::vector<std::string> env_files;
};

spec::LoadOptions config_load_options(const ConfigFlags& flags) {
  spec::LoadOptions opts;
  for (const auto& f : globals().files) {
    opts.files.emplace_back(f);
    if (f == "-" && !opts.stdin_text)
      opts.stdin_text = std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  if (!globals().project.empty()) opts.project_name = globals().project;
  opts.working_dir = std::filesystem::current_path();
  for (char** e = environ; *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq)
      opts.environment.emplace(std::string(*e, static_cast<size_t>(eq - *e)),
                               std::string(eq + 1));
  }
  opts.profiles = flags.profile;
  for (const auto& f : flags.env_files) opts.env_files.emplace_back(f);
  return opts;
}

void run_config(const ConfigFlags& flags) {
  auto stack = spec::load(config_load_options(flags));
  if (!stack) throw ExitCode{report(stack.error())};
  for (const auto& w : stack->warnings) std::fprintf(stderr, "stack: warning: %s\n", w.c_str());
  if (flags.quiet) return;
  if (flags.services) {
    for (const auto& s : stack->services) std::printf("%s\n", s.name.c_str());
  } else if (flags.volumes) {
    for (const auto& v : stack->volumes) std::printf("%s\n", v.key.c_str());
  } else if (flags.profiles) {
    for (const auto& p : stack->profiles) std::printf("%s\n", p.c_str());
  } else if (!flags.hash.empty()) {
    bool found = false;
    for (const auto& s : stack->services) {
      if (flags.hash != "*" && s.name != flags.hash) continue;
      std::printf("%s %s\n", s.name.c_str(), spec::config_hash(s).c_str());
      found = true;
    }
    if (!found) throw ExitCode{report(Error{"no such service: " + flags.hash, 0})};
  } else {
    nlohmann::json doc = spec::stack_json(*stack);
    std::string text = flags.format == "json" ? spec::render_json(doc) : spec::render_yaml(doc);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
}

}  // namespace

void add_config_command(CLI::App& app) {
  static ConfigFlags flags;
  auto* config = app.add_subcommand(
      "config", "Validate the stack file and print it resolved and normalised (canonical form)");
  config->add_option("--format", flags.format, "yaml or json")
      ->check(CLI::IsMember({"yaml", "json"}))
      ->capture_default_str();
  config->add_flag("--services", flags.services, "Print the service names, one per line");
  config->add_flag("--volumes", flags.volumes, "Print the volume names, one per line");
  config->add_flag("--profiles", flags.profiles, "Print the profiles services name");
  config->add_option("--hash", flags.hash, "Print SERVICE's config hash (\"*\": every service)");
  config->add_flag("-q,--quiet", flags.quiet, "Only validate; print nothing on success");
  config->add_option("--profile", flags.profile,
                     "Enable a profile; repeatable (default: COMPOSE_PROFILES)")
      ->allow_extra_args(false);
  config->add_option("--env-file", flags.env_files,
                     "Read interpolation variables from this file instead of .env; repeatable")
      ->allow_extra_args(false);
  config->callback([] { run_config(flags); });
}

}  // namespace stack::cli
