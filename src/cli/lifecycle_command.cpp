// `create`, `rm` and `scale`: the compose verbs that make, remove and count a project's
// containers without `up`. The daemon does the work and keeps what they changed until the next
// `up` (its passes respect it); this file parses, asks and prints.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace stack::cli {

namespace {

using nlohmann::json;

std::string project_path(const std::string& project, const std::string& what) {
  return "/v1/projects/" + url_encode(project) + "/" + what;
}

void add_create(CLI::App& app) {
  auto* create = app.add_subcommand("create", "Create the services' containers, do not start them");
  static bool force = false, no_recreate = false, orphans = false;
  static std::string pull;
  static std::vector<std::string> scale, services;
  create->add_flag("--force-recreate", force, "Recreate containers even if unchanged");
  create->add_flag("--no-recreate", no_recreate, "Keep existing containers even if changed");
  create->add_flag("--remove-orphans", orphans, "Remove containers of services not in the file");
  create->add_option("--pull", pull, "Pull images: always, missing or never")
      ->check(CLI::IsMember({"always", "missing", "never"}));
  create->add_option("--scale", scale, "SERVICE=N: make N replicas (repeatable)");
  create->add_option("service", services, "Services (default: all)");
  create->callback([] {
    if (force && no_recreate) {
      std::fprintf(stderr, "stack create: --force-recreate and --no-recreate are incompatible\n");
      throw ExitCode{2};
    }
    // `up --no-start`: the daemon loads the files itself, as for up.
    auto body = json::parse(load_request_json());
    body["services"] = services;
    body["no_start"] = true;
    body["force_recreate"] = force;
    body["no_recreate"] = no_recreate;
    body["remove_orphans"] = orphans;
    body["pull"] = pull;
    body["scale"] = parse_scale(scale, "create --scale");
    run_operation("POST", "/v1/up", body.dump());
  });
}

void add_rm(CLI::App& app) {
  auto* rm = app.add_subcommand("rm", "Remove stopped service containers");
  static bool force = false, stop = false, volumes = false;
  static std::vector<std::string> services;
  rm->add_flag("-f,--force", force, "Do not ask for confirmation");
  rm->add_flag("-s,--stop", stop, "Stop the containers first, if they run");
  rm->add_flag("-v,--volumes", volumes,
               "Remove the containers' anonymous volumes (they always go with the container)");
  rm->add_option("service", services, "Services (default: all)");
  rm->callback([] {
    auto project = value_or_exit(project_name());
    auto all = json::parse(call("GET", project_path(project, "containers") + "?all=1"));
    std::vector<std::string> doomed;
    for (const auto& c : all) {
      std::string service = c["service"];
      if (!services.empty() && !std::count(services.begin(), services.end(), service)) continue;
      bool up = c["state"] == "running" || c["state"] == "restarting" || c["state"] == "paused";
      if (!up || stop) doomed.push_back(c["name"]);
    }
    if (doomed.empty()) {
      std::fprintf(stderr, "No stopped containers\n");
      return;
    }
    if (!force && ::isatty(0) == 1) {
      std::string list;
      for (const auto& n : doomed) list += (list.empty() ? "" : ", ") + n;
      std::fprintf(stderr, "Going to remove %s\nAre you sure? [yN] ", list.c_str());
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != "y" && answer != "Y") return;
    }
    json body = {{"services", services}, {"stop", stop}};
    auto last = json::parse(run_operation("POST", project_path(project, "rm"), body.dump()),
                            nullptr, false);
    bool tty = ::isatty(2) == 1;
    if (last.is_object() && last.contains("removed"))
      for (const auto& n : last["removed"])
        std::fprintf(stderr, " %s✔%s Container %-28s Removed\n", tty ? "\033[32m" : "",
                     tty ? "\033[0m" : "", n.get<std::string>().c_str());
  });
}

void add_scale(CLI::App& app) {
  auto* scale = app.add_subcommand(
      "scale", "Set the number of containers of services (kept until the next up)");
  static bool no_deps = false;
  static std::vector<std::string> args;
  scale->add_flag("--no-deps", no_deps, "Do not start the services they depend on");
  scale->add_option("service", args, "SERVICE=N, one or more")->required();
  scale->callback([] {
    json body = {{"replicas", parse_scale(args, "scale")}, {"no_deps", no_deps}};
    run_operation("POST", project_path(value_or_exit(project_name()), "scale"), body.dump());
  });
}

}  // namespace

std::map<std::string, int> parse_scale(const std::vector<std::string>& args, const char* command) {
  std::map<std::string, int> out;
  for (const auto& a : args) {
    auto eq = a.find('=');
    int n = -1;
    std::string_view count = eq == std::string::npos ? std::string_view() : std::string_view(a).substr(eq + 1);
    auto [p, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
    if (eq == 0 || eq == std::string::npos || ec != std::errc() || p != count.data() + count.size() ||
        n < 0) {
      std::fprintf(stderr, "stack %s: expected SERVICE=N (N a number from 0), got \"%s\"\n",
                   command, a.c_str());
      throw ExitCode{2};
    }
    out[a.substr(0, eq)] = n;
  }
  return out;
}

void add_lifecycle_commands(CLI::App& app) {
  add_create(app);
  add_rm(app);
  add_scale(app);
}

}  // namespace stack::cli
