// The project-scoped commands: up, down, ps, logs, port, stop, start, restart, events (exec is
// exec_command.cpp). Each takes -f/-p like compose; the work is the daemon's, this file asks
// and prints.
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
#include "spec/loader.h"

namespace stack::cli {

namespace {

using nlohmann::json;

std::string project_path(const std::string& project, const std::string& what) {
  return "/v1/projects/" + url_encode(project) + "/" + what;
}

// "30s", "5m", "2h", "1d" before now, or an RFC 3339 time: unix ms.
Result<int64_t> parse_since(const std::string& text) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  char unit = text.empty() ? 0 : text.back();
  static const std::map<char, int64_t> kUnits = {{'s', 1000}, {'m', 60'000}, {'h', 3'600'000},
                                                 {'d', 86'400'000}};
  if (auto u = kUnits.find(unit); u != kUnits.end()) {
    int64_t n = 0;
    auto body = std::string_view(text).substr(0, text.size() - 1);
    auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), n);
    if (ec == std::errc() && p == body.data() + body.size() && !body.empty() && n >= 0)
      return now - n * u->second;
  }
  struct tm tm {};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end && (*end == 0 || *end == 'Z')) return static_cast<int64_t>(timegm(&tm)) * 1000;
  return fail("expected a duration (30s, 5m, 2h, 1d) or a time (2026-11-30T10:00:00Z), got \"" +
              text + "\"");
}

