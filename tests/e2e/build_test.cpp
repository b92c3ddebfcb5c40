// Builds end to end through the stack binary: `stack build` of a Dockerfile from busybox:latest
// then `up` runs it; a second build is all cache hits; `up --build` after a copied file changed
// rebuilds and recreates the service; `image:` names the result; a bad Dockerfile fails `up`
// with its line and changes nothing on the host. Root (builds run RUN in containers).
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// The service's logs once they hold TEXT (or after 10 s, the last ones read).
std::string logs_with(StackEnv& env, const std::string& service, const std::string& text) {
  auto logs = env.stack({"logs", service});
  for (int i = 0; i < 500 && logs.out.find(text) == std::string::npos; i++) {
    std::this_thread::sleep_for(20ms);  // until the service has written it
    logs = env.stack({"logs", service});
  }
  return logs.out;
}

// "[SERVICE] step N/M: INSTRUCTION" lines of a build's output, by step number.
std::map<std::string, std::vector<std::string>> steps_of(const std::string& err,
                                                         const std::string& service) {
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream in(err);
  std::regex step("^\\[" + service + "\\] step ([0-9]+/[0-9]+): (.*)$");
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_match(line, m, step)) out[m[1]].push_back(m[2]);
  return out;
}

const char* kDockerfile =
    "FROM busybox:latest\n"
    "COPY msg.txt /app/msg.txt\n"
    "RUN echo built-at-run > /app/run.txt && echo run-output-line\n"
    "CMD [\"sh\", \"-c\", \"cat /app/msg.txt /app/run.txt; sleep 300\"]\n";

void write_context(StackEnv& env, const std::string& msg) {
  fs::create_directories(env.project_dir() / "app");
  write_text(env.project_dir() / "app/Dockerfile", kDockerfile);
  write_text(env.project_dir() / "app/msg.txt", msg);
}

}  // namespace

TEST_CASE("stack build then up runs the built image, and a second build is all cached") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("build");
  env.uses(p);
  write_context(env, "hello from the build\n");
  env.write("name: " + p + "\nservices:\n  app:\n    build: ./app\n");

  auto first = env.stack({"build"});
  REQUIRE_MESSAGE(first.code == 0, first.err);
  auto steps = steps_of(first.err, "app");
  CHECK(steps.size() >= 3);
  bool saw_run = false;
  for (const auto& [n, lines] : steps)
    if (!lines.empty() && lines.front().rfind("RUN ", 0) == 0) saw_run = true;
  CHECK(saw_run);
  CHECK(first.err.find("[app] | run-output-line") != std::string::npos);  // RUN's output, prefixed
  // Named after the project and the service.
  auto inspected = env.stack({"image", "inspect", p + "-app"});
  CHECK_MESSAGE(inspected.code == 0, inspected.err);

  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto logs = logs_with(env, "app", "built-at-run");
  CHECK(logs.find("hello from the build") != std::string::npos);
  CHECK(logs.find("built-at-run") != std::string::npos);

  // Nothing changed: every step that ran before is a cache hit, no RUN runs.
  auto again = env.stack({"build"});
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(again.err.find("| run-output-line") == std::string::npos);  // no RUN ran
  int layers = 0;
  for (const auto& [n, lines] : steps_of(again.err, "app")) {
    // The steps that make layers; config steps (CMD) only change the image's config.
    if (lines.empty() || (lines.front().rfind("RUN ", 0) != 0 && lines.front().rfind("COPY ", 0) != 0))
      continue;
    layers++;
    CHECK_MESSAGE(std::find(lines.begin(), lines.end(), "CACHED") != lines.end(),
                  "step " << n << " " << lines.front() << " not cached:\n" << again.err);
    CHECK(std::none_of(lines.begin(), lines.end(),
                       [](const std::string& l) { return l.rfind("DONE", 0) == 0; }));
  }
  CHECK(layers == 2);
  // -q: only the id.
  auto quiet = env.stack({"build", "-q"});
  REQUIRE(quiet.code == 0);
  CHECK(quiet.out.rfind("sha256:", 0) == 0);
  CHECK(quiet.err.find("step") == std::string::npos);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("up --build after a copied file changed rebuilds and recreates the service") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("rebuild");
  env.uses(p);
  write_context(env, "first version\n");
  env.write("name: " + p + "\nservices:\n  app:\n    build: ./app\n");
  // up builds what is missing, showing the steps as it goes.
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(up.err.find("[app] step 1/") != std::string::npos);
  CHECK(logs_with(env, "app", "first version").find("first version") != std::string::npos);
  auto before = env.container(p, p + "-app-1");

  // Unchanged: up --build builds from the cache and leaves the container alone.
  auto same = env.stack({"up", "-d", "--build"});
  REQUIRE_MESSAGE(same.code == 0, same.err);
  CHECK(env.container(p, p + "-app-1")["created_at"] == before["created_at"]);

  write_text(env.project_dir() / "app/msg.txt", "second version\n");
  auto plain = env.stack({"plan"});
  CHECK(plain.out.find("build") == std::string::npos);  // present: built only when asked
  auto planned = env.stack({"plan", "--build"});
  CHECK(planned.out.find("+ build " + p + "-app:latest for app (up --build)") != std::string::npos);
  auto rebuilt = env.stack({"up", "-d", "--build"});
  REQUIRE_MESSAGE(rebuilt.code == 0, rebuilt.err);
  auto after = env.container(p, p + "-app-1");
  CHECK(after["created_at"] != before["created_at"]);
  CHECK(logs_with(env, "app", "second version").find("second version") != std::string::npos);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("image: and build: together tag the result with image:") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("buildtag");
  env.uses(p);
  write_context(env, "tagged\n");
  env.write("name: " + p + "\nservices:\n  app:\n    image: local/" + p +
            ":v1\n    build:\n      context: ./app\n      tags: ['local/" + p + ":extra']\n");
  auto built = env.stack({"build", "app"});
  REQUIRE_MESSAGE(built.code == 0, built.err);
  CHECK(env.stack({"image", "inspect", "local/" + p + ":v1"}).code == 0);
  CHECK(env.stack({"image", "inspect", "local/" + p + ":extra"}).code == 0);
  CHECK(env.stack({"image", "inspect", p + "-app"}).code != 0);
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  CHECK(env.container(p, p + "-app-1")["image"].get<std::string>().find("local/" + p + ":v1") !=
        std::string::npos);
  CHECK(env.stack({"down"}).code == 0);
  env.stack({"image", "rm", "local/" + p + ":v1"});
  env.stack({"image", "rm", "local/" + p + ":extra"});
}

TEST_CASE("a bad Dockerfile fails up with its line and changes nothing on the host") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("badbuild");
  env.uses(p);
  fs::create_directories(env.project_dir() / "app");
  write_text(env.project_dir() / "app/Dockerfile",
             "FROM busybox:latest\nRUN true\nFROBNICATE everything\n");
  env.write("name: " + p + "\nservices:\n  app:\n    build: ./app\n  other:\n    image: busybox:latest\n"
            "    command: [sleep, '300']\n");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(up.err.find("Dockerfile:3") != std::string::npos, up.err);
  CHECK(env.ps(p).empty());            // not even the service that needs no build
  CHECK(env.leftovers(p).empty());
  CHECK(env.stack({"ls"}).out.find(p) == std::string::npos);  // the project was not registered
  CHECK(env.stack({"image", "inspect", p + "-app"}).code != 0);
}
