// `stack volume ls|inspect|create|rm|prune`: the daemon's named volumes, through its API.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace stack::cli {

namespace {

using nlohmann::json;

// "KEY=VALUE" options into an object; a word without '=' is an error.
json pairs(const std::vector<std::string>& words, const char* flag) {
  json out = json::object();
  for (const auto& w : words) {
    auto eq = w.find('=');
    if (eq == std::string::npos) throw CLI::ValidationError(flag, "expected KEY=VALUE, got " + w);
    out[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return out;
}

}  // namespace

void add_volume_commands(CLI::App& app) {
  auto* volume = app.add_subcommand("volume", "Manage named volumes");
  volume->require_subcommand(1);
  static std::string format = "table";
  auto format_option = [](CLI::App* c) {
    c->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  };

  auto* ls = volume->add_subcommand("ls", "List volumes");
  format_option(ls);
  ls->callback([] {
    auto list = json::parse(call("GET", "/v1/volumes"));
    if (format == "json") {
      std::printf("%s\n", list.dump(2).c_str());
      return;
    }
    std::printf("%-8s %-40s %-20s %s\n", "DRIVER", "VOLUME NAME", "PROJECT", "IN USE BY");
    for (const auto& v : list) {
      std::string users;
      for (const auto& u : v["used_by"]) users += (users.empty() ? "" : ",") + u.get<std::string>();
      std::printf("%-8s %-40s %-20s %s\n", "local", v["name"].get<std::string>().c_str(),
                  v["project"].get<std::string>().c_str(), users.c_str());
    }
  });

  auto* inspect = volume->add_subcommand("inspect", "Show volumes as JSON");
  static std::vector<std::string> inspect_names;
  inspect->add_option("name", inspect_names, "NAME")->required();
  inspect->callback([] {
    json out = json::array();
    for (const auto& n : inspect_names)
      out.push_back(json::parse(call("GET", "/v1/volumes/" + url_encode(n))));
    std::printf("%s\n", out.dump(2).c_str());
  });

  auto* create = volume->add_subcommand("create", "Create a volume (local driver)");
  static std::string create_name;
  static std::vector<std::string> opts, labels;
  create->add_option("name", create_name, "NAME")->required();
  create->add_option("-o,--opt", opts,
                     "Driver option type=, o= or device= (as mount(8) takes them)");
  create->add_option("--label", labels, "KEY=VALUE");
  create->callback([] {
    json body = {{"name", create_name},
                 {"driver_opts", pairs(opts, "--opt")},
                 {"labels", pairs(labels, "--label")}};
    auto v = json::parse(call("POST", "/v1/volumes", body.dump()));
    std::printf("%s\n", v["name"].get<std::string>().c_str());
  });

  auto* rm = volume->add_subcommand("rm", "Remove volumes and their data (not while in use)");
  static std::vector<std::string> rm_names;
  rm->add_option("name", rm_names, "NAME")->required();
  rm->callback([] {
    for (const auto& n : rm_names) {
      call("DELETE", "/v1/volumes/" + url_encode(n));
      std::printf("%s\n", n.c_str());
    }
  });

  auto* prune = volume->add_subcommand("prune", "Remove every volume no container uses");
  format_option(prune);
  prune->callback([] {
    auto r = json::parse(call("POST", "/v1/volumes/prune", "{}"));
    if (format == "json") {
      std::printf("%s\n", r.dump(2).c_str());
      return;
    }
    for (const auto& n : r["removed"]) std::printf("Deleted %s\n", n.get<std::string>().c_str());
  });
}

}  // namespace stack::cli
