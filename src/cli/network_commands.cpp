// `stack network ls|inspect|create|rm`: the daemon's networks, through its API. A network made
// here belongs to no project: stack files join it as external (or by its name), and only
// `stack network rm` removes it.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace stack::cli {

using nlohmann::json;

void add_network_commands(CLI::App& app) {
  auto* network = app.add_subcommand("network", "Manage networks");
  network->require_subcommand(1);
  static std::string format = "table";

  auto* ls = network->add_subcommand("ls", "List networks");
  ls->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ls->callback([] {
    auto list = json::parse(call("GET", "/v1/networks"));
    if (format == "json") {
      std::printf("%s\n", list.dump(2).c_str());
      return;
    }
    std::printf("%-32s %-8s %-20s %-18s %s\n", "NAME", "DRIVER", "PROJECT", "SUBNET", "CONTAINERS");
    for (const auto& n : list)
      std::printf("%-32s %-8s %-20s %-18s %zu\n", n["name"].get<std::string>().c_str(),
                  n.value("driver", "bridge").c_str(),
                  n.value("ingress", false) ? "(cluster ingress)"
                                            : n["project"].get<std::string>().c_str(),
                  n["subnet"].get<std::string>().c_str(),
                  n["containers"].size());
  });

  auto* inspect = network->add_subcommand("inspect", "Show networks as JSON");
  static std::vector<std::string> inspect_names;
  inspect->add_option("name", inspect_names, "NAME")->required();
  inspect->callback([] {
    json out = json::array();
    for (const auto& n : inspect_names)
      out.push_back(json::parse(call("GET", "/v1/networks/" + url_encode(n))));
    std::printf("%s\n", out.dump(2).c_str());
  });

  auto* create = network->add_subcommand("create", "Create a bridge network of no project");
  static std::string create_name, subnet;
  create->add_option("name", create_name, "NAME")->required();
  create->add_option("--subnet", subnet, "Its IPv4 subnet (default: a free /24 of the pool)");
  create->callback([] {
    json body = {{"name", create_name}, {"subnet", subnet}};
    auto n = json::parse(call("POST", "/v1/networks", body.dump()));
    std::printf("%s\n", n["name"].get<std::string>().c_str());
  });

  auto* rm = network->add_subcommand("rm", "Remove networks made by `stack network create` "
                                           "(not while a container joins one)");
  static std::vector<std::string> rm_names;
  rm->add_option("name", rm_names, "NAME")->required();
  rm->callback([] {
    for (const auto& n : rm_names) {
      call("DELETE", "/v1/networks/" + url_encode(n));
      std::printf("%s\n", n.c_str());
    }
  });
}

}  // namespace stack::cli
