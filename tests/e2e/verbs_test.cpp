// The compose verbs beyond up/down/ps, as a user types them: kill, top, wait, ls, images,
// version --short, ps --services/--status/--filter, logs --since/--until/--no-color/
// --no-log-prefix, events --filter. Each checks what the user sees and what the kernel has.
#include <doctest/doctest.h>

#include <signal.h>

#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

bool alive(int pid) { return pid > 0 && ::kill(pid, 0) == 0; }

std::string sleepers(const std::string& p) {
  return "name: " + p + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "trap 'echo got-hup' HUP; while true; do sleep 1; done"]
    restart: always
  db:
    image: busybox
    command: [sleep, "300"]
)";
}

}  // namespace

TEST_CASE("kill sends SIGKILL by default, -s another signal, and a killed service stays down") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("kill");
  env.uses(p);
  env.write(sleepers(p));
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  // A signal that does not end the service reaches it and leaves it running.
  auto hup = env.stack({"kill", "-s", "SIGHUP", "web"});
  REQUIRE_MESSAGE(hup.code == 0, hup.err);
  std::string logs;
  for (int i = 0; i < 200 && logs.find("got-hup") == std::string::npos; i++) {
    std::this_thread::sleep_for(20ms);
    logs = env.stack({"logs", "web"}).out;
  }
  CHECK(logs.find("got-hup") != std::string::npos);
  CHECK(env.container(p, p + "-web-1")["state"] == "running");
  int web = env.container(p, p + "-web-1")["pid"], db = env.container(p, p + "-db-1")["pid"];
  // Default SIGKILL, one service: killed even with restart: always (the user's stop), the other
  // untouched.
  auto k = env.stack({"kill", "web"});
  REQUIRE_MESSAGE(k.code == 0, k.err);
  CHECK(k.err.find(p + "-web-1") != std::string::npos);
  auto c = env.wait_for(p, p + "-web-1", [](const auto& c) { return c["state"] == "exited"; });
  CHECK(c["state"] == "exited");
  CHECK(c["exit_code"] == 137);
  CHECK(!alive(web));
  CHECK(env.container(p, p + "-db-1")["pid"] == db);
  // Not restarted, not repaired: a reconcile pass (the periodic resync) later it is still down.
  auto from = env.reconciles();
  CHECK(env.wait_reconciles(from, 1));
  CHECK(env.container(p, p + "-web-1")["state"] == "exited");
  // Bad input: an unknown signal and an unknown service are refused, nothing signalled.
  auto bad = env.stack({"kill", "-s", "SIGNOPE"});
  CHECK(bad.code == 1);
  CHECK(bad.err.find("unknown signal \"SIGNOPE\"") != std::string::npos);
  auto none = env.stack({"kill", "nosuch"});
  CHECK(none.code == 1);
  CHECK(none.err.find("no such service in project " + p + ": nosuch") != std::string::npos);
  CHECK(alive(db));
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("top lists the processes of each container's cgroup with ps columns") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("top");
  env.uses(p);
  env.write(sleepers(p));
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto top = env.stack({"top", "db"});
  REQUIRE_MESSAGE(top.code == 0, top.err);
  CHECK(top.out.rfind(p + "-db-1\nUID ", 0) == 0);
  CHECK(top.out.find("PID") != std::string::npos);
  CHECK(top.out.find("sleep 300") != std::string::npos);
  CHECK(top.out.find(p + "-web-1") == std::string::npos);
  // The container's init is listed with its host PID, as ps shows it.
  int pid = env.container(p, p + "-db-1")["pid"];
  CHECK(top.out.find(" " + std::to_string(pid) + " ") != std::string::npos);
  auto both = env.stack({"top"});
  CHECK(both.out.find(p + "-web-1\n") != std::string::npos);
  CHECK(both.out.find(p + "-db-1\n") != std::string::npos);
  CHECK(env.stack({"top", "nosuch"}).code == 1);
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("wait returns the exit code of the first container to stop") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("wait");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  job:
    image: busybox
    command: [sh, -c, "sleep 1; exit 3"]
  db:
    image: busybox
    command: [sleep, "300"]
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto w = env.stack({"wait", "job", "db"});
  CHECK(w.code == 3);
  CHECK(env.container(p, p + "-db-1")["state"] == "running");
  // Already stopped: answered at once.
  CHECK(env.stack({"wait", "job"}).code == 3);
  CHECK(env.stack({"wait", "nosuch"}).code == 1);
  CHECK(env.stack({"wait"}).code == 2);  // a service is required
  // --down-project drops the project once the first one stops.
  CHECK(env.stack({"wait", "--down-project", "job"}).code == 3);
  CHECK(env.ps(p).empty());
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("ls lists projects with their status counts, images the images their containers use") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("ls");
  env.uses(p);
  env.write(sleepers(p));
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  REQUIRE(env.stack({"stop", "web"}).code == 0);
  auto ls = env.stack({"ls"});
  REQUIRE(ls.code == 0);
  CHECK(ls.out.rfind("NAME", 0) == 0);
  CHECK(ls.out.find(p + " ") != std::string::npos);
  CHECK(ls.out.find("exited(1), running(1)") != std::string::npos);
  auto json = nlohmann::json::parse(env.stack({"ls", "--format", "json"}).out);
  bool found = false;
  for (const auto& j : json)
    if (j["Name"] == p)
      found = j["Status"] == "exited(1), running(1)" &&
              j["ConfigFiles"] == (env.project_dir() / "stack.yaml").string();
  CHECK(found);
  // A project with nothing running shows with --all only.
  REQUIRE(env.stack({"stop"}).code == 0);
  CHECK(env.stack({"ls"}).out.find(p) == std::string::npos);
  CHECK(env.stack({"ls", "-a"}).out.find("exited(2)") != std::string::npos);
  CHECK(env.stack({"ls", "-q", "-a"}).out.find(p + "\n") != std::string::npos);

  auto images = env.stack({"images"});
  REQUIRE(images.code == 0);
  CHECK(images.out.rfind("CONTAINER", 0) == 0);
  CHECK(images.out.find(p + "-db-1") != std::string::npos);
  CHECK(images.out.find("busybox") != std::string::npos);
  auto ij = nlohmann::json::parse(env.stack({"images", "--format", "json", "db"}).out);
  REQUIRE(ij.size() == 1);
  CHECK(ij[0]["ContainerName"] == p + "-db-1");
  CHECK(ij[0]["Repository"] == "busybox");
  CHECK(ij[0]["Tag"] == "latest");
  CHECK(ij[0]["ID"].get<std::string>().rfind("sha256:", 0) == 0);
  CHECK(ij[0]["Size"].get<uint64_t>() > 0);
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("ps --services, --status and --filter status= select as compose does") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("psf");
  env.uses(p);
  env.write(sleepers(p));
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  REQUIRE(env.stack({"stop", "web"}).code == 0);
  CHECK(env.stack({"ps", "--services"}).out == "db\n");
  auto all = env.stack({"ps", "-a", "--services"}).out;
  CHECK((all == "db\nweb\n" || all == "web\ndb\n"));
  CHECK(env.stack({"ps", "--status", "exited", "--services"}).out == "web\n");
  CHECK(env.stack({"ps", "--filter", "status=running", "-q"}).out == p + "-db-1\n");
  auto both = env.stack({"ps", "--status", "exited", "--status", "running", "-q"}).out;
  CHECK(both.find(p + "-db-1\n") != std::string::npos);
  CHECK(both.find(p + "-web-1\n") != std::string::npos);
  CHECK(env.stack({"ps", "--status", "bogus"}).code == 2);
  CHECK(env.stack({"ps", "--filter", "name=x"}).code == 2);
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("logs --since, --until, --no-log-prefix and --no-color") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("logf");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  talk:
    image: busybox
    command: [sh, -c, "echo first; sleep 2; echo second; exec sleep 300"]
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  std::string logs;
  for (int i = 0; i < 300 && logs.find("second") == std::string::npos; i++) {
    std::this_thread::sleep_for(20ms);
    logs = env.stack({"logs", "--no-log-prefix"}).out;
  }
  CHECK(logs == "first\nsecond\n");
  CHECK(env.stack({"logs", "--no-color"}).out.find(p + "-talk-1 | first\n") != std::string::npos);
  // The second line was written 2 s after the first: --since 1s keeps it alone...
  CHECK(env.stack({"logs", "--no-log-prefix", "--since", "1s"}).out == "second\n");
  // ...and --until a time between the two keeps the first alone.
  auto ts = env.stack({"logs", "-t", "--no-log-prefix"}).out;  // "TIME first\nTIME second\n"
  std::string second_time = ts.substr(ts.find('\n') + 1, ts.find(' ', ts.find('\n')) - ts.find('\n') - 1);
  CHECK(env.stack({"logs", "--no-log-prefix", "--until", second_time.substr(0, 19) + "Z"}).out ==
        "first\n");
  CHECK(env.stack({"logs", "--since", "yesterday"}).code == 2);
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("events --filter keeps the events of one type and service, version --short the number") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("evf");
  env.uses(p);
  env.write(sleepers(p));
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  REQUIRE(env.stack({"stop", "db"}).code == 0);
  // events streams until the daemon stops: the kept events (--since) come at once, and
  // timeout(1) ends the stream after them.
  auto ev = run({"/usr/bin/timeout", "2", std::string(STACK_BUILD_DIR) + "/stack", "--root",
                 env.root().string(), "--run-root", env.run_root().string(), "-p", p, "events",
                 "--json", "--since", "5m", "--filter", "type=stop", "--filter", "type=create",
                 "--filter", "service=db"});
  CHECK(ev.out.find("\"type\":\"stop\"") != std::string::npos);
  CHECK(ev.out.find("\"service\":\"db\"") != std::string::npos);
  CHECK(ev.out.find("\"service\":\"web\"") == std::string::npos);
  CHECK(ev.out.find("\"type\":\"create\"") != std::string::npos);
  CHECK(ev.out.find("\"type\":\"start\"") == std::string::npos);
  CHECK(env.stack({"events", "--filter", "colour=red"}).code == 2);
  auto v = env.stack({"version", "--short"});
  CHECK(v.code == 0);
  CHECK(v.out.find("stack") == std::string::npos);
  CHECK(v.out.find('.') != std::string::npos);
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("the new verbs have --help") {
  StackEnv env;
  for (const char* verb : {"kill", "pause", "unpause", "top", "wait", "ls", "images"}) {
    auto r = env.stack({verb, "--help"});
    CHECK_MESSAGE(r.code == 0, verb);
    CHECK(r.out.find("Usage:") != std::string::npos);
  }
}

