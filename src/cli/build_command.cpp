// `stack build [--no-cache] [--pull] [-q] [--build-arg K=V] [SERVICE...]`: the daemon builds
// the services' images (it loads the files itself, as for `up`); each step's progress goes to
// stderr as compose prints it ("[web] step 2/4: RUN make", CACHED or the time, RUN's output
// prefixed), the built images' ids to stdout with -q. Changes nothing but the image store.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace stack::cli {

namespace {

using nlohmann::json;

struct BuildFlags {
  bool no_cache = false, pull = false, quiet = false;
  std::vector<std::string> args;  // K=V, or K (from this shell's environment)
  std::vector<std::string> services;
};

void run_build(const BuildFlags& f) {
  auto body = json::parse(load_request_json());
  body["services"] = f.services;
  body["no_cache"] = f.no_cache;
  body["pull"] = f.pull;
  json args = json::object();
  for (const auto& a : f.args) {
    size_t eq = a.find('=');
    if (eq == 0) {
      std::fprintf(stderr, "stack: --build-arg %s: expected KEY=VALUE or KEY\n", a.c_str());
      throw ExitCode{2};
    }
    if (eq != std::string::npos) {
      args[a.substr(0, eq)] = a.substr(eq + 1);
    } else if (const char* v = std::getenv(a.c_str())) {
      args[a] = v;  // docker's --build-arg NAME: the value of this shell's NAME, if set
    }
  }
  body["build_args"] = args;
  std::string last;
  auto status = daemon_client().stream("POST", "/v1/build", body.dump(), [&](std::string_view line) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object()) return true;
    if (j.contains("progress")) {
      const auto& p = j["progress"];
      std::string object = p.value("container", "");
      if (!f.quiet && object.rfind("build ", 0) == 0)
        print_build_line(object.substr(6), p.value("action", ""));
    } else if (j.contains("warning")) {
      std::fprintf(stderr, "warning: %s\n", j["warning"].get<std::string>().c_str());
    } else {
      last = std::string(line);
    }
    return true;
  });
  if (!status) throw ExitCode{report(status.error())};
  auto j = json::parse(last, nullptr, false);
  if (!j.is_object() || !j.contains("built")) {
    std::string error = j.is_object() ? j.value("error", "") : "";
    std::fprintf(stderr, "stack: %s\n", error.empty() ? "the daemon ended the build" : error.c_str());
    throw ExitCode{1};
  }
  if (j["built"].empty() && !f.quiet)
    std::fprintf(stderr, "No service to build: none of them has a build section\n");
  for (const auto& b : j["built"]) {
    if (f.quiet)
      std::printf("%s\n", b.value("id", "").c_str());
    else
      std::fprintf(stderr, " \u2714 Image %s Built (%s)\n", b.value("image", "").c_str(),
                   b.value("service", "").c_str());
  }
}

}  // namespace

void add_build_command(CLI::App& app) {
  static BuildFlags flags;
  auto* build = app.add_subcommand(
      "build", "Build the images of the services with a build section (stack's own engine)");
  build->add_flag("--no-cache", flags.no_cache, "Run every step; use no cached layer");
  build->add_flag("--pull", flags.pull, "Pull the FROM images even when the store has them");
  build->add_flag("-q,--quiet", flags.quiet, "No progress; the built images' ids on stdout");
  build->add_option("--build-arg", flags.args,
                    "KEY=VALUE (or KEY, from this shell's environment) over the build's args");
  build->add_option("service", flags.services, "SERVICE (default: every one with a build section)");
  build->callback([] { run_build(flags); });
}

}  // namespace stack::cli
