// What a person would check of isolation, through the stack binary: the processes a container
// sees, its hostname, its own writable layer, and that `down` leaves nothing.
#include <doctest/doctest.h>

#include <sstream>

#include "e2e/stack_env.h"

using namespace stack::test;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("stack exec a ps lists only the container's processes, init as PID 1") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("iso");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  a:
    image: busybox
    command: [sleep, "300"]
  b:
    image: busybox
    command: [sleep, "300"]
    hostname: bee
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);

  auto ps = env.stack({"exec", "a", "ps", "-o", "pid,comm"});
  REQUIRE(ps.code == 0);
  auto lines = lines_of(ps.out);
  REQUIRE(lines.size() == 4);  // header, init, sleep, ps: nothing of the host
  CHECK(lines[1].find("1 stack-init") != std::string::npos);
  CHECK(lines[2].find("sleep") != std::string::npos);

  CHECK(env.stack({"exec", "a", "hostname"}).out == p + "-a-1\n");
  CHECK(env.stack({"exec", "b", "hostname"}).out == "bee\n");

  // A file written in a is seen neither in b (same image) nor in the image's layer.
  CHECK(env.stack({"exec", "a", "sh", "-c", "echo secret > /etc/note"}).code == 0);
  CHECK(env.stack({"exec", "a", "cat", "/etc/note"}).out == "secret\n");
  CHECK(env.stack({"exec", "b", "test", "-e", "/etc/note"}).code == 1);
  for (auto& layer : std::filesystem::directory_iterator(env.root() / "images/layers"))
    CHECK(!std::filesystem::exists(layer.path() / "etc/note"));

  // The exit code of the command comes back.
  CHECK(env.stack({"exec", "a", "sh", "-c", "exit 42"}).code == 42);

  auto down = env.stack({"down"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("down stops, removes and leaves no mount, cgroup, process, directory or state") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("clean");
  env.uses(p);
  std::filesystem::create_directories(env.project_dir() / "data");
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "trap 'echo bye; exit 0' TERM; while true; do sleep 1; done"]
    deploy:
      replicas: 2
    volumes: ["./data:/data"]
    mem_limit: 64m
    pids_limit: 20
    cpus: 0.5
  worker:
    image: busybox
    command: [sleep, "300"]
    depends_on: [web]
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto ps = env.ps(p);
  REQUIRE(ps.size() == 3);
  for (const auto& c : ps) CHECK(c["state"] == "running");
  CHECK(env.leftovers(p).size() > 0);  // the check sees a running project

  // web traps TERM and says bye: the stop signal reaches the service through the init.
  REQUIRE(env.stack({"stop", "web"}).code == 0);
  auto logs = env.stack({"logs", "web"}).out;
  CHECK(logs.find(p + "-web-1 | bye") != std::string::npos);
  CHECK(logs.find(p + "-web-2 | bye") != std::string::npos);
  CHECK(env.container(p, p + "-web-1")["exit_code"] == 0);

  auto down = env.stack({"down"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(down.err.find(p + "-worker-1") < down.err.find(p + "-web-1"));  // reverse order
  CHECK(env.leftovers(p).empty());
  CHECK(std::filesystem::exists(env.project_dir() / "data"));  // the user's files stay
}

TEST_CASE("a bind mount is shared with the host, and read-only when asked") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("bind");
  env.uses(p);
  write_text(env.project_dir() / "conf/app.conf", "level=debug\n");
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes:
      - ./conf:/etc/app:ro
      - ./out:/out
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  CHECK(env.stack({"exec", "app", "cat", "/etc/app/app.conf"}).out == "level=debug\n");
  CHECK(env.stack({"exec", "app", "touch", "/etc/app/x"}).code != 0);
  CHECK(env.stack({"exec", "app", "sh", "-c", "echo made > /out/result"}).code == 0);
  CHECK(read_text(env.project_dir() / "out/result") == "made\n");
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("user, working_dir, environment and env_file reach the service") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("env");
  env.uses(p);
  write_text(env.project_dir() / "app.env", "FROM_FILE=yes\nSHARED=file\n");
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    user: app
    working_dir: /home/app
    env_file: app.env
    environment:
      SHARED: inline
      MODE: ${MODE:-dev}
)");
  REQUIRE(env.stack({"up", "-d"}, {"MODE=prod"}).code == 0);
  CHECK(env.stack({"exec", "app", "id", "-u"}).out == "1000\n");
  CHECK(env.stack({"exec", "app", "pwd"}).out == "/home/app\n");
  auto vars = env.stack({"exec", "app", "sh", "-c", "echo $FROM_FILE $SHARED $MODE"}).out;
  CHECK(vars == "yes inline prod\n");
  CHECK(env.stack({"down"}).code == 0);
}
