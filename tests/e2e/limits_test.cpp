// Resource limits through the stack binary: memory (OOM kill reported) and pids (a fork bomb
// contained, the host unaffected).
#include <doctest/doctest.h>

#include <fstream>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

TEST_CASE("a service over mem_limit is OOM-killed and shown so") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("oom");
  env.uses(p);
  // 200 MB asked for, 32 MiB allowed: busybox's shell doubling a string allocates for real.
  env.write("name: " + p + R"(
services:
  hog:
    image: busybox
    mem_limit: 32m
    command: [sh, -c, "x=$$(head -c 1048576 /dev/zero | tr '\\0' a); while [ $${#x} -lt 209715200 ]; do x=$$x$$x; done; echo survived"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto c = env.wait_for(p, p + "-hog-1", [](auto& c) { return c["state"] != "running"; });
  CHECK(c["state"] == "exited");
  CHECK(c["oom_killed"] == true);
  CHECK(c["exit_code"] == 137);
  CHECK(env.stack({"logs", "hog"}).out.find("survived") == std::string::npos);
  auto table = env.stack({"ps", "-a"}).out;
  CHECK(table.find("Exited (137) OOMKilled") != std::string::npos);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a main process that outlives an OOM kill of its child shows its own exit code") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("oomchild");
  env.uses(p);
  // The subshell is a child that allocates past the limit and is OOM-killed; the main shell
  // goes on and exits 0, as `docker run` would show: ExitCode 0, OOMKilled true.
  env.write("name: " + p + R"(
services:
  job:
    image: busybox
    mem_limit: 32m
    command: [sh, -c, "(x=$$(head -c 1048576 /dev/zero | tr '\\0' a); while true; do x=$$x$$x; done); echo survived; exit 0"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto c = env.wait_for(p, p + "-job-1", [](auto& c) { return c["state"] != "running"; }, 30s);
  CHECK(c["state"] == "exited");
  CHECK(c["exit_code"] == 0);
  CHECK(c["oom_killed"] == true);
  CHECK(env.stack({"logs", "job"}).out.find("survived") != std::string::npos);
  CHECK(env.stack({"ps", "-a"}).out.find("Exited (0) OOMKilled") != std::string::npos);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a fork bomb under pids_limit is contained and the host is unaffected") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("bomb");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  bomb:
    image: busybox
    pids_limit: 50
    command: [sh, -c, "bomb() { bomb & bomb & wait; }; bomb & sleep 300"]
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  std::string cg = StackEnv::cgroup_dir("pids", p, p + "-bomb-1").string() + "/";
  int pids = 0, refused = 0;
  // Until the limit has refused a fork: the bomb has then reached it.
  for (int i = 0; i < 500 && refused == 0; i++) {
    std::this_thread::sleep_for(10ms);
    std::ifstream current(cg + "pids.current"), events(cg + "pids.events");
    std::string word;
    current >> pids;
    events >> word >> refused;  // "max N": forks the limit refused
  }
  CHECK(pids > 1);
  CHECK(pids <= 50);  // held at the limit
  CHECK(refused > 0);  // the kernel refused forks beyond it
  CHECK(env.container(p, p + "-bomb-1")["state"] == "running");
  // The host can still start processes.
  CHECK(run({"/bin/sh", "-c", "echo still here"}).out == "still here\n");
  auto down = env.stack({"down", "-t", "1"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(env.leftovers(p).empty());
}
