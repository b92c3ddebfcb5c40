// The daemon under the faults and inputs that broke it before: one-shot jobs re-run by the
// resync, a backoff that outlived its container, plans retried with no end, a project that could
// never be removed. Each case failed on the code as it was found.
#include <doctest/doctest.h>

#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = 0; (pos = text.find(what, pos)) != std::string::npos; pos += what.size()) n++;
  return n;
}

}  // namespace

TEST_CASE("one-shot jobs run once: the resync leaves a completed container alone") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  env.start_daemon({"--resync", "0.1"});
  auto p = unique_project("once");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  job:
    image: busybox
    command: [sh, -c, "echo ran job"]
    restart: "no"
  retry:
    image: busybox
    command: [sh, -c, "echo ran retry; exit 3"]
    restart: on-failure:1
  web:
    image: busybox
    command: [sleep, "300"]
    depends_on:
      job: {condition: service_completed_successfully}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto done = [](auto& c) { return c["state"] == "exited"; };
  REQUIRE(env.wait_for(p, p + "-job-1", done)["exit_code"] == 0);
  REQUIRE(env.wait_for(p, p + "-retry-1", [](auto& c) {
    return c["state"] == "exited" && c["restarts"] == 1;
  })["exit_code"] == 3);
  // Five resync passes after both are done: neither runs again.
  REQUIRE(env.wait_reconciles(env.reconciles(), 5));
  auto job = env.container(p, p + "-job-1");
  CHECK(job["state"] == "exited");
  CHECK(job["restarts"] == 0);
  CHECK(count_of(env.stack({"logs", "job"}).out, "ran job") == 1);
  CHECK(count_of(env.stack({"logs", "retry"}).out, "ran retry") == 2);  // its one restart
  CHECK(env.container(p, p + "-web-1")["state"] == "running");
  // An explicit up runs a completed job again, as compose does.
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  env.wait_for(p, p + "-job-1", [](auto& c) { return c["state"] == "exited"; });
  auto logs = env.stack({"logs", "job"}).out;
  for (int i = 0; i < 100 && count_of(logs, "ran job") < 2; i++) {
    std::this_thread::sleep_for(50ms);
    logs = env.stack({"logs", "job"}).out;
  }
  CHECK(count_of(logs, "ran job") == 2);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a new container's restart backoff starts at 100 ms, whatever its predecessor's") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("backoff");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  crash:
    image: busybox
    command: [sh, -c, "exit 1"]
    restart: always
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  // Five quick exits: the next delay would be 3.2 s.
  env.wait_for(p, p + "-crash-1", [](auto& c) { return c["restarts"] >= 5; }, 20s);
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  int64_t since = StackEnv::now_ms();
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto first = env.wait_event(p, since, [](auto& e) { return e["type"] == "restart"; });
  REQUIRE(!first.is_null());
  CHECK(first["attributes"]["delay_ms"] == "100");
  // Recreated by a changed file: afresh too.
  env.wait_for(p, p + "-crash-1", [](auto& c) { return c["restarts"] >= 4; }, 20s);
  env.write("name: " + p + R"(
services:
  crash:
    image: busybox
    command: [sh, -c, "exit 2"]
    restart: always
)");
  since = StackEnv::now_ms();
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto again = env.wait_event(p, since, [](auto& e) { return e["type"] == "restart"; });
  REQUIRE(!again.is_null());
  CHECK(again["attributes"]["delay_ms"] == "100");
  CHECK(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
