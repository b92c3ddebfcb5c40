// `stack image import|ls|rm`: the local image store.
#include <cstdio>
#include <ctime>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "fs/image_store.h"

namespace stack::cli {

namespace {

std::string human_size(int64_t bytes) {
  char buf[32];
  if (bytes >= 1 << 20) std::snprintf(buf, sizeof buf, "%.1fMB", bytes / 1048576.0);
  else if (bytes >= 1 << 10) std::snprintf(buf, sizeof buf, "%.1fkB", bytes / 1024.0);
  else std::snprintf(buf, sizeof buf, "%lldB", static_cast<long long>(bytes));
  return buf;
}

int fail_with(const Error& e) { throw ExitCode{report(e)}; }

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
    auto c = open_controller();
    if (!c) fail_with(c.error());
    std::fprintf(stderr, "Importing %s from %s\n", name.c_str(), path.c_str());
    auto img = (*c)->images().import(name, std::filesystem::absolute(path));
    if (!img) fail_with(img.error().wrap("import " + name));
    std::printf("%s %s\n", img->reference.c_str(), img->id.c_str());
  });

  auto* ls = image->add_subcommand("ls", "List images");
  static std::string format = "table";
  ls->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ls->callback([] {
    auto c = open_controller();
    if (!c) fail_with(c.error());
    auto list = (*c)->images().list();
    if (!list) fail_with(list.error());
    if (format == "json") {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& i : *list)
        arr.push_back({{"reference", i.reference}, {"id", i.id}, {"size", i.size},
                       {"created", i.created}, {"layers", i.layers.size()}});
      std::printf("%s\n", arr.dump(2).c_str());
      return;
    }
    std::printf("%-40s %-20s %10s\n", "REFERENCE", "ID", "SIZE");
    for (const auto& i : *list)
      std::printf("%-40s %-20s %10s\n", i.reference.c_str(), i.id.substr(7, 12).c_str(),
                  human_size(i.size).c_str());
  });

  auto* rm = image->add_subcommand("rm", "Remove images no container uses");
  static std::vector<std::string> names;
  rm->add_option("name", names, "NAME[:TAG]")->required();
  rm->callback([] {
    auto c = open_controller();
    if (!c) fail_with(c.error());
    for (const auto& n : names) {
      if (auto r = (*c)->remove_image(n); !r) fail_with(r.error());
      std::printf("Deleted %s\n", n.c_str());
    }
  });
}

}  // namespace stack::cli
