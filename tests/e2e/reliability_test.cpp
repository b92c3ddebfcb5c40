// The daemon under the faults and inputs that broke it before: one-shot jobs re-run by the
// resync, a backoff that outlived its container, plans retried with no end, a project that could
// never be removed. Each case failed on the code as it was found.
#include <doctest/doctest.h>
#include <signal.h>

#include <fstream>
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

// Alive and not a zombie: an init whose daemon is gone is reparented to the host's PID 1, which
// reaps it when it will.
bool running(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
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

TEST_CASE("a hostile file over one project's stack file stalls neither the API nor another project") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  env.start_daemon({"--resync", "0.1"});
  auto bad = unique_project("bomb"), good = unique_project("calm");
  env.uses(bad);
  env.uses(good);
  auto service = "\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n";
  env.write("name: " + bad + service, "bad.yaml");
  env.write("name: " + good + service, "good.yaml");
  REQUIRE(env.stack({"-f", "bad.yaml", "up", "-d"}).code == 0);
  REQUIRE(env.stack({"-f", "good.yaml", "up", "-d"}).code == 0);
  // The alias bomb of the report (9 levels of 10, 10^9 nodes expanded) over the running
  // project's file: it took 40 s, 3.7 GB and every project's resync with it.
  std::string bomb = "name: " + bad + "\nx-l0: &l0 [lol]\n";
  for (int l = 1; l <= 9; ++l) {
    bomb += "x-l" + std::to_string(l) + ": &l" + std::to_string(l) + " [";
    for (int i = 0; i < 10; ++i) bomb += (i ? ", *l" : "*l") + std::to_string(l - 1);
    bomb += "]\n";
  }
  env.write(bomb + service, "bad.yaml");
  auto t0 = std::chrono::steady_clock::now();
  // The daemon says which file it cannot load, and keeps what runs.
  std::string log;
  for (int i = 0; i < 200 && log.find("not loadable") == std::string::npos; i++) {
    std::this_thread::sleep_for(25ms);
    log = read_text(env.run_root() / "daemon.log");
  }
  CHECK_MESSAGE(log.find("project=" + bad) != std::string::npos, log);
  CHECK(log.find("alias") != std::string::npos);
  CHECK(env.container(bad, bad + "-s-1")["state"] == "running");
  // The API answers at once, and the other project's drift is still repaired.
  int pid = env.container(good, good + "-s-1")["pid"];
  REQUIRE(::kill(pid, SIGKILL) == 0);
  auto back = env.wait_for(good, good + "-s-1", [&](auto& c) {
    return c["state"] == "running" && c["pid"] != pid;
  });
  CHECK(back["pid"] != pid);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));  // resync goes on
  env.write("name: " + bad + service, "bad.yaml");
  CHECK(env.stack({"-f", "bad.yaml", "down"}).code == 0);
  CHECK(env.stack({"-f", "good.yaml", "down"}).code == 0);
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

TEST_CASE("what execve would refuse is refused before anything is made") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("argmax");
  env.uses(p);
  // One value past the per-string limit (from an env file), and twenty that pass it alone but
  // not together (in the file itself: an env file is capped at 1 MiB).
  std::string one(200 * 1024, 'x'), many;
  for (int i = 0; i < 20; i++)
    many.append("      V").append(std::to_string(i)).append(": ").append(120 * 1024, 'y').append("\n");
  env.write("BIG=" + one + "\n", "one.env");
  env.write("name: " + p + R"(
services:
  ok:
    image: busybox
    command: [sleep, "300"]
  one:
    image: busybox
    command: [sleep, "300"]
    env_file: one.env
  many:
    image: busybox
    command: [sleep, "300"]
    environment:
)" + many);
  auto up = env.stack({"up", "-d"});
  CHECK(up.code == 1);
  CHECK_MESSAGE(up.err.find("service \"one\": variable BIG is 0.2 MiB; execve(2) takes at most "
                            "128 KiB per argument or variable") != std::string::npos, up.err);
  CHECK_MESSAGE(up.err.find("service \"many\": its command and environment are 2.3 MiB") !=
                    std::string::npos, up.err);
  // Nothing was made: no container of any service, the healthy one included.
  CHECK(env.ps(p).empty());
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a start that fails is retried on a backoff, and ps and events say why") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("failing");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  s:\n    image: busybox\n    command: [/no/such/program]\n");
  int64_t since = StackEnv::now_ms();
  auto up = env.stack({"up", "-d"});
  CHECK(up.code == 1);
  CHECK(up.err.find("/no/such/program") != std::string::npos);
  auto c = env.container(p, p + "-s-1");
  CHECK(c["state"] == "created");
  CHECK(c["error"].get<std::string>().find("/no/such/program") != std::string::npos);
  CHECK(env.stack({"ps", "-a"}).out.find("Error: ") != std::string::npos);
  // The daemon tries again by itself, waiting longer each time: 500 ms, then 1 s.
  auto attempt = [&](const char* n) {
    return env.wait_event(p, since, [n](auto& e) {
      return e["type"] == "error" && e["container"] == "" && e["attributes"]["attempt"] == n;
    });
  };
  auto second = attempt("2"), third = attempt("3");
  REQUIRE(!second.is_null());
  REQUIRE(!third.is_null());
  CHECK(third["attributes"]["retry_in_ms"] == "2000");
  CHECK(second["attributes"]["retry_in_ms"] == "1000");
  // Mended: the file watch applies it, the error goes.
  env.write("name: " + p + "\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n");
  c = env.wait_for(p, p + "-s-1", [](auto& c) { return c["state"] == "running"; });
  CHECK(c["state"] == "running");
  CHECK(c["error"] == "");
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("down removes a project whatever its records say") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("unreadable");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  a:\n    image: busybox\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  int pid = env.container(p, p + "-a-1")["pid"];
  REQUIRE(env.stack({"daemon", "stop"}).code == 0);
  // A record nobody can read, and one whose name no path can hold (as a 300-character service
  // name once made): neither may keep the project from being removed.
  std::string long_name = p + "-" + std::string(300, 'x') + "-1";
  std::string sql =
      "UPDATE containers SET runtime_json = '{broken' WHERE name = '" + p + "-a-1';"
      "INSERT INTO containers (name, project, service, number, config_hash, image, image_id, "
      "state, pid, pid_start_time, exit_code, oom_killed, restarts, created_at, started_at, "
      "finished_at, runtime_json) SELECT '" + long_name + "', project, '" + std::string(300, 'x') +
      "', 1, config_hash, image, image_id, 'created', 0, 0, 0, 0, 0, created_at, 0, 0, '{}' "
      "FROM containers WHERE name = '" + p + "-a-1';";
  auto edit = run({"/usr/bin/python3", "-c",
                   "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                   "db.executescript(sys.argv[2]); db.commit()",
                   (env.root() / "state.db").string(), sql});
  REQUIRE_MESSAGE(edit.code == 0, edit.err);
  auto down = env.stack({"down", "-t", "1"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(!running(pid));
  CHECK(env.leftovers(p).empty());
}
