// The project-scoped commands: up, down, ps, logs, exec, stop, start, restart. Each takes
// -f/-p like compose; the work is the controller's, this file parses and prints.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "engine/logs.h"
#include "planner/plan.h"

namespace stack::cli {

namespace {

using nlohmann::json;

template <class T>
T value_or_exit(Result<T> r) {
  if (!r) throw ExitCode{report(r.error())};
  return std::move(*r);
}

void check(Result<void> r) {
  if (!r) throw ExitCode{report(r.error())};
}

std::optional<std::chrono::seconds> timeout_of(int t) {
  if (t < 0) return std::nullopt;
  return std::chrono::seconds(t);
}

std::string iso_time(int64_t ms) {
  if (ms == 0) return "";
  time_t s = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string ago(int64_t ms) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  int64_t s = std::max<int64_t>(0, (now - ms) / 1000);
  if (s < 60) return std::to_string(s) + " seconds";
  if (s < 3600) return std::to_string(s / 60) + " minutes";
  if (s < 86400) return std::to_string(s / 3600) + " hours";
  return std::to_string(s / 86400) + " days";
}

std::string status_text(const reconciler::ContainerStatus& c) {
  if (c.state == "running") return "Up " + ago(c.started_at);
  if (c.state == "exited")
    return "Exited (" + std::to_string(c.exit_code) + ")" + (c.oom_killed ? " OOMKilled" : "") +
           " " + ago(c.finished_at) + " ago";
  return c.state;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

json to_json(const reconciler::ContainerStatus& c) {
  return {{"name", c.name},
          {"project", c.project},
          {"service", c.service},
          {"number", c.number},
          {"image", c.image},
          {"command", c.command},
          {"state", c.state},
          {"pid", c.pid},
          {"exit_code", c.exit_code},
          {"oom_killed", c.oom_killed},
          {"restarts", c.restarts},
          {"created_at", iso_time(c.created_at)},
          {"started_at", iso_time(c.started_at)},
          {"finished_at", iso_time(c.finished_at)}};
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); i++) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); i++) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

json plan_json(const planner::Plan& p) {
  json actions = json::array();
  for (const auto& a : p.actions)
    actions.push_back({{"action", planner::kind_name(a.kind)},
                       {"container", a.container},
                       {"service", a.service},
                       {"reason", a.reason}});
  return {{"actions", actions}, {"unchanged", p.unchanged}, {"orphans", p.orphans}};
}

// Ctrl-C while attached: the first stops the stack gracefully, the second kills it.
std::atomic<int> g_interrupts{0};
void on_interrupt(int) { g_interrupts.fetch_add(1); }

void attach(reconciler::Controller& c, const std::string& project, const planner::Plan& plan) {
  auto ps = value_or_exit(c.ps(project, false));
  std::vector<std::string> names;
  for (const auto& s : ps) names.push_back(s.name);
  std::fprintf(stderr, "Attaching to %s\n", joined(names).c_str());
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  bool fresh = !plan.actions.empty();
  follow_logs(c, names, fresh, false, [] { return g_interrupts.load() > 0; });
  if (g_interrupts.load() == 0) return;  // every container exited on its own
  std::fprintf(stderr, "Gracefully stopping... (press Ctrl+C again to force)\n");
  // A second Ctrl-C while stopping: SIGKILL every init, which ends the graceful waits at once.
  static std::vector<pid_t> pids;
  for (const auto& s : ps) pids.push_back(s.pid);
  struct sigaction force {};
  force.sa_handler = [](int) {
    for (pid_t p : pids) ::kill(p, SIGKILL);
  };
  ::sigaction(SIGINT, &force, nullptr);
  check(c.stop(project, {}, std::nullopt, progress_printer()));
}

}  // namespace

