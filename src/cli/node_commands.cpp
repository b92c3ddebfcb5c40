// `stack node ls|inspect|update|ps`: the cluster's nodes, through the daemon's API (which asks
// etcd). A daemon that is not in a cluster answers "this daemon is not in a cluster".
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/project_views.h"

namespace stack::cli {

namespace {

using nlohmann::json;

std::string labels_text(const json& labels) {
  std::string out;
  for (const auto& [k, v] : labels.items())
    out += (out.empty() ? "" : ",") + k + "=" + v.get<std::string>();
  return out.empty() ? "-" : out;
}

}  // namespace

void add_node_commands(CLI::App& app) {
  auto* node = app.add_subcommand("node", "Show and label the nodes of the cluster");
  node->require_subcommand(1);

  auto* ls = node->add_subcommand("ls", "List the nodes: ready (registered under a live lease) "
                                        "or down (gone, labels kept)");
  static std::string format = "table";
  ls->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ls->callback([] {
    auto list = json::parse(call("GET", "/v1/nodes"));
    if (format == "json") {
      std::printf("%s\n", list.dump(2).c_str());
      return;
    }
    bool election = false;
    for (const auto& n : list) election = election || n.value("leader", false);
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "ADDRESS", "STATUS", "LABELS", "CPUS", "MEMORY"}};
    if (election) rows[0].push_back("SCHEDULER");
    for (const auto& n : list) {
      bool ready = n["status"] == "ready";
      std::string name = n["name"].get<std::string>() + (n.value("self", false) ? " *" : "");
      rows.push_back({name, ready ? n["address"].get<std::string>() : "-",
                      n["status"].get<std::string>(), labels_text(n["labels"]),
                      ready ? std::to_string(n["cpus"].get<int>()) : "-",
                      ready ? human_size(n["memory_bytes"].get<uint64_t>()) : "-"});
      if (election) rows.back().push_back(n.value("leader", false) ? "leader" : "");
    }
    print_table(rows);
  });

  auto* inspect = node->add_subcommand("inspect", "Show nodes as JSON");
  static std::vector<std::string> names;
  inspect->add_option("name", names, "NAME")->required();
  inspect->callback([] {
    json out = json::array();
    for (const auto& n : names) out.push_back(json::parse(call("GET", "/v1/nodes/" + url_encode(n))));
    std::printf("%s\n", out.dump(2).c_str());
  });

  auto* ps = node->add_subcommand(
      "ps", "List the containers assigned to a node (this one by default): project, service, "
            "slot and state (assigned: not created yet). Another node's states are reported by "
            "that node only (its own `stack node ps`): shown as unknown");
  static std::string ps_name, ps_format = "table";
  ps->add_option("name", ps_name, "NAME (default: this daemon's node)");
  ps->add_option("--format", ps_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ps->callback([] {
    std::string name = ps_name;
    if (name.empty()) {
      auto version = json::parse(call("GET", "/v1/version"));
      if (!version.contains("cluster") || !version["cluster"].is_object())
        throw CLI::ValidationError("node ps", "this daemon is not in a cluster (start it with "
                                              "--cluster URLS)");
      name = version["cluster"].value("node", "");
    }
    auto list = json::parse(call("GET", "/v1/nodes/" + url_encode(name) + "/ps"));
    if (ps_format == "json") {
      std::printf("%s\n", list.dump(2).c_str());
      return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "PROJECT", "SERVICE", "SLOT", "NODE", "STATE"}};
    for (const auto& c : list)
      rows.push_back({c["name"].get<std::string>(), c["project"].get<std::string>(),
                      c["service"].get<std::string>(), std::to_string(c["slot"].get<int>()),
                      c["node"].get<std::string>(), cluster_state_text(c["state"].get<std::string>(), c.value("reported_by", ""))});
    print_table(rows);
  });

  auto* update = node->add_subcommand("update", "Add or remove a node's labels (kept while the "
                                                "node is down; placement constraints read them)");
  static std::string update_name;
  static std::vector<std::string> add, rm;
  update->add_option("--label-add", add, "KEY=VALUE (repeatable)");
  update->add_option("--label-rm", rm, "KEY (repeatable)");
  update->add_option("name", update_name, "NAME")->required();
  update->callback([] {
    if (add.empty() && rm.empty())
      throw CLI::ValidationError("update", "nothing to do: give --label-add or --label-rm");
    json labels = json::object();
    for (const auto& w : add) {
      auto eq = w.find('=');
      if (eq == std::string::npos || eq == 0)
        throw CLI::ValidationError("--label-add", "expected KEY=VALUE, got " + w);
      labels[w.substr(0, eq)] = w.substr(eq + 1);
    }
    json body = {{"label_add", labels}, {"label_rm", rm}};
    call("POST", "/v1/nodes/" + url_encode(update_name) + "/update", body.dump());
    std::printf("%s\n", update_name.c_str());
  });
}

}  // namespace stack::cli
