// `stack image import|ls|rm`: the daemon's image store.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace stack::cli {

namespace {

using nlohmann::json;

std::string human_size(int64_t bytes) {
  char buf[32];
  if (bytes >= 1 << 20) std::snprintf(buf, sizeof buf, "%.1fMB", bytes / 1048576.0);
  else if (bytes >= 1 << 10) std::snprintf(buf, sizeof buf, "%.1fkB", bytes / 1024.0);
  else std::snprintf(buf, sizeof buf, "%lldB", static_cast<long long>(bytes));
  return buf;
}

}  // namespace

void add_image_commands(CLI::App& app) {
  auto* image = app.add_subcommand("image", "Manage images");
  image->require_subcommand(1);

  auto* import = image->add_subcommand("import", "Import a rootfs directory or tarball "
                                                 "(plain, gzip or zstd) as a one-layer image");
  static std::string name, path;
  import->add_option("name", name, "NAME[:TAG]")->required();
  import->add_option("path", path, "Directory or tarball")->required();
  import->callback([] {
    std::fprintf(stderr, "Importing %s from %s\n", name.c_str(), path.c_str());
    auto reply = json::parse(call("POST", "/v1/images/import",
                                  json{{"reference", name},
                                       {"path", std::filesystem::absolute(path).string()}}
                                      .dump()));
    std::printf("%s\n", reply["imported"].get<std::string>().c_str());
  });

  auto* ls = image->add_subcommand("ls", "List images");
  static std::string format = "table";
  ls->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ls->callback([] {
    auto list = json::parse(call("GET", "/v1/images"));
    if (format == "json") {
      std::printf("%s\n", list.dump(2).c_str());
      return;
    }
    std::printf("%-40s %-20s %10s\n", "REFERENCE", "ID", "SIZE");
    for (const auto& i : list)
      std::printf("%-40s %-20s %10s\n", i["reference"].get<std::string>().c_str(),
                  i["id"].get<std::string>().substr(7, 12).c_str(),
                  human_size(i["size"].get<int64_t>()).c_str());
  });

  auto* rm = image->add_subcommand("rm", "Remove images no container uses");
  static std::vector<std::string> names;
  rm->add_option("name", names, "NAME[:TAG]")->required();
  rm->callback([] {
    for (const auto& n : names) {
      call("DELETE", "/v1/images/" + url_encode(n));
      std::printf("Deleted %s\n", n.c_str());
    }
  });
}

}  // namespace stack::cli
