// `stack push [SERVICE...]` (compose's push) and `stack image push NAME`: the daemon uploads
// images of its store to their registries; the progress per layer as pulls show it. A service is
// pushed under its `image:` name (a built one once built); one without `image:` is skipped.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/cli.h"
#include "cli/transfer_display.h"

namespace stack::cli {

namespace {

using nlohmann::json;

// Pushes REFERENCE through the daemon with a progress display; the "pushed" result (reference,
// digest, size, layers, existed), or exits 1.
json push(const std::string& reference, bool quiet) {
  return stream_transfer(Transfer::push, {{"reference", reference}}, quiet);
}

// The services to push: NAMES (every service when none), with what they depend on when DEPS,
// in the file's order. Exits 1 on an unknown name.
std::vector<const spec::Service*> selected(const spec::Stack& stack,
                                           const std::vector<std::string>& names, bool deps) {
  auto find = [&](const std::string& n) -> const spec::Service* {
    for (const auto& s : stack.services)
      if (s.name == n) return &s;
    return nullptr;
  };
  std::set<std::string> want;
  std::vector<std::string> todo = names;
  for (const auto& n : names)
    if (!find(n)) {
      std::fprintf(stderr, "stack: no such service: %s\n", n.c_str());
      throw ExitCode{1};
    }
  while (!todo.empty()) {
    std::string n = todo.back();
    todo.pop_back();
    if (!want.insert(n).second || !deps) continue;
    if (const auto* s = find(n))
      for (const auto& d : s->depends_on) todo.push_back(d);
  }
  std::vector<const spec::Service*> out;
  for (const auto& s : stack.services)
    if (names.empty() || want.count(s.name)) out.push_back(&s);
  return out;
}

}  // namespace

void add_push_commands(CLI::App& app, CLI::App* image) {
  auto* push_image = image->add_subcommand("push", "Push an image to its registry");
  static std::string ref;
  static bool image_quiet = false;
  push_image->add_option("reference", ref, "NAME[:TAG]")->required();
  push_image->add_flag("-q,--quiet", image_quiet, "No progress");
  push_image->callback([] {
    auto r = push(ref, image_quiet);
    // As docker push ends.
    std::printf("%s: digest: %s size: %lld\n", r["reference"].get<std::string>().c_str(),
                r["digest"].get<std::string>().c_str(), r["size"].get<long long>());
  });

  auto* push_services = app.add_subcommand("push", "Push the images of the project's services");
  static std::vector<std::string> services;
  static bool quiet = false, ignore_failures = false, include_deps = false;
  push_services->add_option("services", services, "SERVICE (default: every service)");
  push_services->add_flag("-q,--quiet", quiet, "No progress");
  push_services->add_flag("--ignore-push-failures", ignore_failures,
                          "Push what can be pushed, report the others");
  push_services->add_flag("--include-deps", include_deps,
                          "Push the images of the services they depend on too");
  push_services->callback([] {
    auto stack = value_or_exit(load_stack());
    std::set<std::string> done;
    int failed = 0;
    for (const auto* svc : selected(stack, services, include_deps)) {
      if (svc->image.empty()) {
        if (!quiet)
          std::fprintf(stderr, "%s: skipped (no image: name to push it under)\n",
                       svc->name.c_str());
        continue;
      }
      if (!done.insert(svc->image).second) continue;
      try {
        push(svc->image, quiet);
      } catch (const ExitCode& e) {
        if (!ignore_failures) throw;
        failed++;
      }
    }
    if (failed > 0) std::fprintf(stderr, "%d image(s) could not be pushed\n", failed);
  });
}

}  // namespace stack::cli
