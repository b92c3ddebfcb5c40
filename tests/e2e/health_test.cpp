// Health checks through the stack binary: depends_on conditions gate starts, --wait waits, an
// unhealthy container is restarted unless its service opts out.
#include <doctest/doctest.h>

#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

int64_t ms_of(const std::string& iso) {  // "2026-11-29T10:00:00.123Z" -> ms of the day, enough here
  int h = 0, m = 0, s = 0, ms = 0;
  std::sscanf(iso.c_str() + 11, "%d:%d:%d.%dZ", &h, &m, &s, &ms);
  return ((h * 60 + m) * 60 + s) * 1000 + ms;
}

}  // namespace

TEST_CASE("depends_on service_healthy starts the dependent only once the dependency is healthy") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("gate");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  db:
    image: busybox
    command: [sh, -c, "sleep 1; touch /tmp/ready; exec sleep 300"]
    healthcheck:
      test: [CMD, test, -e, /tmp/ready]
      interval: 200ms
      start_interval: 100ms
      start_period: 10s
  migrate:
    image: busybox
    command: [sh, -c, "echo migrated"]
    depends_on:
      db: {condition: service_healthy}
  app:
    image: busybox
    command: [sleep, "300"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto db = env.container(p, p + "-db-1");
  auto migrate = env.container(p, p + "-migrate-1");
  auto app = env.container(p, p + "-app-1");
  CHECK(db["health"] == "healthy");
  CHECK(migrate["state"] == "exited");
  CHECK(migrate["exit_code"] == 0);
  CHECK(app["state"] == "running");
  // db became healthy about 1 s after it started; migrate and app came after that.
  CHECK(ms_of(migrate["started_at"]) - ms_of(db["started_at"]) >= 900);
  CHECK(ms_of(app["started_at"]) >= ms_of(migrate["finished_at"]));
  auto ps = env.stack({"ps"}).out;
  CHECK(ps.find("(healthy)") != std::string::npos);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("up --wait returns once healthy, and fails naming a dependency that never is") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("wait");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sleep, "300"]
    healthcheck: {test: [CMD-SHELL, "exit 0"], interval: 100ms, start_interval: 100ms, start_period: 5s}
)");
  auto ok = env.stack({"up", "--wait"});
  REQUIRE_MESSAGE(ok.code == 0, ok.err);
  CHECK(env.container(p, p + "-web-1")["health"] == "healthy");
  CHECK(env.stack({"down"}).code == 0);

  env.write("name: " + p + R"(
services:
  db:
    image: busybox
    command: [sleep, "300"]
    healthcheck: {test: [CMD, "false"], interval: 100ms, retries: 2}
  app:
    image: busybox
    command: [sleep, "300"]
    depends_on: {db: {condition: service_healthy}}
)");
  auto bad = env.stack({"up", "--wait"});
  CHECK(bad.code == 1);
  CHECK(bad.err.find(p + "-db-1 is unhealthy") != std::string::npos);
  CHECK(env.container(p, p + "-app-1").is_null());  // never started
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("an unhealthy container is restarted, unless x-stack opts out") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("sick");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  sick:
    image: busybox
    command: [sleep, "300"]
    restart: always
    healthcheck: {test: [CMD, "false"], interval: 100ms, retries: 2}
  reported:
    image: busybox
    command: [sleep, "300"]
    restart: always
    healthcheck: {test: [CMD, "false"], interval: 100ms, retries: 2}
    x-stack: {restart_on_unhealthy: false}
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto sick = env.wait_for(p, p + "-sick-1", [](auto& c) { return c["restarts"] >= 1; });
  CHECK(sick["restarts"] >= 1);
  auto reported = env.wait_for(p, p + "-reported-1", [](auto& c) { return c["health"] == "unhealthy"; });
  CHECK(reported["health"] == "unhealthy");
  CHECK(reported["restarts"] == 0);
  CHECK(reported["state"] == "running");
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