TEST_CASE("pause freezes a service's cgroup and ps says paused, unpause thaws it, down ends it") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("pause");
  env.uses(p);
  env.write(sleepers(p));
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto freezer = StackEnv::cgroup_dir("freezer", p, p + "-db-1") / "freezer.state";
  REQUIRE(std::filesystem::exists(freezer));
  CHECK(read_text(freezer) == "THAWED\n");
  auto r = env.stack({"pause", "db"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.err.find(p + "-db-1") != std::string::npos);
  CHECK(read_text(freezer) == "FROZEN\n");
  CHECK(env.container(p, p + "-db-1")["state"] == "paused");
  CHECK(env.container(p, p + "-web-1")["state"] == "running");
  CHECK(env.stack({"ps"}).out.find("(Paused)") != std::string::npos);
  CHECK(env.stack({"ps", "--status", "paused", "--services"}).out == "db\n");
  // A command in a frozen container would hang: refused, as docker does.
  auto exec = env.stack({"exec", "db", "true"});
  CHECK(exec.code != 0);
  CHECK(exec.err.find("is paused") != std::string::npos);
  REQUIRE(env.stack({"unpause"}).code == 0);
  CHECK(read_text(freezer) == "THAWED\n");
  CHECK(env.container(p, p + "-db-1")["state"] == "running");
  CHECK(env.stack({"exec", "db", "true"}).code == 0);
  // A paused project goes down: thawed so that its services see the stop signal.
  REQUIRE(env.stack({"pause"}).code == 0);
  CHECK(env.container(p, p + "-web-1")["state"] == "paused");
  auto down = env.stack({"down", "-t", "5"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("down --rmi all removes the images the project used, keeping one another project runs") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("rmi"), q = unique_project("rmiq");
  env.uses(p);
  env.uses(q);
  env.write("name: " + p + "\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n");
  env.write("name: " + q + "\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n",
            "other.yaml");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  REQUIRE(env.stack({"-f", "other.yaml", "up", "-d"}).code == 0);
  // q still runs busybox: p's containers go, the image stays, and the user is told why.
  auto kept = env.stack({"down", "--rmi", "all"});
  CHECK(kept.code == 1);
  CHECK_MESSAGE(kept.err.find("image busybox:latest kept") != std::string::npos, kept.err);
  CHECK(env.ps(p).empty());
  CHECK(env.stack({"image", "ls", "-q"}).out != "");
  // --rmi local touches no image that has a name of its own.
  auto local = env.stack({"-f", "other.yaml", "down", "--rmi", "local"});
  CHECK(local.code == 0);
  CHECK(env.stack({"image", "ls", "-q"}).out != "");
  REQUIRE(env.stack({"-f", "other.yaml", "up", "-d"}).code == 0);
  auto all = env.stack({"-f", "other.yaml", "down", "--rmi", "all"});
  CHECK_MESSAGE(all.code == 0, all.err);
  CHECK(all.err.find("Image busybox:latest") != std::string::npos);
  CHECK(env.stack({"image", "ls", "-q"}).out == "");
  CHECK(env.stack({"down", "--rmi", "some"}).code == 2);
  CHECK(env.leftovers(p).empty());
  CHECK(env.leftovers(q).empty());
}
