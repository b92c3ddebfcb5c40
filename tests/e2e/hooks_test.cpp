// post_start and pre_stop hooks through the stack binary: they run inside the container (the
// files they write appear in a bind mount, as the user they name, with their environment),
// their output is in `stack logs`, a failing post_start fails `up` while the container keeps
// running (compose's rule), and a failing pre_stop does not prevent the stop.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("hooks: post_start and pre_stop run inside the container and log there") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("hooks");
  env.uses(p);
  auto out = env.project_dir() / "out";
  std::filesystem::create_directories(out);
  std::filesystem::permissions(out, std::filesystem::perms::all);
  env.write("name: " + p + R"(
services:
  box:
    image: busybox
    command: [sleep, "300"]
    volumes: [./out:/out]
    post_start:
      - command: [sh, -c, "echo uid=$$(id -u) var=$$HOOK_VAR pwd=$$(pwd) > /out/post; echo POSTHOOK-OUT; echo POSTHOOK-ERR >&2"]
        user: "1234"
        working_dir: /tmp
        environment: {HOOK_VAR: hv}
    pre_stop:
      - command: sh -c "echo stopping > /out/pre; echo PRESTOP-OUT"
      - command: [sh, -c, "echo second >> /out/pre; exit 4"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  // `up` returns after the hook: its file is there already.
  CHECK(file_text(out / "post") == "uid=1234 var=hv pwd=/tmp\n");
  auto logs = env.stack({"logs", "box"});
  CHECK_MESSAGE(logs.out.find("POSTHOOK-OUT") != std::string::npos, (logs.out + logs.err));
  CHECK_MESSAGE((logs.out + logs.err).find("POSTHOOK-ERR") != std::string::npos, logs.out);
  CHECK(!std::filesystem::exists(out / "pre"));

  auto stop = env.stack({"stop", "-t", "2"});
  CHECK_MESSAGE(stop.code == 0, stop.err);
  // Both pre_stop hooks ran, in order, before the signal; the second's failure did not stop
  // the stop.
  CHECK(file_text(out / "pre") == "stopping\nsecond\n");
  auto c = env.container(p, p + "-box-1");
  CHECK_MESSAGE(c["state"] == "exited", c.dump());
  logs = env.stack({"logs", "box"});
  CHECK_MESSAGE(logs.out.find("PRESTOP-OUT") != std::string::npos, (logs.out + logs.err));
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("hooks: a failing post_start fails up and the container keeps running") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("hookf");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  box:
    image: busybox
    command: [sleep, "300"]
    post_start:
      - command: [sh, -c, "echo HOOK-FAILING; exit 3"]
)");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE((up.out + up.err).find("post_start hook 1 exited with status 3") !=
                    std::string::npos,
                (up.out + up.err));
  auto c = env.container(p, p + "-box-1");
  CHECK_MESSAGE(c["state"] == "running", c.dump());
  auto logs = env.stack({"logs", "box"});
  CHECK_MESSAGE(logs.out.find("HOOK-FAILING") != std::string::npos, (logs.out + logs.err));
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
