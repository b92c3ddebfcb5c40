// Finding 1 of issue 9, the secrets half: environment values (written in the file, read from an
// env_file, or taken from the shell) never reach the state database, its WAL or its shared
// memory file in the clear, and the daemon still restarts and re-adopts the container.
#include <doctest/doctest.h>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

bool in_state_files(const fs::path& root, const std::string& text) {
  for (const char* f : {"state.db", "state.db-wal", "state.db-shm"})
    if (read_text(root / f).find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("environment values never reach the state database in the clear") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("secenv");
  env.uses(p);
  const std::string in_file = "file-secret-" + p + "-a41d";
  const std::string in_env_file = "envfile-secret-" + p + "-b52e";
  const std::string in_shell = "shell-secret-" + p + "-c63f";
  env.write("API_KEY=" + in_env_file + "\n", "app.env");
  env.write("name: " + p + R"(
services:
  a:
    image: busybox
    command: [sleep, "300"]
    env_file: app.env
    environment:
      TOKEN: )" +
            in_file + R"(
      FROM_SHELL: ${SHELL_TOKEN}
)");
  auto up = env.stack({"up", "-d"}, {"SHELL_TOKEN=" + in_shell});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto seen = env.stack({"exec", "-p", p, "a", "sh", "-c", "echo $TOKEN $API_KEY $FROM_SHELL"});
  REQUIRE(seen.out == in_file + " " + in_env_file + " " + in_shell + "\n");

  for (const auto& secret : {in_file, in_env_file, in_shell})
    CHECK_MESSAGE(!in_state_files(env.root(), secret), secret);

  // The daemon, restarted, reads its sealed records: the container is re-adopted, not
  // restarted, and exec still gets the service's environment.
  auto before = env.container(p, p + "-a-1");
  REQUIRE(env.stack({"daemon", "stop"}).code == 0);
  auto after = env.wait_for(p, p + "-a-1", [](const auto& c) { return c["state"] == "running"; });
  CHECK(after["pid"] == before["pid"]);
  CHECK(after["restarts"] == before["restarts"]);
  CHECK(env.stack({"exec", "-p", p, "a", "sh", "-c", "echo $TOKEN"}).out == in_file + "\n");
  for (const auto& secret : {in_file, in_env_file, in_shell})
    CHECK_MESSAGE(!in_state_files(env.root(), secret), secret);

  CHECK(env.stack({"down", "-p", p}).code == 0);
}
