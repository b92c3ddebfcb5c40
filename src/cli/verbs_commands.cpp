// The compose verbs that act on what a project runs, beyond up/down/ps: kill, pause, unpause,
// top, wait, ls, images. Each asks the daemon (every host change is an API call) and prints as `docker
// compose` does; nothing here reads /proc or the state itself.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace stack::cli {

namespace {

using nlohmann::json;

std::string project_path(const std::string& project, const std::string& what) {
  return "/v1/projects/" + url_encode(project) + "/" + what;
}

std::string services_query(const std::vector<std::string>& services) {
  std::string q;
  for (const auto& s : services) q += (q.empty() ? "?" : "&") + std::string("service=") + url_encode(s);
  return q;
}


// "HH:MM" for a start today, else "Mon DD", as ps(1)'s STIME.
std::string stime(int64_t ms) {
  time_t s = static_cast<time_t>(ms / 1000), now = ::time(nullptr);
  struct tm tm {}, today {};
  localtime_r(&s, &tm);
  localtime_r(&now, &today);
  char buf[32];
  std::strftime(buf, sizeof buf, tm.tm_yday == today.tm_yday && tm.tm_year == today.tm_year
                                     ? "%H:%M" : "%b%d", &tm);
  return buf;
}

std::string cpu_time(uint64_t ms) {
  uint64_t s = ms / 1000;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
                static_cast<unsigned long long>(s / 60 % 60), static_cast<unsigned long long>(s % 60));
  return buf;
}

// "busybox" is "busybox:latest"; a registry's library prefix is not part of the name shown.
std::string normal_ref(std::string ref) {
  for (const char* prefix : {"docker.io/library/", "docker.io/"})
    if (ref.rfind(prefix, 0) == 0) ref = ref.substr(std::string(prefix).size());
  auto slash = ref.rfind('/');
  if (ref.find('@') == std::string::npos &&
      ref.find(':', slash == std::string::npos ? 0 : slash) == std::string::npos)
    ref += ":latest";
  return ref;
}

void add_kill(CLI::App& app) {
  auto* kill = app.add_subcommand("kill", "Force stop service containers");
  static std::string signal = "SIGKILL";
  static std::vector<std::string> services;
  static bool orphans = false;
  kill->add_option("-s,--signal", signal, "SIGNAL to send to the container (default SIGKILL)");
  kill->add_flag("--remove-orphans", orphans,
                 "Accepted for compose compatibility (kill never removes a container)");
  kill->add_option("service", services, "Services (default: all)");
  kill->callback([] {
    auto project = value_or_exit(project_name());
    auto reply = json::parse(call("POST", project_path(project, "kill"),
                                  json{{"services", services}, {"signal", signal}}.dump()));
    bool tty = ::isatty(2) == 1;
    for (const auto& name : reply["killed"])
      std::fprintf(stderr, " %s✔%s Container %-28s Killed\n", tty ? "\033[32m" : "",
                   tty ? "\033[0m" : "", name.get<std::string>().c_str());
  });
}

// pause and unpause: the freezer cgroup of each running container of the services.
void add_pause(CLI::App& app, const std::string& verb, const std::string& help, const char* done) {
  auto* cmd = app.add_subcommand(verb, help);
  auto services = std::make_shared<std::vector<std::string>>();
  cmd->add_option("service", *services, "Services (default: all)");
  cmd->callback([verb, services, done] {
    auto project = value_or_exit(project_name());
    auto reply = json::parse(call("POST", project_path(project, verb),
                                  json{{"services", *services}}.dump()));
    bool tty = ::isatty(2) == 1;
    for (const auto& name : reply[verb == "pause" ? "paused" : "unpaused"])
      std::fprintf(stderr, " %s✔%s Container %-28s %s\n", tty ? "\033[32m" : "",
                   tty ? "\033[0m" : "", name.get<std::string>().c_str(), done);
  });
}

