// One plan, executed as planned (issue 11): what the plan shows is what `up` does, networks
// included, and the gaps of the first round — a changed network, `stack restart` of a
// dependency, a network_mode service:NAME whose NAME is recreated — behave as a user expects.
#include <doctest/doctest.h>
#include <unistd.h>

#include "e2e/stack_env.h"

using namespace stack::test;

namespace {

std::string netns_of(int pid) {
  char buf[128] = {};
  ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace

TEST_CASE("the plan shows networks and the order of the steps: up runs exactly it") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("plan");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  db:
    image: busybox
    command: [sleep, "300"]
  web:
    image: busybox
    command: [sleep, "300"]
    depends_on: [db]
)");
  auto json = env.stack({"plan", "--format", "json"});
  REQUIRE_MESSAGE(json.code == 0, json.err);
  auto plan = nlohmann::json::parse(json.out);
  std::vector<std::string> steps;
  for (const auto& a : plan["actions"]) steps.push_back(a["text"]);
  CHECK(steps == std::vector<std::string>{"+ network " + p + "_default (new)",
                                          "+ create " + p + "-db-1 (new)",
                                          "> start " + p + "-db-1 (new)",
                                          "= await " + p + "-db-1 started (web depends on db)",
                                          "+ create " + p + "-web-1 (new)",
                                          "> start " + p + "-web-1 (new)"});
  CHECK(plan["actions"][5]["after"] == nlohmann::json::array({0, 3, 4}));
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.stack({"plan"}).out == "nothing to do\n");
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a changed network definition makes the network again with its containers") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netchg");
  env.uses(p);
  auto file = [&](const std::string& label) {
    env.write("name: " + p + R"(
networks:
  front:
    labels: {tier: )" + label + R"(}
services:
  web:
    image: busybox
    command: [sleep, "300"]
    networks: [front]
  other:
    image: busybox
    command: [sleep, "300"]
)");
  };
  file("one");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  int web = env.container(p, p + "-web-1")["pid"], other = env.container(p, p + "-other-1")["pid"];
  file("two");
  auto plan = env.stack({"plan"}).out;
  CHECK(plan.find("~ network " + p + "_front (definition changed)") != std::string::npos);
  CHECK(plan.find("+ create " + p + "-web-1 (network " + p + "_front changed)") != std::string::npos);
  CHECK(plan.find(p + "-other-1") == std::string::npos);
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  CHECK(env.container(p, p + "-web-1")["pid"] != web);
  CHECK(env.container(p, p + "-other-1")["pid"] == other);
  CHECK(env.stack({"exec", "web", "ip", "-4", "addr", "show", "eth0"}).code == 0);
  CHECK(env.stack({"plan"}).out == "nothing to do\n");
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("stack restart of a dependency restarts what follows it with restart: true") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("rdeps");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  db:
    image: busybox
    command: [sleep, "300"]
  web:
    image: busybox
    command: [sleep, "300"]
    depends_on:
      db: {condition: service_started, restart: true}
  worker:
    image: busybox
    command: [sleep, "300"]
    depends_on: [db]
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  int db = env.container(p, p + "-db-1")["pid"], web = env.container(p, p + "-web-1")["pid"],
      worker = env.container(p, p + "-worker-1")["pid"];
  auto restart = env.stack({"restart", "db"});
  REQUIRE_MESSAGE(restart.code == 0, restart.err);
  CHECK(env.container(p, p + "-db-1")["pid"] != db);
  CHECK(env.container(p, p + "-web-1")["pid"] != web);
  CHECK(env.container(p, p + "-web-1")["state"] == "running");
  CHECK(env.container(p, p + "-worker-1")["pid"] == worker);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("network_mode service:NAME follows NAME into its new network namespace") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("joins");
  env.uses(p);
  auto file = [&](const std::string& mode) {
    env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    environment: {MODE: )" + mode + R"(}
  side:
    image: busybox
    command: [sleep, "300"]
    network_mode: service:app
)");
  };
  file("one");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  int app = env.container(p, p + "-app-1")["pid"], side = env.container(p, p + "-side-1")["pid"];
  CHECK(netns_of(side) == netns_of(app));
  file("two");  // app recreated: side must not keep the old namespace
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  int app2 = env.container(p, p + "-app-1")["pid"], side2 = env.container(p, p + "-side-1")["pid"];
  CHECK(app2 != app);
  CHECK(side2 != side);
  CHECK(netns_of(side2) == netns_of(app2));
  CHECK(env.stack({"plan"}).out == "nothing to do\n");
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
