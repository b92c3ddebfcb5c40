// The daemon as a person would check it: restart policies, drift repair, re-adoption after a
// kill -9 of the daemon, stack file edits applied without a command, events.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

nlohmann::json find(const nlohmann::json& ps, const std::string& name) {
  for (const auto& c : ps)
    if (c["name"] == name) return c;
  return nullptr;
}

int daemon_pid(StackEnv& env) {
  env.stack({"ps", "-p", "none"});  // makes sure one runs
  auto out = run({"/bin/sh", "-c",
                  "pgrep -f -- 'stackd --root .* --run-root " +
                      (env.root().parent_path() / "run").string() + "( |$)'"});
  return std::atoi(out.out.c_str());
}

}  // namespace

TEST_CASE("on-failure restarts with backoff up to its maximum, then stays down") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("retry");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  flaky:
    image: busybox
    command: [sh, -c, "echo try; exit 3"]
    restart: on-failure:3
)");
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto c = env.wait_for(p, p + "-flaky-1",
                        [](auto& c) { return c["restarts"] == 3 && c["state"] == "exited"; });
  CHECK(c["restarts"] == 3);
  CHECK(c["state"] == "exited");
  CHECK(c["exit_code"] == 3);
  // Backoff 100 + 200 + 400 ms between the four runs.
  CHECK(std::chrono::steady_clock::now() - t0 >= 700ms);
  auto logs = env.stack({"logs", "flaky"}).out;
  size_t tries = 0;
  for (size_t pos = 0; (pos = logs.find("| try", pos)) != std::string::npos; pos++) tries++;
  CHECK(tries == 4);  // the first run and three restarts, one log file
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a container whose init is killed from outside is started again (drift)") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("drift");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  int pid = env.container(p, p + "-s-1")["pid"];
  REQUIRE(::kill(pid, SIGKILL) == 0);  // restart: "no" — but this is not the service exiting
  auto c = env.wait_for(p, p + "-s-1",
                        [&](auto& c) { return c["state"] == "running" && c["pid"] != pid; });
  CHECK(c["state"] == "running");
  CHECK(c["pid"] != pid);
  CHECK(c["restarts"] == 1);
  CHECK(env.stack({"exec", "s", "true"}).code == 0);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("kill -9 of the daemon: a new one re-adopts every container, PIDs unchanged") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("adopt");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  stay:
    image: busybox
    command: [sh, -c, "i=0; while true; do echo tick $$i; i=$$((i+1)); sleep 0.2; done"]
  leave:
    image: busybox
    command: [sh, -c, "sleep 1; echo bye; exit 5"]
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  int stay = env.container(p, p + "-stay-1")["pid"];
  int old_daemon = daemon_pid(env);
  REQUIRE(old_daemon > 0);
  auto ticks_before = env.stack({"logs", "stay"}).out;
  REQUIRE(::kill(old_daemon, SIGKILL) == 0);
  // "leave" exits while no daemon runs: its init writes the exit record.
  auto exit_record = env.root() / "containers" / (p + "-leave-1") / "exit";
  for (int i = 0; i < 300 && !std::filesystem::exists(exit_record); i++)
    std::this_thread::sleep_for(20ms);
  REQUIRE(std::filesystem::exists(exit_record));
  // The next command starts a new daemon, which adopts what runs and records what ended.
  auto ps = env.ps(p);
  CHECK(daemon_pid(env) != old_daemon);
  auto s = find(ps, p + "-stay-1");
  CHECK(s["state"] == "running");
  CHECK(s["pid"] == stay);
  CHECK(s["restarts"] == 0);
  auto l = find(ps, p + "-leave-1");
  CHECK(l["state"] == "exited");
  CHECK(l["exit_code"] == 5);
  CHECK(env.stack({"logs", "leave"}).out.find("bye") != std::string::npos);
  // No log line lost: the ticks are consecutive across the daemon's death.
  auto ticks = env.stack({"logs", "stay"}).out;
  int expected = 0;
  for (size_t pos = 0; (pos = ticks.find("tick ", pos)) != std::string::npos; pos += 5)
    CHECK(std::atoi(ticks.c_str() + pos + 5) == expected++);
  // ...and some were written while no daemon ran.
  size_t before = 0;
  for (size_t pos = 0; (pos = ticks_before.find("tick ", pos)) != std::string::npos; pos += 5) before++;
  CHECK(expected > static_cast<int>(before));
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("an edited stack file is applied by the daemon, to the changed service only") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("edit");
  env.uses(p);
  auto file = [&](const std::string& mode) {
    env.write("name: " + p + "\nservices:\n  a:\n    image: busybox\n    command: [sleep, '300']\n"
              "    environment: {MODE: " + mode + "}\n  b:\n    image: busybox\n"
              "    command: [sleep, '300']\n");
  };
  file("one");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  int a = env.container(p, p + "-a-1")["pid"], b = env.container(p, p + "-b-1")["pid"];
  file("two");  // no command: the daemon watches the file
  auto c = env.wait_for(p, p + "-a-1",
                        [&](auto& c) { return c["state"] == "running" && c["pid"] != a; });
  CHECK(c["pid"] != a);
  CHECK(env.container(p, p + "-b-1")["pid"] == b);
  CHECK(env.stack({"exec", "a", "sh", "-c", "echo $MODE"}).out == "two\n");
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("stack stop is not undone by the restart policy or the reconcile") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("keep");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n"
            "    restart: always\n");
  env.start_daemon({"--resync", "0.1"});
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  REQUIRE(env.stack({"stop", "s"}).code == 0);
  // Three resync passes, each past the 100 ms a restart policy would wait.
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(env.container(p, p + "-s-1")["state"] == "exited");
  // A daemon restart (which reconciles every project) leaves it stopped too.
  REQUIRE(env.stack({"daemon", "stop"}).code == 0);
  CHECK(env.container(p, p + "-s-1")["state"] == "exited");
  REQUIRE(env.stack({"up", "-d"}).code == 0);  // an explicit up starts it, as compose does
  CHECK(env.container(p, p + "-s-1")["state"] == "running");
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("events stream what happens, as JSON") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("ev");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  s:\n    image: busybox\n    command: [sh, -c, 'exit 2']\n");
  REQUIRE(env.stack({"ps", "-p", p}).code == 0);  // a daemon runs
  auto since = std::to_string(StackEnv::now_ms() / 1000 - 1);  // whole seconds, a moment before
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  env.wait_for(p, p + "-s-1", [](auto& c) { return c["state"] == "exited"; });
  // `stack events` follows until killed: --since replays what happened from before the up;
  // read its output until the die event is there.
  std::string out_path = (env.root().parent_path() / "events.out").string();
  pid_t pid = ::fork();
  if (pid == 0) {
    std::time_t t = std::atoll(since.c_str());
    char iso[32];
    std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    std::string cmd = std::string(STACK_BUILD_DIR) + "/stack --root " + env.root().string() +
                      " --run-root " + (env.root().parent_path() / "run").string() +
                      " -p " + p + " events --format json --since " + iso + " > " + out_path;
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), nullptr);
    ::_exit(127);
  }
  std::vector<std::string> types;
  for (int i = 0; i < 250 && std::find(types.begin(), types.end(), "die") == types.end(); i++) {
    std::this_thread::sleep_for(20ms);
    types.clear();
    std::ifstream in(out_path);
    for (std::string line; std::getline(in, line);) {
      auto e = nlohmann::json::parse(line, nullptr, false);
      if (!e.is_object()) continue;
      CHECK(e["project"] == p);
      types.push_back(e["type"]);
      if (e["type"] == "die") CHECK(e["attributes"]["exit_code"] == "2");
    }
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  CHECK(types == std::vector<std::string>{"create", "start", "die"});
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("a daemon killed half-way through up: the next one converges, nothing leaked") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("half");
  env.uses(p);
  std::string yaml = "name: " + p + "\nservices:\n";
  for (int i = 0; i < 12; i++)
    yaml += "  s" + std::to_string(i) + ":\n    image: busybox\n    command: [sleep, '300']\n" +
            (i ? "    depends_on: [s" + std::to_string(i - 1) + "]\n" : "");
  env.write(yaml);
  REQUIRE(env.stack({"ps", "-p", p}).code == 0);  // a daemon runs
  int daemon = daemon_pid(env);
  // The chain of 12 services starts one after the other: kill the daemon in the middle.
  pid_t up = ::fork();
  if (up == 0) {
    auto r = env.stack({"up", "-d"});
    ::_exit(r.code);
  }
  std::this_thread::sleep_for(30ms);  // the kill point: the test's input, not a wait
  ::kill(daemon, SIGKILL);
  ::waitpid(up, nullptr, 0);
  // The next command starts a daemon, which reconciles the registered project.
  REQUIRE(env.stack({"ps", "-p", p}).code == 0);
  for (int i = 0; i < 12; i++) {
    auto c = env.wait_for(p, p + "-s" + std::to_string(i) + "-1",
                          [](auto& c) { return c["state"] == "running"; });
    CHECK_MESSAGE(c["state"] == "running", "s" << i);
  }
  CHECK(env.ps(p).size() == 12);  // one container per service: none started twice
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