void add_top(CLI::App& app) {
  auto* top = app.add_subcommand("top", "Display the running processes");
  static std::vector<std::string> services;
  top->add_option("service", services, "Services (default: all)");
  top->callback([] {
    auto project = value_or_exit(project_name());
    auto list = json::parse(call("GET", project_path(project, "top") + services_query(services)));
    bool first = true;
    for (const auto& c : list) {
      std::printf("%s%s\n", first ? "" : "\n", c["container"].get<std::string>().c_str());
      first = false;
      std::vector<std::vector<std::string>> rows = {
          {"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}};
      for (const auto& p : c["processes"])
        rows.push_back({std::to_string(p["uid"].get<uint32_t>()), std::to_string(p["pid"].get<int>()),
                        std::to_string(p["ppid"].get<int>()), "0",
                        stime(p["started_at"].get<int64_t>()), p["tty"],
                        cpu_time(p["cpu_ms"].get<uint64_t>()), p["command"]});
      print_table(rows);
    }
  });
}

void add_wait(CLI::App& app) {
  auto* wait = app.add_subcommand(
      "wait", "Block until the first container of the services stops; its exit code is ours");
  static std::vector<std::string> services;
  static bool down_project = false;
  wait->add_option("service", services, "Services")->required();
  wait->add_flag("--down-project", down_project, "Drop the project when the first container stops");
  wait->callback([] {
    auto project = value_or_exit(project_name());
    std::string last;
    auto r = daemon_client().stream("GET", project_path(project, "wait") + services_query(services),
                                    {}, [&](std::string_view line) {
                                      last = std::string(line);
                                      return true;
                                    });
    if (!r) throw ExitCode{report(r.error())};
    auto j = json::parse(last, nullptr, false);
    if (!j.is_object() || j.contains("error") || !j.contains("exit_code")) {
      std::fprintf(stderr, "stack: %s\n",
                   j.is_object() && j.contains("error") ? j["error"].get<std::string>().c_str()
                                                        : "the daemon ended the wait early");
      throw ExitCode{1};
    }
    if (down_project) run_operation("POST", project_path(project, "down"), "{}");
    throw ExitCode{j["exit_code"].get<int>()};
  });
}

void add_ls(CLI::App& app) {
  auto* ls = app.add_subcommand("ls", "List running projects");
  static bool all = false, quiet = false;
  static std::string format = "table";
  ls->add_flag("-a,--all", all, "Show all stopped projects too");
  ls->add_flag("-q,--quiet", quiet, "Only project names");
  ls->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  static std::vector<std::string> filters;
  ls->add_option("--filter", filters, "name=TEXT: only projects whose name contains TEXT "
                                      "(repeatable: any of them)");
  ls->callback([] {
    std::vector<std::string> names;
    for (const auto& f : filters) {
      if (f.rfind("name=", 0) != 0) {
        std::fprintf(stderr, "stack ls: --filter %s: the only filter is name=TEXT\n", f.c_str());
        throw ExitCode{2};
      }
      names.push_back(f.substr(5));
    }
    auto projects = json::parse(call("GET", "/v1/projects?files=1"));
    auto containers = json::parse(call("GET", "/v1/containers?all=1"));
    json out = json::array();
    for (const auto& p : projects) {
      std::string name = p["name"], files;
      if (!names.empty() && std::none_of(names.begin(), names.end(), [&](const std::string& n) {
            return name.find(n) != std::string::npos;
          }))
        continue;
      for (const auto& f : p["files"]) files += (files.empty() ? "" : ",") + f.get<std::string>();
      std::map<std::string, int> counts;  // state -> containers, in compose's order (by name)
      for (const auto& c : containers)
        if (c["project"] == name) counts[c["state"].get<std::string>()]++;
      if (!all && !counts.count("running")) continue;
      std::string status;
      for (const auto& [state, n] : counts)
        status += (status.empty() ? "" : ", ") + state + "(" + std::to_string(n) + ")";
      out.push_back({{"Name", name}, {"Status", status}, {"ConfigFiles", files}});
    }
    if (format == "json") {
      std::printf("%s\n", out.dump().c_str());
      return;
    }
    if (quiet) {
      for (const auto& p : out) std::printf("%s\n", p["Name"].get<std::string>().c_str());
      return;
    }
    std::vector<std::vector<std::string>> rows = {{"NAME", "STATUS", "CONFIG FILES"}};
    for (const auto& p : out) rows.push_back({p["Name"], p["Status"], p["ConfigFiles"]});
    print_table(rows);
  });
}

void add_images(CLI::App& app) {
  auto* images = app.add_subcommand("images", "List images used by the created containers");
  static std::vector<std::string> services;
  static std::string format = "table";
  static bool quiet = false;
  images->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  images->add_flag("-q,--quiet", quiet, "Only image IDs");
  images->add_option("service", services, "Services (default: all)");
  images->callback([] {
    auto project = value_or_exit(project_name());
    auto containers = json::parse(call("GET", project_path(project, "containers") + "?all=1"));
    auto store = json::parse(call("GET", "/v1/images"));
    json out = json::array();
    for (const auto& c : containers) {
      if (!services.empty() &&
          !std::count(services.begin(), services.end(), c["service"].get<std::string>()))
        continue;
      std::string ref = normal_ref(c["image"]);
      json row = {{"ContainerName", c["name"]}, {"Repository", ref.substr(0, ref.rfind(':'))},
                  {"Tag", ref.substr(ref.rfind(':') + 1)}, {"ID", ""}, {"Size", 0}};
      for (const auto& i : store)
        if (normal_ref(i["repository"].get<std::string>() + ":" + i["tag"].get<std::string>()) == ref) {
          row["ID"] = i["id"];
          row["Size"] = i["size"];
        }
      out.push_back(row);
    }
    if (format == "json") {
      std::printf("%s\n", out.dump().c_str());
      return;
    }
    auto short_id = [](const json& r) {
      std::string id = r["ID"];
      return id.size() > 7 ? id.substr(7, 12) : id;
    };
    if (quiet) {
      for (const auto& r : out) std::printf("%s\n", short_id(r).c_str());
      return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"}};
    for (const auto& r : out)
      rows.push_back({r["ContainerName"], r["Repository"], r["Tag"], short_id(r),
                      human_size(r["Size"].get<uint64_t>())});
    print_table(rows);
  });
}

}  // namespace

void add_verbs_commands(CLI::App& app) {
  add_kill(app);
  add_pause(app, "pause", "Pause services (their processes frozen by the freezer cgroup)", "Paused");
  add_pause(app, "unpause", "Unpause services", "Unpaused");
  add_top(app);
  add_wait(app);
  add_ls(app);
  add_images(app);
}

}  // namespace stack::cli
