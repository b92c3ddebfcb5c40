// `stack watch` (issue 15): the develop.watch rules as a developer uses them. An edited file
// reaches the container, a new directory too, an ignored file does not, a deleted one goes;
// initial_sync copies the tree at start; sync+restart restarts the service; sync+exec runs its
// command; rebuild builds the image again and recreates the service (refused without a build
// section). Root; each test has its own instance.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "e2e/interactive.h"
#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Polls `exec -T SERVICE cat PATH` until it prints WANT (or 15 s pass); the last output.
std::string wait_cat(StackEnv& env, const std::string& service, const std::string& path,
                     const std::string& want) {
  std::string out;
  for (int i = 0; i < 150; i++) {
    out = env.stack({"exec", "-T", service, "cat", path}).out;
    if (out == want) break;
    std::this_thread::sleep_for(100ms);
  }
  return out;
}

Interactive start_watch(StackEnv& env, const std::string& project) {
  return Interactive({std::string(STACK_BUILD_DIR) + "/stack", "--root", env.root().string(),
                      "--run-root", (env.root().parent_path() / "run").string(), "-f",
                      (env.project_dir() / "stack.yaml").string(), "-p", project, "watch"});
}

}  // namespace

TEST_CASE("watch syncs edits, new directories and deletions, and skips ignored files") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("watchsync");
  env.uses(p);
  write_text(env.project_dir() / "src/index.txt", "one");
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sleep, "300"]
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app
          initial_sync: true
          ignore: ["*.tmp"]
)");
  auto w = start_watch(env, p);
  REQUIRE_MESSAGE(w.wait_for("Watch enabled", 30s), w.output());
  CHECK(wait_cat(env, "web", "/app/index.txt", "one") == "one");  // initial_sync

  write_text(env.project_dir() / "src/index.txt", "two");
  CHECK(wait_cat(env, "web", "/app/index.txt", "two") == "two");
  write_text(env.project_dir() / "src/scratch.tmp", "ignored");
  write_text(env.project_dir() / "src/deep/er/file.txt", "deep");
  CHECK(wait_cat(env, "web", "/app/deep/er/file.txt", "deep") == "deep");
  CHECK(env.stack({"exec", "-T", "web", "test", "-e", "/app/scratch.tmp"}).code != 0);

  fs::remove(env.project_dir() / "src/index.txt");
  bool gone = false;
  for (int i = 0; i < 150 && !gone; i++) {
    gone = env.stack({"exec", "-T", "web", "test", "-e", "/app/index.txt"}).code != 0;
    if (!gone) std::this_thread::sleep_for(100ms);
  }
  CHECK_MESSAGE(gone, w.output());
}

TEST_CASE("watch: sync+restart restarts the service, sync+exec runs its command") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("watchrestart");
  env.uses(p);
  write_text(env.project_dir() / "conf/app.conf", "v1");
  write_text(env.project_dir() / "hooks/h.txt", "h1");
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./conf
          action: sync+restart
          target: /etc/app
        - path: ./hooks
          action: sync+exec
          target: /hooks
          exec:
            command: cat /hooks/h.txt > /tmp/ran
)");
  auto w = start_watch(env, p);
  REQUIRE_MESSAGE(w.wait_for("Watch enabled", 30s), w.output());
  int pid = env.container(p, p + "-app-1")["pid"];

  write_text(env.project_dir() / "conf/app.conf", "v2");
  auto c = env.wait_for(p, p + "-app-1", [&](const nlohmann::json& c) {
    return c["state"] == "running" && c["pid"] != pid;
  });
  CHECK_MESSAGE(c["pid"] != pid, w.output());
  // The restarted container still has the synced file (its writable layer was kept).
  CHECK(wait_cat(env, "app", "/etc/app/app.conf", "v2") == "v2");

  write_text(env.project_dir() / "hooks/h.txt", "h2");
  CHECK_MESSAGE(wait_cat(env, "app", "/tmp/ran", "h2") == "h2", w.output());
}

TEST_CASE("watch rebuild builds the image again and recreates the service") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("watchrebuild");
  env.uses(p);
  write_text(env.project_dir() / "src/Dockerfile",
             "FROM busybox\nCOPY msg /msg\nCMD [\"sleep\", \"300\"]\n");
  write_text(env.project_dir() / "src/msg", "one");
  env.write("name: " + p + R"(
services:
  web:
    build: ./src
    develop:
      watch:
        - path: ./src
          action: rebuild
)");
  auto w = start_watch(env, p);
  REQUIRE_MESSAGE(w.wait_for("Watch enabled", 60s), w.output());
  CHECK(wait_cat(env, "web", "/msg", "one") == "one");  // built by the watch's own up
  auto started = [&] {  // the container's start time: a recreated one has a new one
    auto j = nlohmann::json::parse(env.stack({"ps", "--format", "json"}).out, nullptr, false);
    return j.is_array() && j.size() == 1 ? j[0]["created_at"].dump() : std::string();
  };
  auto before = started();
  REQUIRE(!before.empty());

  write_text(env.project_dir() / "src/msg", "two");
  CHECK_MESSAGE(wait_cat(env, "web", "/msg", "two") == "two", w.output());
  CHECK(started() != before);  // a new container, from the new image
}

TEST_CASE("watch refuses rebuild without a build section, and a stack without rules") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("watchnobuild");
  env.uses(p);
  fs::create_directories(env.project_dir() / "src");
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sleep, "300"]
    develop:
      watch:
        - path: ./src
          action: rebuild
)");
  auto r = env.stack({"watch", "--no-up"});
  CHECK(r.code == 1);
  CHECK_MESSAGE(r.err.find("services.web.develop.watch[0]: action rebuild needs a build section") !=
                    std::string::npos,
                r.err);
  env.write("name: " + p + "\nservices:\n  web:\n    image: busybox\n");
  auto none = env.stack({"watch", "--no-up"});
  CHECK(none.code == 1);
  CHECK_MESSAGE(none.err.find("develop.watch") != std::string::npos, none.err);
}
