// `stack image ls|rm|inspect|prune|tag|pull`, `stack pull [SERVICE...]` and `stack login|logout`
// (import, load, save: image_transfer_commands.cpp): the daemon's image store over the API. Progress goes to stderr (a TTY
// redraws in place, a pipe gets plain lines); results to stdout. Writes nothing but the auth file
// (`login`), which docker and podman read too.
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/cli.h"
#include "cli/transfer_display.h"
#include "common/base64.h"
#include "common/registry_credentials.h"

namespace stack::cli {

std::string human_size(uint64_t bytes) {
  char buf[32];
  if (bytes >= 1000 * 1000 * 1000)
    std::snprintf(buf, sizeof buf, "%.2fGB", bytes / 1e9);
  else if (bytes >= 1000 * 1000)
    std::snprintf(buf, sizeof buf, "%.1fMB", bytes / 1e6);
  else if (bytes >= 1000)
    std::snprintf(buf, sizeof buf, "%.1fkB", bytes / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(bytes));
  return buf;
}

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;


std::string created_ago(const std::string& iso) {
  struct tm tm {};
  if (iso.empty() || !strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return "N/A";
  int64_t s = std::max<int64_t>(0, static_cast<int64_t>(std::time(nullptr) - timegm(&tm)));
  if (s < 60) return "Less than a minute ago";
  if (s < 3600) return std::to_string(s / 60) + " minutes ago";
  if (s < 86400) return std::to_string(s / 3600) + " hours ago";
  if (s < 86400 * 60) return std::to_string(s / 86400) + " days ago";
  return std::to_string(s / (86400 * 30)) + " months ago";
}

// Pulls REFERENCE through the daemon with a progress display; the image JSON, or exits 1.
json pull(const std::string& reference, const std::string& platform, bool quiet) {
  return stream_transfer(Transfer::pull, {{"reference", reference}, {"platform", platform}}, quiet);
}

void print_removal(const json& r) {
  for (const auto& u : r["untagged"]) std::printf("Untagged: %s\n", u.get<std::string>().c_str());
  for (const auto& d : r["deleted"]) std::printf("Deleted: %s\n", d.get<std::string>().c_str());
}

std::string read_password(bool from_stdin) {
  std::string password;
  if (from_stdin) {
    std::getline(std::cin, password);
  } else {
    if (::isatty(0) != 1) {
      std::fprintf(stderr, "stack: no terminal to ask for a password (use --password-stdin)\n");
      throw ExitCode{2};
    }
    termios old{};
    ::tcgetattr(0, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    std::fprintf(stderr, "Password: ");
    ::tcsetattr(0, TCSANOW, &quiet);
    std::getline(std::cin, password);
    ::tcsetattr(0, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
    password.pop_back();
  return password;
}

// The auth file's key for REGISTRY: docker's own for Docker Hub, the host otherwise.
std::string auth_key(const std::string& registry) {
  if (registry == "docker.io" || registry == "index.docker.io" ||
      registry == "registry-1.docker.io")
    return "https://index.docker.io/v1/";
  return registry;
}

// Reads FILE (an empty object when absent), lets CHANGE edit it, writes it back 0600 through a
// temporary file; its directory is made 0700 when missing.
void edit_auth_file(const std::filesystem::path& file, const std::function<void(json&)>& change) {
  json j = json::object();
  if (FILE* f = std::fopen(file.c_str(), "r")) {
    std::string text;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    std::fclose(f);
    j = json::parse(text, nullptr, false);
    if (!j.is_object()) {
      std::fprintf(stderr, "stack: %s is not a JSON object\n", file.c_str());
      throw ExitCode{1};
    }
  }
  change(j);
  std::error_code ec;
  if (!std::filesystem::exists(file.parent_path(), ec)) {
    std::filesystem::create_directories(file.parent_path(), ec);
    ::chmod(file.parent_path().c_str(), 0700);
  }
  std::string tmp = file.string() + ".stack-tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  std::string text = j.dump(1, '\t') + "\n";
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
    ::unlink(tmp.c_str());
    std::fprintf(stderr, "stack: write %s: %s\n", file.c_str(), std::strerror(errno));
    throw ExitCode{1};
  }
}

void add_pull_commands(CLI::App& app, CLI::App* image) {
  static std::string platform;
  static bool quiet = false;
  auto* pull_image = image->add_subcommand("pull", "Pull an image from a registry");
  static std::string ref;
  pull_image->add_option("reference", ref, "NAME[:TAG|@DIGEST]")->required();
  pull_image->add_option("--platform", platform, "os/arch[/variant] (default linux/amd64)");
  pull_image->add_flag("-q,--quiet", quiet, "Only the image's reference on stdout");
  pull_image->callback([] {
    auto img = pull(ref, platform, quiet);
    std::printf("%s\n", img["canonical"].get<std::string>().c_str());
  });

  auto* pull_services = app.add_subcommand("pull", "Pull the images of the project's services");
  static std::vector<std::string> services;
  static bool ignore_failures = false;
  pull_services->add_option("services", services, "SERVICE (default: every service)");
  pull_services->add_flag("-q,--quiet", quiet, "No progress");
  pull_services->add_flag("--ignore-pull-failures", ignore_failures,
                          "Pull what can be pulled, report the others");
  pull_services->callback([] {
    auto stack = value_or_exit(load_stack());
    std::set<std::string> done;
    int failed = 0;
    for (const auto& svc : stack.services) {
      if (!services.empty() &&
          std::find(services.begin(), services.end(), svc.name) == services.end())
        continue;
      if (svc.image.empty() || svc.build) {
        if (!quiet)
          std::fprintf(stderr, "%s: skipped (its image is built: stack build %s)\n",
                       svc.name.c_str(), svc.name.c_str());
        continue;
      }
      std::string svc_platform;
      if (auto it = svc.extra.find("platform"); it != svc.extra.end() && it->is_string())
        svc_platform = it->get<std::string>();
      if (!done.insert(svc.image + "|" + svc_platform).second) continue;
      try {
        pull(svc.image, svc_platform, quiet);
      } catch (const ExitCode& e) {
        if (!ignore_failures) throw;
        failed++;
      }
    }
    for (const auto& s : services)
      if (std::none_of(stack.services.begin(), stack.services.end(),
                       [&](const spec::Service& svc) { return svc.name == s; })) {
        std::fprintf(stderr, "stack: no such service: %s\n", s.c_str());
        throw ExitCode{1};
      }
    if (failed > 0) std::fprintf(stderr, "%d image(s) could not be pulled\n", failed);
  });
}

void add_store_commands(CLI::App* image) {
  auto* ls = image->add_subcommand("ls", "List images");
  static std::string format = "table";
  static bool ls_quiet = false;
  ls->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ls->add_flag("-q,--quiet", ls_quiet, "Only the image ids");
  ls->callback([] {
    auto list = json::parse(call("GET", "/v1/images"));
    if (format == "json") {
      std::printf("%s\n", list.dump(2).c_str());
      return;
    }
    if (ls_quiet) {
      std::set<std::string> seen;
      for (const auto& i : list)
        if (seen.insert(i["id"]).second)
          std::printf("%s\n", i["id"].get<std::string>().substr(7, 12).c_str());
      return;
    }
    std::printf("%-40s %-16s %-13s %-20s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
    for (const auto& i : list)
      std::printf("%-40s %-16s %-13s %-20s %s\n", i["repository"].get<std::string>().c_str(),
                  i["tag"].get<std::string>().c_str(),
                  i["id"].get<std::string>().substr(7, 12).c_str(),
                  created_ago(i["created"]).c_str(), human_size(i["size"].get<uint64_t>()).c_str());
  });

  auto* rm = image->add_subcommand("rm", "Remove images (refused while a container uses one)");
  static std::vector<std::string> names;
  static bool force = false;
  rm->add_option("name", names, "NAME[:TAG] or image id")->required();
  static std::string rm_format = "table";
  rm->add_flag("-f,--force", force, "Untag an image a container uses (it stays until pruned)");
  rm->add_option("--format", rm_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  rm->callback([] {
    json all = json::array();
    for (const auto& n : names) {
      auto r =
          json::parse(call("DELETE", "/v1/images/" + url_encode(n) + (force ? "?force=1" : "")));
      if (rm_format == "json")
        all.push_back(r);
      else
        print_removal(r);
    }
    if (rm_format == "json") std::printf("%s\n", all.dump(2).c_str());
  });

  auto* inspect = image->add_subcommand("inspect",
                                        "Show images: config, layers, size, digest, "
                                        "tags, created (JSON)");
  static std::vector<std::string> inspected;
  static std::string inspect_format = "json";
  inspect->add_option("name", inspected, "NAME[:TAG] or image id")->required();
  inspect->add_option("--format", inspect_format, "json")->check(CLI::IsMember({"json"}));
  inspect->callback([] {
    json out = json::array();
    for (const auto& n : inspected)
      out.push_back(json::parse(call("GET", "/v1/images/inspect?ref=" + url_encode(n))));
    std::printf("%s\n", out.dump(2).c_str());
  });

  auto* prune = image->add_subcommand("prune", "Remove untagged images no container uses");
  static bool all = false, yes = false;
  static std::string prune_format = "table";
  prune->add_flag("-a,--all", all, "Every image no container uses");
  prune->add_flag("-f,--force", yes, "Accepted for docker's sake: stack does not ask");
  prune->add_option("--format", prune_format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  prune->callback([] {
    auto r = json::parse(call("POST", "/v1/images/prune", json{{"all", all}}.dump()));
    if (prune_format == "json") {
      std::printf("%s\n", r.dump(2).c_str());
      return;
    }
    print_removal(r);
    std::printf("Total reclaimed space: %s\n", human_size(r["reclaimed"].get<uint64_t>()).c_str());
  });

  auto* tag = image->add_subcommand("tag", "Give an image another name");
  static std::string source, target;
  tag->add_option("source", source, "NAME[:TAG] or image id")->required();
  tag->add_option("target", target, "NAME[:TAG]")->required();
  static std::string tag_format = "table";
  tag->add_option("--format", tag_format, "table (nothing) or json (the image)")
      ->check(CLI::IsMember({"table", "json"}));
  tag->callback([] {
    auto r = call("POST", "/v1/images/tag", json{{"source", source}, {"target", target}}.dump());
    if (tag_format == "json") std::printf("%s\n", json::parse(r).dump(2).c_str());
  });
}

void add_login_commands(CLI::App& app) {
  auto* login = app.add_subcommand("login",
                                   "Log in to a registry (writes the auth file docker "
                                   "and podman read: $REGISTRY_AUTH_FILE or "
                                   "~/.docker/config.json)");
  static std::string registry = "docker.io", username, password;
  static bool password_stdin = false;
  login->add_option("registry", registry, "REGISTRY[:PORT] (default docker.io)");
  login->add_option("-u,--username", username, "User name");
  login->add_option("-p,--password", password,
                    "Password (visible to other users: prefer "
                    "--password-stdin)");
  login->add_flag("--password-stdin", password_stdin, "Read the password from stdin");
  login->callback([] {
    if (username.empty()) {
      if (::isatty(0) != 1 || password_stdin) {
        std::fprintf(stderr, "stack: login needs --username\n");
        throw ExitCode{2};
      }
      std::fprintf(stderr, "Username: ");
      std::getline(std::cin, username);
    }
    if (password.empty()) password = read_password(password_stdin);
    call("POST", "/v1/auth",
         json{{"registry", registry}, {"username", username}, {"password", password}}.dump());
    edit_auth_file(default_auth_file(), [](json& j) {
      if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = json::object();
      j["auths"][auth_key(registry)] = {{"auth", base64_encode(username + ":" + password)}};
    });
    std::printf("Login Succeeded\n");
  });

  auto* logout = app.add_subcommand("logout", "Forget a registry's credentials");
  static std::string out_registry = "docker.io";
  logout->add_option("registry", out_registry, "REGISTRY[:PORT] (default docker.io)");
  logout->callback([] {
    std::error_code ec;
    if (!std::filesystem::exists(default_auth_file(), ec)) {
      std::fprintf(stderr, "Not logged in to %s\n", out_registry.c_str());
      return;
    }
    edit_auth_file(default_auth_file(), [](json& j) {
      if (j.contains("auths") && j["auths"].is_object()) {
        j["auths"].erase(auth_key(out_registry));
        j["auths"].erase(out_registry);
      }
    });
    std::printf("Removing login credentials for %s\n", out_registry.c_str());
  });
}

}  // namespace

void add_image_commands(CLI::App& app) {
  auto* image = app.add_subcommand("image", "Manage images");
  image->require_subcommand(1);
  add_image_transfer_commands(image);
  add_store_commands(image);
  add_pull_commands(app, image);
  add_push_commands(app, image);
  add_login_commands(app);
}

}  // namespace stack::cli
