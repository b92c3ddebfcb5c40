// The project commands that only read: ps, logs, port and events (project_views.h). They ask
// the daemon and print; nothing here changes the host. project_commands.cpp registers them, in
// the order `stack --help` lists them.
#include "cli/project_views.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <map>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace stack::cli {

using nlohmann::json;

std::string cluster_state_text(const std::string& state, const std::string& reported_by) {
  return reported_by.empty() ? state : state + " (reported by " + reported_by + " only)";
}

std::string project_path(const std::string& project, const std::string& what) {
  return "/v1/projects/" + url_encode(project) + "/" + what;
}

json ps_json(const std::string& project, bool all) {
  return json::parse(call("GET", project_path(project, "containers") + (all ? "?all=1" : "")));
}

namespace {

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

}  // namespace

void add_project_view_commands(CLI::App& app) {
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
    // In a cluster each row says where it runs (a slot of another node: its state is that
    // node's to report).
    bool cluster = std::any_of(list.begin(), list.end(), [](const json& c) { return c.contains("node"); });
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PID"}};
    if (cluster) rows[0].push_back("NODE");
    // The routing mesh's ports, answered on every node (cluster only: the API adds them).
    bool ports = std::any_of(list.begin(), list.end(), [](const json& c) { return c.contains("ports"); });
    if (ports) rows[0].push_back("PORTS");
    for (const auto& s : list) {
      std::string cmd = joined(s["command"]);
      if (cmd.size() > 24 && !ps_no_trunc) cmd = cmd.substr(0, 21) + "...";
      int pid = s["pid"];
      bool remote = s.contains("reported_by");
      std::string status = remote ? cluster_state_text(s.value("state", ""), s.value("reported_by", ""))
                                  : status_text(s);
      rows.push_back({s["name"], s["image"], remote ? "-" : "\"" + cmd + "\"", s["service"],
                      remote ? "-" : ago(s["created_at"]) + " ago", status,
                      pid ? std::to_string(pid) : "-"});
      if (cluster) rows.back().push_back(s.value("node", ""));
      if (ports) rows.back().push_back(s.contains("ports") ? joined(s["ports"]) : "");
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
}

void add_events_command(CLI::App& app) {
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
