// Compose verbs, part 4 (issue 15's remainder): `run -d --rm` (the supervisor removes the
// one-off container once it has exited), `attach --sig-proxy`, and what compose does that the
// earlier parts left out.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;

namespace {

bool exists(StackEnv& env, const std::string& project, const std::string& name) {
  return !env.container(project, name).is_null();
}

// Polls until PRED holds, for at most 15 s.
template <class Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace

TEST_CASE("run -d --rm: the one-off container is removed once it exits, however it ends") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("runrm");
  env.uses(p);
  env.write("services:\n  app:\n    image: busybox\n    command: [sleep, '300']\n");
  env.start_daemon({"--resync", "0.1"});
  // Ends on its own: gone from `ps -a`, its directory and cgroups with it.
  auto dir = env.project_dir() / "runrm";
  std::filesystem::create_directories(dir);
  auto r = env.stack({"-p", p, "run", "-d", "--rm", "--name", p + "-short", "-v",
                      dir.string() + ":/data", "app", "sh", "-c",
                      "until [ -e /data/go ]; do sleep 0.05; done; echo done > /data/out"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out == p + "-short\n");
  CHECK(env.container(p, p + "-short")["state"] == "running");  // it waits for /data/go
  { std::ofstream(dir / "go") << "go"; }
  CHECK(eventually([&] { return !exists(env, p, p + "-short"); }));
  CHECK(std::filesystem::exists(dir / "out"));
  CHECK(env.stack({"-p", p, "ps", "-a", "--format", "json"}).out.find(p + "-short") ==
        std::string::npos);
  // The daemon's passes do not make it again.
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(!exists(env, p, p + "-short"));

  // Stopped by `stop`: removed too (docker's AutoRemove), and the name is free again.
  r = env.stack({"-p", p, "run", "-d", "--rm", "--name", p + "-long", "app"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(env.container(p, p + "-long")["state"] == "running");
  REQUIRE(env.stack({"-p", p, "stop", "-t", "1"}).code == 0);
  CHECK(eventually([&] { return !exists(env, p, p + "-long"); }));
  // Without --rm, -d keeps the exited container.
  r = env.stack({"-p", p, "run", "-d", "--name", p + "-long", "app", "true"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(env.wait_for(p, p + "-long", [](const auto& c) { return c["state"] == "exited"; })["state"] ==
        "exited");
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(exists(env, p, p + "-long"));
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
  CHECK(env.ps(p).empty());
  CHECK(env.leftovers(p).empty());
}