void add_project_commands(CLI::App& app) {
  // up
  auto* up = app.add_subcommand("up", "Create and start the stack's containers");
  static bool detach = false, dry_run = false, force = false, orphans = false;
  static std::vector<std::string> up_services;
  static std::string up_format = "table";
  up->add_flag("-d,--detach", detach, "Run in the background");
  up->add_flag("--dry-run", dry_run, "Print the plan, change nothing");
  up->add_flag("--force-recreate", force, "Recreate containers even if unchanged");
  up->add_flag("--remove-orphans", orphans, "Remove containers of services not in the file");
  up->add_option("--format", up_format, "Plan output with --dry-run: table or json");
  up->add_option("service", up_services, "Services to start (default: all)");
  up->callback([] {
    auto stack = value_or_exit(load_stack());
    for (const auto& w : stack.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    auto c = value_or_exit(open_controller());
    reconciler::UpOptions opts;
    opts.plan = {up_services, force, orphans};
    opts.dry_run = dry_run;
    auto plan = value_or_exit(c->up(stack, opts, progress_printer()));
    if (dry_run) {
      if (up_format == "json") std::printf("%s\n", plan_json(plan).dump(2).c_str());
      else std::printf("%s", plan.empty() ? "nothing to do\n" : planner::render(plan).c_str());
      return;
    }
    if (plan.empty())
      std::fprintf(stderr, "Nothing to do: %zu container(s) of %s already up to date\n",
                   plan.unchanged.size(), stack.name.c_str());
    for (const auto& o : plan.orphans)
      std::fprintf(stderr, "warning: orphan container %s (its service is no longer in the file; "
                           "remove it with --remove-orphans)\n", o.c_str());
    if (!detach) attach(*c, stack.name, plan);
  });

  // down
  auto* down = app.add_subcommand("down", "Stop and remove the project's containers");
  static int down_timeout = -1;
  down->add_option("-t,--timeout", down_timeout, "Seconds to wait before SIGKILL "
                                                 "(default: each service's stop_grace_period)");
  down->callback([] {
    auto project = value_or_exit(project_name());
    auto c = value_or_exit(open_controller());
    check(c->down(project, timeout_of(down_timeout), progress_printer()));
  });

  // ps
  auto* ps = app.add_subcommand("ps", "List the project's containers");
  static bool ps_all = false, ps_quiet = false;
  static std::string ps_format = "table";
  ps->add_flag("-a,--all", ps_all, "Include stopped containers");
  ps->add_flag("-q,--quiet", ps_quiet, "Only names");
  ps->add_option("--format", ps_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ps->callback([] {
    auto project = value_or_exit(project_name());
    auto c = value_or_exit(open_controller());
    auto list = value_or_exit(c->ps(project, ps_all));
    if (ps_format == "json") {
      json arr = json::array();
      for (const auto& s : list) arr.push_back(to_json(s));
      std::printf("%s\n", arr.dump(2).c_str());
      return;
    }
    if (ps_quiet) {
      for (const auto& s : list) std::printf("%s\n", s.name.c_str());
      return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PID"}};
    for (const auto& s : list) {
      std::string cmd = joined(s.command);
      if (cmd.size() > 24) cmd = cmd.substr(0, 21) + "...";
      rows.push_back({s.name, s.image, "\"" + cmd + "\"", s.service, ago(s.created_at) + " ago",
                      status_text(s), s.pid ? std::to_string(s.pid) : "-"});
    }
    print_table(rows);
  });

  // logs
  auto* logs = app.add_subcommand("logs", "Show the output of the project's containers");
  static bool follow = false, timestamps = false;
  static int64_t tail = -1;
  static std::vector<std::string> log_services;
  logs->add_flag("-f,--follow", follow, "Follow new output");
  logs->add_flag("-t,--timestamps", timestamps, "Show timestamps");
  logs->add_option("-n,--tail", tail, "Only the last N lines of each container");
  logs->add_option("service", log_services, "Services (default: all)");
  logs->callback([] {
    auto project = value_or_exit(project_name());
    auto c = value_or_exit(open_controller());
    auto list = value_or_exit(c->ps(project, true));
    std::vector<std::string> names;
    for (const auto& s : list)
      if (log_services.empty() || std::count(log_services.begin(), log_services.end(), s.service))
        names.push_back(s.name);
    size_t width = 0;
    for (const auto& n : names) width = std::max(width, n.size());
    // Interleaved by time, as they were written.
    struct Line { std::string time, name, text; };
    std::vector<Line> lines;
    for (const auto& n : names)
      for (auto& r : value_or_exit(engine::read_logs(c->container_dir(n), tail)))
        lines.push_back({r.time, n, r.text});
    std::stable_sort(lines.begin(), lines.end(),
                     [](const Line& a, const Line& b) { return a.time < b.time; });
    for (const auto& l : lines)
      std::printf("%-*s | %s%s%s\n", static_cast<int>(width), l.name.c_str(),
                  timestamps ? l.time.c_str() : "", timestamps ? " " : "", l.text.c_str());
    std::fflush(stdout);
    if (follow) follow_logs(*c, names, false, timestamps, [] { return false; });
  });

  // exec
  auto* exec = app.add_subcommand("exec", "Run a command in a running container");
  static bool no_tty = false;
  static int index = 1;
  static std::vector<std::string> exec_env;
  static std::string exec_user, exec_workdir;
  exec->add_flag("-T,--no-TTY", no_tty, "Do not allocate a terminal (accepted for compatibility: "
                                        "the command uses stack's own stdin/stdout)");
  exec->add_option("--index", index, "Which replica (default 1)");
  exec->add_option("-e,--env", exec_env, "Extra environment KEY=VALUE");
  exec->add_option("-u,--user", exec_user, "Run as this user");
  exec->add_option("-w,--workdir", exec_workdir, "Working directory in the container");
  static std::string exec_service;
  exec->add_option("service", exec_service, "The service")->required();
  exec->footer("Usage: stack exec [OPTIONS] SERVICE COMMAND [ARG...]\n"
               "Everything after SERVICE is the command, options included.");
  exec->callback([] {
    const auto& command = exec_command();
    if (command.empty()) throw CLI::ValidationError("exec", "needs a COMMAND after the service");
    auto project = value_or_exit(project_name());
    auto c = value_or_exit(open_controller());
    reconciler::ExecOptions o;
    o.service = exec_service;
    o.index = index;
    o.argv = command;
    o.env = exec_env;
    o.user = exec_user;
    o.workdir = exec_workdir;
    throw ExitCode{value_or_exit(c->exec(project, o))};
  });

  // stop / start / restart
  static std::vector<std::string> which;
  static int stop_timeout = -1;
  auto* stop = app.add_subcommand("stop", "Stop containers, keeping them");
  stop->add_option("-t,--timeout", stop_timeout, "Seconds to wait before SIGKILL");
  stop->add_option("service", which, "Services (default: all)");
  stop->callback([] {
    auto project = value_or_exit(project_name());
    auto c = value_or_exit(open_controller());
    check(c->stop(project, which, timeout_of(stop_timeout), progress_printer()));
  });
  auto* start = app.add_subcommand("start", "Start stopped containers");
  start->add_option("service", which, "Services (default: all)");
  start->callback([] {
    auto project = value_or_exit(project_name());
    auto c = value_or_exit(open_controller());
    check(c->start(project, which, progress_printer()));
  });
  auto* restart = app.add_subcommand("restart", "Stop then start containers");
  restart->add_option("-t,--timeout", stop_timeout, "Seconds to wait before SIGKILL");
  restart->add_option("service", which, "Services (default: all)");
  restart->callback([] {
    auto project = value_or_exit(project_name());
    auto c = value_or_exit(open_controller());
    check(c->stop(project, which, timeout_of(stop_timeout), progress_printer()));
    check(c->start(project, which, progress_printer()));
  });
}

}  // namespace stack::cli
