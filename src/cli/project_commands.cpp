// The project-scoped commands that change a project: up (attached or not), plan, down, stop,
// start, restart, rollback; the ones that only read are project_views.cpp's, exec is
// exec_command.cpp's. Each takes -f/-p like compose; the work is the daemon's, this file asks.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <charconv>
#include <chrono>
#include <climits>
#include <ctime>
#include <map>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/project_views.h"
#include "spec/loader.h"

namespace stack::cli {

namespace {

using nlohmann::json;

// The plan's steps, one line each, as the daemon renders them (planner::render_step).
std::string render_plan(const json& plan) {
  std::string out;
  for (const auto& a : plan["actions"]) out += a["text"].get<std::string>() + "\n";
  return out;
}

// Ctrl-C while attached: the first stops the stack gracefully, the second kills it.
std::atomic<int> g_interrupts{0};
std::vector<pid_t> g_pids;  // filled before the graceful stop, read by the second Ctrl-C

// `up`'s attached mode: --abort-on-container-exit, --exit-code-from SERVICE (implies the
// former) and -t/--timeout for the stop that ends it.
struct AttachOptions {
  bool abort_on_exit = false;
  std::string exit_code_from;
  int timeout = -1;  // seconds; -1: each service's stop_grace_period
  std::vector<std::string> attach, no_attach;  // --attach / --no-attach: whose output is shown
};

// Follows the project's logs until every container has exited; STARTED: the containers this
// up started (its plan's start steps), whose output is shown from its first line. With
// ABORT_ON_EXIT, until the first exits: the others are then stopped, and the exit code is that
// container's (or EXIT_CODE_FROM's), as compose returns it.
void attach(const std::string& project, const std::vector<std::string>& started,
            const AttachOptions& opts = {}) {
  bool fresh = !started.empty();
  bool abort_on_exit = opts.abort_on_exit || !opts.exit_code_from.empty();
  // Every container, exited ones too: a one-shot service this up started may have run to its
  // end before this looks, and its output is still shown whole, as compose shows it.
  auto ps = ps_json(project, true);
  std::vector<std::string> names;
  size_t width = 0;
  // --attach SERVICE shows only those; --no-attach SERVICE hides those (both repeatable).
  bool filtering = !opts.attach.empty() || !opts.no_attach.empty();
  auto shown = [&](const std::string& service) {
    return (opts.attach.empty() || std::count(opts.attach.begin(), opts.attach.end(), service)) &&
           !std::count(opts.no_attach.begin(), opts.no_attach.end(), service);
  };
  std::string only;  // the logs stream's container= filter
  for (const auto& c : ps) {
    std::string name = c["name"], service = c["service"];
    bool running = c["state"] == "running" || c["state"] == "restarting";
    // An exited container counts when this up started it; with nothing started, aborting on
    // an exit watches every container (one may have exited before this looks).
    bool ours = running || std::count(started.begin(), started.end(), name) ||
                (abort_on_exit && !fresh);
    if (!ours || !shown(service)) continue;
    only += "&container=" + url_encode(name);
    names.push_back(name);
    width = std::max(width, names.back().size());
  }
  std::string all;
  for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
  if (names.empty() && filtering) {
    std::fprintf(stderr, "No service attached (--attach/--no-attach): running in the background\n");
    return;
  }
  std::fprintf(stderr, "Attaching to %s\n", all.c_str());
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupts.fetch_add(1); };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  LogPrinter printer(false, width);
  std::string exited;  // the first container seen ended, with --abort-on-container-exit
  auto next_poll = std::chrono::steady_clock::now();
  auto stop = [&] {
    if (g_interrupts.load() > 0) return true;
    auto now = std::chrono::steady_clock::now();
    // Stopped a moment after the exit is seen, so that the stream has shown its last lines.
    if (!exited.empty()) return now >= next_poll;
    if (!abort_on_exit || now < next_poll) return false;
    next_poll = now + std::chrono::milliseconds(200);
    for (const auto& c : ps_json(project, true))
      if (std::count(names.begin(), names.end(), c["name"].get<std::string>()) &&
          c["state"] != "running" && c["state"] != "restarting") {
        exited = c["name"];
        next_poll = now + std::chrono::milliseconds(300);
        return false;
      }
    return false;
  };
  auto r = daemon_client().stream(
      "GET",
      project_path(project, "logs") + "?follow=1&until_exit=1&tail=" + (fresh ? "-1" : "0") + only,
      {}, [&](std::string_view line) { printer.print(line); return true; }, stop);
  if (!r) throw ExitCode{report(r.error())};
  json stop_body = json::object();
  if (opts.timeout >= 0) stop_body["timeout"] = opts.timeout;
  if (!exited.empty() || (abort_on_exit && g_interrupts.load() == 0)) {
    // The code: EXIT_CODE_FROM's container, else the one that exited first.
    if (!exited.empty()) std::fprintf(stderr, "Aborting on container exit...\n");
    run_operation("POST", project_path(project, "stop"), stop_body.dump());
    int code = 0;
    for (const auto& c : ps_json(project, true))
      if (opts.exit_code_from.empty() ? c["name"] == exited
                                      : c["service"] == opts.exit_code_from)
        code = c["exit_code"].get<int>();
    throw ExitCode{code};
  }
  if (g_interrupts.load() == 0) return;  // every container exited on its own
  std::fprintf(stderr, "Gracefully stopping... (press Ctrl+C again to force)\n");
  for (const auto& c : ps)
    if (c["pid"].get<int>() > 0) g_pids.push_back(c["pid"].get<int>());  // kill(0) is our group
  struct sigaction force {};
  force.sa_handler = [](int) {
    for (pid_t p : g_pids) ::kill(p, SIGKILL);  // async-signal-safe; ends the graceful waits
  };
  ::sigaction(SIGINT, &force, nullptr);
  run_operation("POST", project_path(project, "stop"), stop_body.dump());
}

}  // namespace

