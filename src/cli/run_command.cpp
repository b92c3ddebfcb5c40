// `stack run SERVICE [COMMAND...]`: a one-off container of a service. The daemon loads the
// files, makes and starts it after what it depends on; attached, this command shows its output
// (from its log, stdout and stderr apart) until it exits and ends with its exit code. Attached,
// this stdin (as compose: -i is the default) and a tty (-t, or this stdin a terminal unless -T)
// are joined to it as `stack attach` does (attach_command.cpp).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace stack::cli {

namespace {

using nlohmann::json;

struct RunFlags {
  bool detach = false, rm = false, no_deps = false, service_ports = false, no_tty = false;
  bool tty = false, interactive = false;
  std::vector<std::string> env, labels, publish, volumes;
  std::string user, workdir, entrypoint, name, service;
};

std::string project_path(const std::string& project, const std::string& what) {
  return "/v1/projects/" + url_encode(project) + "/" + what;
}

// KEY=VALUE pairs; `-e KEY` alone takes this shell's value (and is left out when it has none).
Result<std::map<std::string, std::string>> pairs(const std::vector<std::string>& items,
                                                 const char* flag, bool from_shell) {
  std::map<std::string, std::string> out;
  for (const auto& e : items) {
    auto eq = e.find('=');
    if (eq == 0) return fail(std::string(flag) + ": expected KEY=VALUE, got \"" + e + "\"");
    if (eq != std::string::npos) {
      out[e.substr(0, eq)] = e.substr(eq + 1);
    } else if (!from_shell) {
      out[e] = "";
    } else if (const char* v = std::getenv(e.c_str())) {
      out[e] = v;
    }
  }
  return out;
}

// --entrypoint "sh -c": words apart, as compose splits it (no quoting).
std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

int run(const RunFlags& f) {
  auto usage = [](const std::string& what) {
    std::fprintf(stderr, "stack run: %s\n", what.c_str());
    return ExitCode{2};
  };
  auto env = pairs(f.env, "-e", true);
  auto labels = pairs(f.labels, "-l", false);
  if (f.tty && f.no_tty) throw usage("-t and -T are incompatible");
  // As compose: a terminal when this one is, attached; -i is implied by it.
  bool tty = f.tty || (!f.no_tty && !f.detach && ::isatty(0) == 1 && ::isatty(1) == 1);
  // As compose, -i is the default of an attached run: this stdin goes to the service (a pipe
  // without a terminal; its end is the service's end of input). Detached, there is no stdin.
  (void)f.interactive;
  bool interactive = !f.detach;
  if (!env) throw usage(env.error().message);
  if (!labels) throw usage(labels.error().message);
  auto body = json::parse(load_request_json());
  body["service"] = f.service;
  if (!exec_command().empty()) body["command"] = exec_command();
  if (!f.entrypoint.empty()) body["entrypoint"] = words(f.entrypoint);
  body["env"] = *env;
  body["labels"] = *labels;
  body["user"] = f.user;
  body["workdir"] = f.workdir;
  body["name"] = f.name;
  body["publish"] = f.publish;
  body["volumes"] = f.volumes;
  body["service_ports"] = f.service_ports;
  body["no_deps"] = f.no_deps;
  // Detached, nobody waits for its exit here: the daemon's supervisor removes it.
  body["auto_remove"] = f.detach && f.rm;
  body["tty"] = tty;
  body["interactive"] = interactive;
  auto last = json::parse(run_operation("POST", "/v1/run", body.dump()), nullptr, false);
  if (!last.is_object() || !last.contains("container")) return 1;
  std::string project = last["project"], container = last["container"];
  if (f.detach) {
    std::printf("%s\n", container.c_str());
    return 0;
  }
  auto remove = [&] {
    if (!f.rm) return;
    json rm = {{"containers", {container}}, {"stop", true}};
    auto r = daemon_client().stream("POST", project_path(project, "rm"), rm.dump(),
                                    [](std::string_view) { return true; });
    if (!r) std::fprintf(stderr, "stack: --rm: %s\n", r.error().message.c_str());
  };
  // Its terminal or stdin: attached as `stack attach`; one that has already ended has its
  // whole output in its log, read below.
  if (interactive)
    if (auto code = attach_run(project, f.service, container, true)) {
      remove();
      return *code;
    }
  // Its output as it writes it, each line to the stream it was written to, until it exits.
  auto print = [](std::string_view line) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("text")) return true;
    FILE* to = j.value("stream", "") == "stderr" ? stderr : stdout;
    std::fprintf(to, "%s\n", j["text"].get<std::string>().c_str());
    std::fflush(to);
    return true;
  };
  check(daemon_client()
            .stream("GET",
                    project_path(project, "logs") + "?follow=1&until_exit=1&tail=-1&container=" +
                        url_encode(container),
                    {}, print)
            .map([](int) {}));
  int code = 1;
  for (const auto& c : json::parse(call("GET", project_path(project, "containers") + "?all=1")))
    if (c["name"] == container) code = c["state"] == "exited" ? c["exit_code"].get<int>() : 1;
  remove();
  return code;
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto* run_cmd = app.add_subcommand("run", "Run a one-off command in a new container of a service");
  static RunFlags flags;
  run_cmd->add_flag("-d,--detach", flags.detach, "Run in the background; print the container's name");
  run_cmd->add_flag("--rm", flags.rm, "Remove the container once it has exited (with -d: the daemon removes it)");
  run_cmd->add_option("-e,--env", flags.env, "Set an environment variable KEY=VALUE (KEY alone: its "
                                             "value here); repeatable")
      ->allow_extra_args(false);
  run_cmd->add_option("-l,--label", flags.labels, "Add a label KEY=VALUE; repeatable")
      ->allow_extra_args(false);
  run_cmd->add_option("-u,--user", flags.user, "Run as this user (name or uid[:gid] of the image)");
  run_cmd->add_option("-w,--workdir", flags.workdir, "Working directory in the container");
  run_cmd->add_option("--entrypoint", flags.entrypoint, "Override the entrypoint (words apart); "
                                                        "the service's command is dropped");
  run_cmd->add_option("--name", flags.name, "The container's name (default "
                                            "PROJECT-SERVICE-run-ID)");
  run_cmd->add_option("-p,--publish", flags.publish, "Publish a port, as in the file's ports "
                                                     "(HOST:CONTAINER); repeatable")
      ->allow_extra_args(false);
  run_cmd->add_option("-v,--volume", flags.volumes, "Mount a volume or bind, as in the file's "
                                                    "volumes; repeatable")
      ->allow_extra_args(false);
  run_cmd->add_flag("--service-ports", flags.service_ports,
                    "Publish the service's own ports too (default: only -p's)");
  run_cmd->add_flag("--no-deps", flags.no_deps, "Do not start the services it depends on");
  run_cmd->add_flag("-i,--interactive", flags.interactive,
                    "Send this stdin to it (the default, as compose, unless -d); its end is "
                    "the end of the service's input");
  run_cmd->add_flag("-t,--tty", flags.tty,
                    "Allocate a terminal (default: when this stdin and stdout are terminals, "
                    "attached)");
  run_cmd->add_flag("-T,--no-TTY", flags.no_tty,
                    "Do not allocate a terminal (the output comes from the container's log, "
                    "stdout and stderr apart; this stdin is a pipe to it)");
  run_cmd->add_option("service", flags.service, "The service")->required();
  run_cmd->footer(
      "Usage: stack run [OPTIONS] SERVICE [COMMAND] [ARG...]\n"
      "Everything after SERVICE is the command, options included.");
  run_cmd->callback([] { throw ExitCode{run(flags)}; });
}

}  // namespace stack::cli