int64_t parse_iso_ms(const std::string& iso) {
  if (iso.empty()) return 0;
  struct tm tm {};
  if (!strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

// A log record's time ("2026-11-30T10:00:00.123456789Z") in unix ms.
int64_t record_ms(const std::string& iso) {
  int64_t ms = parse_iso_ms(iso);
  auto dot = iso.find('.');
  if (dot != std::string::npos) {
    std::string frac = iso.substr(dot + 1, 3);
    while (frac.size() < 3) frac += '0';
    if (std::all_of(frac.begin(), frac.end(), ::isdigit)) ms += std::stoi(frac);
  }
  return ms;
}

std::string ago(const std::string& iso) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  int64_t s = std::max<int64_t>(0, (now - parse_iso_ms(iso)) / 1000);
  if (s < 60) return std::to_string(s) + " seconds";
  if (s < 3600) return std::to_string(s / 60) + " minutes";
  if (s < 86400) return std::to_string(s / 3600) + " hours";
  return std::to_string(s / 86400) + " days";
}

std::string status_text(const json& c) {
  std::string state = c["state"];
  std::string health = c.value("health", "");
  if (state == "running")
    return "Up " + ago(c["started_at"]) + (health.empty() ? "" : " (" + health + ")");
  if (state == "paused") return "Up " + ago(c["started_at"]) + " (Paused)";
  if (state == "exited")
    return "Exited (" + std::to_string(c["exit_code"].get<int>()) + ")" +
           (c["oom_killed"].get<bool>() ? " OOMKilled" : "") + " " + ago(c["finished_at"]) + " ago";
  if (state == "restarting")
    return "Restarting (" + std::to_string(c["exit_code"].get<int>()) + ")";
  std::string error = c.value("error", "");
  if (!error.empty()) return "Error: " + (error.size() > 60 ? error.substr(0, 57) + "..." : error);
  return state == "created" ? "Created" : state;
}

std::string joined(const json& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s.get<std::string>();
  return out;
}


// The plan's steps, one line each, as the daemon renders them (planner::render_step).
std::string render_plan(const json& plan) {
  std::string out;
  for (const auto& a : plan["actions"]) out += a["text"].get<std::string>() + "\n";
  return out;
}

json ps_json(const std::string& project, bool all) {
  return json::parse(call("GET", project_path(project, "containers") + (all ? "?all=1" : "")));
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

  // ps
  auto* ps = app.add_subcommand("ps", "List the project's containers");
  static bool ps_all = false, ps_quiet = false, ps_services = false, ps_no_trunc = false,
              ps_orphans = true;
  static std::string ps_format = "table";
  static std::vector<std::string> ps_status, ps_filter, ps_which;
  ps->add_flag("-a,--all", ps_all, "Include stopped containers");
  ps->add_flag("-q,--quiet", ps_quiet, "Only names");
  ps->add_flag("--services", ps_services, "Only the services' names");
  ps->add_flag("--no-trunc", ps_no_trunc, "Do not shorten the command");
  ps->add_flag("--orphans", ps_orphans, "Include containers of services the file no longer has "
                                        "(default true; --orphans=false leaves them out)");
  ps->add_option("--status", ps_status, "Only containers in this state (repeatable): created, "
                                        "restarting, running, exited, dead")
      ->check(CLI::IsMember({"paused", "restarting", "removing", "running", "dead", "created",
                             "exited"}));
  ps->add_option("--filter", ps_filter, "KEY=VALUE; the key compose knows: status");
  ps->add_option("--format", ps_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ps->add_option("service", ps_which, "Services (default: all)");
  ps->callback([] {
    auto project = value_or_exit(project_name());
    std::vector<std::string> states = ps_status;
    for (const auto& f : ps_filter) {
      if (f.rfind("status=", 0) != 0) {
        std::fprintf(stderr, "stack ps: --filter %s: the only filter is status=STATE\n", f.c_str());
        throw ExitCode{2};
      }
      states.push_back(f.substr(7));
    }
    // A state filter looks at every container, as compose's does.
    auto all = ps_json(project, ps_all || !states.empty());
    std::vector<std::string> in_file;  // --orphans=false: the services of the stack file
    if (!ps_orphans)
      for (const auto& s : value_or_exit(load_stack()).services) in_file.push_back(s.name);
    json list = json::array();
    for (const auto& c : all)
      if ((ps_orphans || std::count(in_file.begin(), in_file.end(), c["service"].get<std::string>())) &&
          (states.empty() || std::count(states.begin(), states.end(), c["state"].get<std::string>())) &&
          (ps_which.empty() ||
           std::count(ps_which.begin(), ps_which.end(), c["service"].get<std::string>())))
        list.push_back(c);
    if (ps_services) {
      std::vector<std::string> seen;
      for (const auto& c : list)
        if (!std::count(seen.begin(), seen.end(), c["service"].get<std::string>()))
          seen.push_back(c["service"]);
      for (const auto& s : seen) std::printf("%s\n", s.c_str());
      return;
    }
    if (ps_format == "json") {
      std::printf("%s\n", list.dump(2).c_str());
      return;
    }
    if (ps_quiet) {
      for (const auto& s : list) std::printf("%s\n", s["name"].get<std::string>().c_str());
      return;
    }
    // In a cluster each row says where it runs (a slot of another node: "assigned" there).
    bool cluster = std::any_of(list.begin(), list.end(), [](const json& c) { return c.contains("node"); });
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PID"}};
    if (cluster) rows[0].push_back("NODE");
    for (const auto& s : list) {
      std::string cmd = joined(s["command"]);
      if (cmd.size() > 24 && !ps_no_trunc) cmd = cmd.substr(0, 21) + "...";
      int pid = s["pid"];
      bool remote = s.value("state", "") == "assigned";
      rows.push_back({s["name"], s["image"], remote ? "-" : "\"" + cmd + "\"", s["service"],
                      remote ? "-" : ago(s["created_at"]) + " ago",
                      remote ? "assigned" : status_text(s), pid ? std::to_string(pid) : "-"});
      if (cluster) rows.back().push_back(s.value("node", ""));
    }
    print_table(rows);
  });

  // logs
  auto* logs = app.add_subcommand("logs", "Show the output of the project's containers");
  static bool follow = false, timestamps = false, no_color = false, no_prefix = false;
  static int64_t tail = -1;
  static std::string log_since, log_until;
  static std::vector<std::string> log_services;
  logs->add_flag("-f,--follow", follow, "Follow new output");
  logs->add_flag("-t,--timestamps", timestamps, "Show timestamps");
  logs->add_option("-n,--tail", tail, "Only the last N lines of each container");
  logs->add_option("--since", log_since, "Only lines written since then: a duration (30s, 5m, "
                                         "2h) or a time (2026-11-30T10:00:00Z)");
  logs->add_option("--until", log_until, "Only lines written before then (same forms)");
  logs->add_flag("--no-color", no_color, "Monochrome output");
  logs->add_flag("--no-log-prefix", no_prefix, "Do not print the container's name before each line");
  logs->add_option("service", log_services, "Services (default: all)");
  logs->callback([] {
    auto bound = [](const std::string& flag, const std::string& text, int64_t none) {
      if (text.empty()) return none;
      auto t = parse_since(text);
      if (!t) {
        std::fprintf(stderr, "stack logs: %s: %s\n", flag.c_str(), t.error().message.c_str());
        throw ExitCode{2};
      }
      return *t;
    };
    int64_t since = bound("--since", log_since, INT64_MIN), until = bound("--until", log_until, INT64_MAX);
    auto project = value_or_exit(project_name());
    size_t width = 0;
    for (const auto& c : ps_json(project, true))
      if (log_services.empty() ||
          std::count(log_services.begin(), log_services.end(), c["service"].get<std::string>()))
        width = std::max(width, c["name"].get<std::string>().size());
    std::string target = project_path(project, "logs") + "?tail=" + std::to_string(tail) +
                         (follow ? "&follow=1" : "");
    for (const auto& s : log_services) target += "&service=" + url_encode(s);
    LogPrinter printer(timestamps, width, !no_color, !no_prefix);
    std::string refused;  // an error reply's message (logging driver none)
    auto print = [&](std::string_view l) {
      if (l.find("\"error\"") != std::string_view::npos) {
        auto j = json::parse(l, nullptr, false);
        if (j.is_object() && j.contains("error") && !j.contains("text")) {
          refused = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
          return false;
        }
      }
      if (since != INT64_MIN || until != INT64_MAX) {
        auto j = json::parse(l, nullptr, false);
        int64_t t = j.is_object() ? record_ms(j.value("time", "")) : 0;
        if (t < since || t >= until) return true;
      }
      printer.print(l);
      return true;
    };
    auto status = daemon_client().stream("GET", target, {}, print);
    check(status.map([](int) {}));
    if (*status != 200) check(fail(refused.empty() ? "daemon answered " + std::to_string(*status)
                                                   : refused));
  });

  // port
  auto* port = app.add_subcommand("port", "Print the public address of a service's port");
  static std::string port_service, port_protocol = "tcp";
  static int port_private = 0, port_index = 1;
  port->add_option("service", port_service, "The service")->required();
  port->add_option("private_port", port_private, "The container port")->required();
  port->add_option("--protocol", port_protocol, "tcp, udp or sctp (default tcp)")
      ->check(CLI::IsMember({"tcp", "udp", "sctp"}));
  port->add_option("--index", port_index, "Which replica (default 1)");
  port->callback([] {
    auto project = value_or_exit(project_name());
    auto answer = json::parse(call("GET", project_path(project, "port") + "?service=" +
                                              url_encode(port_service) + "&index=" +
                                              std::to_string(port_index) + "&private_port=" +
                                              std::to_string(port_private) + "&protocol=" +
                                              url_encode(port_protocol)));
    std::printf("%s\n", answer["address"].get<std::string>().c_str());
  });

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

  // events
  auto* events = app.add_subcommand("events", "Stream what happens to the project's containers");
  static std::string events_format = "table", events_since;
  static std::vector<std::string> events_filter;
  static bool events_json = false;
  events->add_option("--format", events_format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  events->add_flag("--json", events_json, "Output events as a stream of JSON objects");
  events->add_option("--filter", events_filter,
                     "KEY=VALUE, repeatable: type, service or container; values of one key are "
                     "alternatives, keys must all match");
  events->add_option("--since", events_since,
                     "Also show the events kept since then: a duration (30s, 5m, 2h) or a time "
                     "(2026-11-30T10:00:00Z); the daemon keeps the last 1,000");
  events->callback([] {
    if (events_json) events_format = "json";
    std::map<std::string, std::vector<std::string>> filters;
    for (const auto& f : events_filter) {
      auto eq = f.find('=');
      std::string key = f.substr(0, eq);
      if (eq == std::string::npos || (key != "type" && key != "service" && key != "container")) {
        std::fprintf(stderr, "stack events: --filter %s: expected type=, service= or container=\n",
                     f.c_str());
        throw ExitCode{2};
      }
      filters[key].push_back(f.substr(eq + 1));
    }
    auto project = value_or_exit(project_name());
    std::string target = "/v1/events?project=" + url_encode(project);
    if (!events_since.empty()) {
      auto since = parse_since(events_since);
      if (!since) {
        std::fprintf(stderr, "stack events: --since: %s\n", since.error().message.c_str());
        throw ExitCode{2};
      }
      target += "&since=" + std::to_string(*since);
    }
    auto print = [filters](std::string_view line) {
      if (!filters.empty()) {
        auto e = json::parse(line, nullptr, false);
        if (!e.is_object()) return true;
        for (const auto& [key, values] : filters)
          if (!std::count(values.begin(), values.end(), e.value(key, std::string())))
            return true;
      }
      if (events_format == "json") {
        std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
      } else {
        auto e = json::parse(line, nullptr, false);
        if (!e.is_object()) return true;
        std::string attrs;
        for (const auto& [k, v] : e["attributes"].items())
          attrs += (attrs.empty() ? "" : ", ") + k + "=" + v.get<std::string>();
        std::string container = e["container"];
        std::printf("%s %s %s %s%s%s%s\n", e["time"].get<std::string>().c_str(),
                    container.empty() ? "project" : "container", e["type"].get<std::string>().c_str(),
                    container.empty() ? e["project"].get<std::string>().c_str() : container.c_str(),
                    attrs.empty() ? "" : " (", attrs.c_str(), attrs.empty() ? "" : ")");
      }
      std::fflush(stdout);
      return true;
    };
    check(daemon_client().stream("GET", target, {}, print).map([](int) {}));
    // The stream only ends when the daemon does (killed, or `stack daemon stop`).
    std::fprintf(stderr, "stack: the daemon closed the event stream (it stopped or was killed)\n");
    throw ExitCode{1};
  });
}

}  // namespace stack::cli