void add_project_commands(CLI::App& app) {
  // up
  auto* up = app.add_subcommand("up", "Create and start the stack's containers");
  static bool detach = false, dry_run = false, force = false, orphans = false, wait = false,
              watch = false, build = false;
  static int wait_timeout = 300;
  static std::vector<std::string> up_services;
  static std::string up_format = "table", up_pull;
  up->add_flag("-d,--detach", detach, "Run in the background");
  up->add_flag("--dry-run", dry_run, "Print the plan, change nothing");
  up->add_flag("--force-recreate", force, "Recreate containers even if unchanged");
  up->add_flag("--build", build, "Build the images of services with a build section again "
                                 "(unchanged steps come from the cache)");
  up->add_flag("--remove-orphans", orphans, "Remove containers of services not in the file");
  up->add_flag("--wait", wait, "Return once every service is running and healthy (implies -d)");
  up->add_option("--wait-timeout", wait_timeout, "Seconds --wait waits at most")->capture_default_str();
  up->add_option("--format", up_format, "Plan output with --dry-run: table or json");
  up->add_option("--pull", up_pull, "Pull images: always, missing or never (default: each "
                                    "service's pull_policy)")
      ->check(CLI::IsMember({"always", "missing", "never"}));
  static AttachOptions up_attach;
  up->add_flag("--abort-on-container-exit", up_attach.abort_on_exit,
               "Stop every container when one exits (attached); exit with its code");
  up->add_option("--exit-code-from", up_attach.exit_code_from,
                 "Exit with this service's container's code (implies --abort-on-container-exit)");
  up->add_option("-t,--timeout", up_attach.timeout,
                 "Seconds to wait for a container to stop when up ends it (default: its "
                 "stop_grace_period)");
  static bool no_start = false, no_recreate = false, recreate_deps = false, no_deps = false;
  static std::vector<std::string> up_scale;
  up->add_flag("--no-start", no_start, "Create the containers, do not start them (the daemon "
                                       "leaves them so until start or up)");
  up->add_flag("--no-recreate", no_recreate, "Keep existing containers even if their "
                                             "configuration changed");
  up->add_flag("--always-recreate-deps", recreate_deps,
               "Recreate the containers of the services the named ones depend on");
  up->add_flag("--no-deps", no_deps, "Do not start the services the named ones depend on");
  up->add_option("--scale", up_scale, "SERVICE=N: run N replicas (repeatable); kept until the "
                                      "next up");
  up->add_option("--attach", up_attach.attach, "Show only this service's output (repeatable)");
  up->add_option("--no-attach", up_attach.no_attach, "Do not show this service's output "
                                                     "(repeatable)");
  up->add_flag("-w,--watch", watch,
               "Apply the develop.watch rules while attached (as `stack watch`)");
  up->add_option("service", up_services, "Services to start (default: all)");
  auto run_up = [] {
    // The daemon loads the files (once, with this environment) and streams the loader's
    // warnings; the CLI only names them.
    if ((up_attach.abort_on_exit || !up_attach.exit_code_from.empty()) && (detach || wait)) {
      std::fprintf(stderr, "stack: --abort-on-container-exit and --exit-code-from need the "
                           "attached mode, not -d or --wait\n");
      throw ExitCode{2};
    }
    if (watch && (detach || wait || no_start)) {
      std::fprintf(stderr, "stack: --watch needs the attached mode, not -d, --wait or "
                           "--no-start (use `stack watch` after up -d)\n");
      throw ExitCode{2};
    }
    auto usage = [](const char* what) {
      std::fprintf(stderr, "stack up: %s\n", what);
      throw ExitCode{2};
    };
    if (force && no_recreate) usage("--force-recreate and --no-recreate are incompatible");
    if (recreate_deps && no_recreate)
      usage("--always-recreate-deps and --no-recreate are incompatible");
    if (no_start && (wait || up_attach.abort_on_exit || !up_attach.exit_code_from.empty()))
      usage("--no-start cannot be combined with --wait, --abort-on-container-exit or "
            "--exit-code-from");
    auto body = json::parse(load_request_json());
    body["services"] = up_services;
    body["no_start"] = no_start;
    body["no_recreate"] = no_recreate;
    body["always_recreate_deps"] = recreate_deps;
    body["no_deps"] = no_deps;
    body["scale"] = parse_scale(up_scale, "up --scale");
    body["force_recreate"] = force;
    body["remove_orphans"] = orphans;
    body["pull"] = up_pull;
    body["build"] = build;
    body["dry_run"] = dry_run;
    body["wait"] = wait;
    body["wait_timeout"] = wait_timeout;
    auto last = json::parse(run_operation("POST", "/v1/up", body.dump()), nullptr, false);
    if (!last.is_object() || !last.contains("plan")) throw ExitCode{1};
    const auto& plan = last["plan"];
    if (dry_run) {
      if (up_format == "json") std::printf("%s\n", plan.dump(2).c_str());
      else std::printf("%s", plan["actions"].empty() ? "nothing to do\n" : render_plan(plan).c_str());
      return;
    }
    if (plan["actions"].empty())
      std::fprintf(stderr, "Nothing to do: %zu container(s) of %s already up to date\n",
                   plan["unchanged"].size(), last.value("project", "").c_str());
    for (const auto& o : plan["orphans"])
      std::fprintf(stderr, "warning: orphan container %s (its service is no longer in the file; "
                           "remove it with --remove-orphans)\n", o.get<std::string>().c_str());
    if (watch && !dry_run)  // beside the attached logs; it ends with the process
      std::thread([project = last.value("project", "")] {
        try {
          run_watch(project, up_services);
        } catch (...) {  // ExitCode of a failed request: the logs go on
        }
      }).detach();
    // attach: false (compose's): its output is not shown unless --attach names it.
    AttachOptions shown = up_attach;
    for (const auto& s : last.value("not_attached", std::vector<std::string>{}))
      if (!std::count(shown.attach.begin(), shown.attach.end(), s)) shown.no_attach.push_back(s);
    if (!detach && !wait && !no_start) {
      std::vector<std::string> started;
      for (const auto& a : plan["actions"])
        if (a["action"] == "start") started.push_back(a["object"]);
      attach(last.value("project", ""), started, shown);
    }
  };
  up->callback(run_up);

  // plan: `up --dry-run` under its own name
  auto* plan = app.add_subcommand("plan", "Print what `stack up` would do, change nothing");
  plan->add_option("--format", up_format, "table or json");
  plan->add_flag("--force-recreate", force, "Plan recreating containers even if unchanged");
  plan->add_flag("--remove-orphans", orphans, "Plan removing containers of services not in the file");
  plan->add_flag("--build", build, "Plan building the images of services with a build section");
  plan->add_option("--pull", up_pull, "Plan pulls as always, missing or never")
      ->check(CLI::IsMember({"always", "missing", "never"}));
  plan->add_option("service", up_services, "Services (default: all)");
  plan->callback([run_up] {
    dry_run = true;
    run_up();
  });

  // down
  auto* down = app.add_subcommand("down", "Stop and remove the project's containers");
  static int down_timeout = -1;
  down->add_option("-t,--timeout", down_timeout, "Seconds to wait before SIGKILL "
                                                 "(default: each service's stop_grace_period)");
  static bool down_volumes = false;
  down->add_flag("-v,--volumes", down_volumes, "Remove the project's named volumes too, with "
                                               "their data");
  static bool down_orphans = false;
  down->add_flag("--remove-orphans", down_orphans,
                 "Accepted as compose has it: down removes every container of the project, those "
                 "of services no longer in the file and those of `run` included");
  static std::string down_rmi;
  down->add_option("--rmi", down_rmi,
                   "Remove the images the services used: all, or local (only those without a "
                   "custom tag, the PROJECT-SERVICE images compose builds)")
      ->check(CLI::IsMember({"all", "local"}));
  down->callback([] {
    auto project = value_or_exit(project_name());
    // The images are named before the containers go; removed after, each through the image
    // store's own removal, which keeps one another container still uses.
    std::vector<std::string> images;
    if (!down_rmi.empty())
      for (const auto& c : ps_json(project, true)) {
        std::string ref = c["image"], service = c["service"];
        bool local = ref == project + "-" + service || ref == project + "-" + service + ":latest";
        if ((down_rmi == "all" || local) && !std::count(images.begin(), images.end(), ref))
          images.push_back(ref);
      }
    json body = json::object();
    if (down_timeout >= 0) body["timeout"] = down_timeout;
    if (down_volumes) body["volumes"] = true;
    run_operation("POST", project_path(project, "down"), body.dump());
    bool tty = ::isatty(2) == 1;
    int code = 0;
    for (const auto& ref : images) {
      auto r = value_or_exit(daemon_client().call("DELETE", "/v1/images/" + url_encode(ref)));
      if (r.status == 404) continue;  // removed already (another service used it too)
      if (r.status >= 400) {
        auto j = json::parse(r.body, nullptr, false);
        std::fprintf(stderr, "stack: image %s kept: %s\n", ref.c_str(),
                     j.is_object() && j.contains("error") ? j["error"].get<std::string>().c_str()
                                                          : r.body.c_str());
        code = 1;
        continue;
      }
      std::fprintf(stderr, " %s✔%s Image %-32s Removed\n", tty ? "\033[32m" : "",
                   tty ? "\033[0m" : "", ref.c_str());
    }
    if (code) throw ExitCode{code};
  });

  add_project_view_commands(app);  // ps, logs, port

  // stop / start / restart
  static std::vector<std::string> which;
  static int stop_timeout = -1;
  auto body = [] {
    json b = {{"services", which}};
    if (stop_timeout >= 0) b["timeout"] = stop_timeout;
    return b.dump();
  };
  auto* stop = app.add_subcommand("stop", "Stop containers, keeping them");
  stop->add_option("-t,--timeout", stop_timeout, "Seconds to wait before SIGKILL");
  stop->add_option("service", which, "Services (default: all)");
  stop->callback([body] {
    run_operation("POST", project_path(value_or_exit(project_name()), "stop"), body());
  });
  auto* start = app.add_subcommand("start", "Start stopped containers");
  start->add_option("service", which, "Services (default: all)");
  start->callback([body] {
    run_operation("POST", project_path(value_or_exit(project_name()), "start"), body());
  });
  auto* restart = app.add_subcommand("restart", "Stop then start containers");
  restart->add_option("-t,--timeout", stop_timeout, "Seconds to wait before SIGKILL");
  restart->add_option("service", which, "Services (default: all)");
  restart->callback([body] {
    run_operation("POST", project_path(value_or_exit(project_name()), "restart"), body());
  });
  auto* rollback = app.add_subcommand(
      "rollback", "Return services to what they ran before their last update (kept while the "
                  "file asks for what they were rolled back from)");
  rollback->add_option("service", which, "Services (default: every one with a previous configuration)");
  rollback->callback([body] {
    run_operation("POST", project_path(value_or_exit(project_name()), "rollback"), body());
  });

  add_events_command(app);
}

}  // namespace stack::cli
