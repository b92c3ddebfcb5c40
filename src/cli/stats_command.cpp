// `stack stats [SERVICE...] [--no-stream] [--format table|json]`: the daemon's raw counters
// (GET /v1/projects/P/stats), sampled twice a second apart for the CPU %, printed as
// `docker compose stats` prints them (the same columns, the same JSON keys and units).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace stack::cli {

namespace {

using nlohmann::json;

// 1536 -> "1.5KiB", 67108864 -> "64MiB": memory in binary units, 4 significant digits, as
// docker prints it (go-units' BytesSize).
std::string binary_size(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    u++;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g%s", bytes, units[u]);
  return buf;
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", v);
  return buf;
}

json sample(const std::string& project, const std::vector<std::string>& services) {
  std::string target = "/v1/projects/" + url_encode(project) + "/stats";
  for (size_t i = 0; i < services.size(); i++)
    target += (i ? "&service=" : "?service=") + url_encode(services[i]);
  return json::parse(call("GET", target));
}

// One row per container of NOW, its CPU % from its counters in BEFORE (docker's
// cpu_delta / system_delta * cpus is the CPU time over the wall time between the reads).
std::vector<json> rows_of(const json& before, const json& now) {
  std::map<std::string, json> prev;
  for (const auto& c : before) prev[c["name"].get<std::string>()] = c;
  std::vector<json> rows;
  for (const auto& c : now) {
    std::string name = c["name"];
    double cpu = 0;
    if (auto p = prev.find(name); p != prev.end()) {
      double wall = c["read_ns"].get<double>() - p->second["read_ns"].get<double>();
      double used = c["cpu_ns"].get<double>() - p->second["cpu_ns"].get<double>();
      if (wall > 0 && used > 0) cpu = used / wall * 100.0;
    }
    double mem = c["memory_bytes"].get<double>(), limit = c["memory_limit"].get<double>();
    rows.push_back(
        {{"BlockIO", human_size(c["block_read"]) + " / " + human_size(c["block_write"])},
         {"CPUPerc", percent(cpu)},
         {"Container", name},
         {"ID", name},
         {"MemPerc", percent(limit > 0 ? mem / limit * 100.0 : 0)},
         {"MemUsage", binary_size(mem) + " / " + binary_size(limit)},
         {"Name", name},
         {"NetIO", human_size(c["net_rx"]) + " / " + human_size(c["net_tx"])},
         {"PIDs", std::to_string(c["pids"].get<int64_t>())}});
  }
  return rows;
}

void print(const std::vector<json>& rows, bool as_json, bool clear) {
  if (as_json) {
    for (const auto& r : rows) std::printf("%s\n", r.dump().c_str());
    std::fflush(stdout);
    return;
  }
  std::vector<std::vector<std::string>> table = {
      {"NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"}};
  for (const auto& r : rows)
    table.push_back({r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"], r["NetIO"],
                     r["BlockIO"], r["PIDs"]});
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& r : table)
    for (size_t i = 0; i < r.size(); i++) width[i] = std::max(width[i], r[i].size());
  std::string out = clear ? "\033[2J\033[H" : "";
  for (const auto& r : table) {
    for (size_t i = 0; i < r.size(); i++) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 3, ' ');
    }
    out += "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

void add_stats_command(CLI::App& app) {
  auto* stats = app.add_subcommand(
      "stats", "Show the running containers' CPU, memory, network and block I/O, and PIDs");
  static bool no_stream = false;
  static std::string format = "table";
  static std::vector<std::string> services;
  stats->add_flag("--no-stream", no_stream, "Print one sample and exit");
  stats->add_option("--format", format, "table or json (one object a line, as docker's)")
      ->check(CLI::IsMember({"table", "json"}));
  stats->add_option("service", services, "Services (default: all)");
  stats->callback([] {
    auto project = value_or_exit(project_name());
    bool json_out = format == "json";
    json before = sample(project, services);
    // The CPU % needs two reads; a second apart, as docker's stream refreshes.
    for (;;) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      json now = sample(project, services);
      print(rows_of(before, now), json_out, !no_stream && !json_out && stdout_is_tty());
      if (no_stream) return;
      before = std::move(now);
    }
  });
}

}  // namespace stack::cli
