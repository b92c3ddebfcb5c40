// The CLI contract later work relies on: global flags anywhere, project names, default files,
// ps JSON, logs, stop/start/restart, --help everywhere, and clear errors for bad stack files
// that leave the host untouched.
#include <doctest/doctest.h>

#include <set>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

TEST_CASE("global flags are accepted before and after the subcommand: ps JSON has its fields") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("flags");
  env.uses(p);
  env.write("services:\n  web:\n    image: busybox\n    command: [sleep, '300']\n", "app.yaml");
  REQUIRE(env.stack({"-f", "app.yaml", "-p", p, "up", "-d"}).code == 0);
  auto before = env.stack({"-p", p, "ps", "--format", "json"});
  auto after = env.stack({"ps", "--format", "json", "-f", "app.yaml", "-p", p});
  REQUIRE(before.code == 0);
  REQUIRE(after.code == 0);
  auto a = nlohmann::json::parse(before.out), b = nlohmann::json::parse(after.out);
  REQUIRE(a.size() == 1);
  CHECK(a[0]["name"] == b[0]["name"]);
  const auto& c = a[0];
  CHECK(c["name"] == p + "-web-1");
  CHECK(c["project"] == p);
  CHECK(c["service"] == "web");
  CHECK(c["state"] == "running");
  CHECK(c["pid"].get<int>() > 1);
  CHECK(c["exit_code"] == 0);
  CHECK(c["oom_killed"] == false);
  CHECK(c["restarts"] == 0);
  CHECK(!c["started_at"].get<std::string>().empty());
  // The pid is the host PID of the container's init.
  CHECK(read_text("/proc/" + std::to_string(c["pid"].get<int>()) + "/comm") == "stack-init\n");
  CHECK(env.stack({"down", "-p", p}).code == 0);
}

TEST_CASE("project name: -p, then name:, then the directory: default file discovery") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  env.write("services:\n  s:\n    image: busybox\n    command: [sleep, '300']\n", "compose.yaml");
  // No -p and no name: the project directory's name ("project").
  auto dry = env.stack({"up", "--dry-run"});
  REQUIRE_MESSAGE(dry.code == 0, dry.err);
  CHECK(dry.out ==
        "+ network project_default (new)\n"
        "+ create project-s-1 (new)\n"
        "> start project-s-1 (new)\n");
  env.write("name: Named_App\nservices:\n  s:\n    image: busybox\n    command: [sleep, '1']\n",
            "compose.yaml");
  CHECK(env.stack({"up", "--dry-run"}).out.find("+ create named_app-s-1 (new)\n") != std::string::npos);
  CHECK(env.stack({"-p", "other", "up", "--dry-run"}).out.find("+ create other-s-1 (new)\n") !=
        std::string::npos);
  // A dry run changes nothing.
  CHECK(env.stack({"ps", "-a", "-p", "named_app", "--format", "json"}).out == "[]\n");
}

TEST_CASE("logs, stop, start and restart act on the project's containers") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("life");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  talk:
    image: busybox
    command: [sh, -c, "echo out; echo err >&2; exec sleep 300"]
    stop_grace_period: 1s
  quiet:
    image: busybox
    command: [sleep, "300"]
)");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto logs = env.stack({"logs", "talk"});
  for (int i = 0; i < 100 && logs.out.find("| err\n") == std::string::npos; i++) {
    std::this_thread::sleep_for(20ms);  // until the service has written both lines
    logs = env.stack({"logs", "talk"});
  }
  CHECK(logs.out.find(p + "-talk-1 | out\n") != std::string::npos);
  CHECK(logs.out.find(p + "-talk-1 | err\n") != std::string::npos);
  CHECK(env.stack({"logs", "-t", "--tail", "1", "talk"}).out.find("Z ") != std::string::npos);

  int pid = env.container(p, p + "-talk-1")["pid"];
  REQUIRE(env.stack({"stop", "talk"}).code == 0);
  CHECK(env.container(p, p + "-talk-1")["state"] == "exited");
  CHECK(env.container(p, p + "-quiet-1")["state"] == "running");
  REQUIRE(env.stack({"start"}).code == 0);
  auto c = env.container(p, p + "-talk-1");
  CHECK(c["state"] == "running");
  CHECK(c["pid"] != pid);
  REQUIRE(env.stack({"restart", "quiet"}).code == 0);
  CHECK(env.container(p, p + "-quiet-1")["state"] == "running");
  // The writable layer survives a stop: a restart is the same container.
  CHECK(env.stack({"exec", "quiet", "touch", "/kept"}).code == 0);
  REQUIRE(env.stack({"restart", "quiet"}).code == 0);
  CHECK(env.stack({"exec", "quiet", "test", "-e", "/kept"}).code == 0);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a second up is a no-op, a changed service is recreated alone") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("noop");
  env.uses(p);
  auto file = [&](const std::string& mode, const std::string& name = "stack.yaml") {
    env.write("name: " + p + "\nservices:\n  a:\n    image: busybox\n    command: [sleep, '300']\n"
              "    environment: {MODE: " + mode + "}\n  b:\n    image: busybox\n"
              "    command: [sleep, '300']\n", name);
  };
  file("one");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  int pid_a = env.container(p, p + "-a-1")["pid"], pid_b = env.container(p, p + "-b-1")["pid"];
  auto again = env.stack({"up", "-d"});
  CHECK(again.err.find("Nothing to do") != std::string::npos);
  CHECK(env.container(p, p + "-a-1")["pid"] == pid_a);
  // The plan of a changed file: written elsewhere first, since the daemon applies edits to the
  // registered stack.yaml by itself.
  file("two", "next.yaml");
  CHECK(env.stack({"-f", "next.yaml", "up", "--dry-run"}).out ==
        "< stop " + p + "-a-1 (environment changed)\n"
        "- remove " + p + "-a-1 (environment changed)\n"
        "+ create " + p + "-a-1 (environment changed)\n"
        "> start " + p + "-a-1 (environment changed)\n");
  REQUIRE(env.stack({"-f", "next.yaml", "up", "-d"}).code == 0);
  CHECK(env.container(p, p + "-a-1")["pid"] != pid_a);
  CHECK(env.container(p, p + "-b-1")["pid"] == pid_b);
  CHECK(env.stack({"exec", "a", "sh", "-c", "echo $MODE"}).out == "two\n");
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("every command has --help") {
  StackEnv env;
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{}, {"up"}, {"down"}, {"ps"}, {"logs"}, {"exec"}, {"stop"},
        {"start"}, {"restart"}, {"version"}, {"image"}, {"image", "import"}, {"image", "ls"},
        {"image", "rm"}, {"plan"}, {"port"}, {"events"}, {"config"}, {"daemon"},
        {"daemon", "stop"}, {"build"}}) {
    cmd.push_back("--help");
    auto r = env.stack(cmd);
    CHECK_MESSAGE(r.code == 0, cmd[0]);
    CHECK(r.out.find("Usage:") != std::string::npos);
  }
  CHECK(env.stack({"version"}).out.rfind("stack version ", 0) == 0);
}

TEST_CASE("bad stack files are refused with file:line:column and change nothing") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("bad");
  env.uses(p);
  struct Case {
    std::string yaml, expected;
  } cases[] = {
      {"name: " + p + "\nservices:\n  web:\n    image: [busybox\n", "stack.yaml:5:1: "},
      {"name: " + p + "\nservices:\n  web:\n    image: nope:1.0\n    pull_policy: never\n"
       "    command: [sleep, '1']\n",
       "stack.yaml:4:12: service \"web\": image \"nope:1.0\" is not in the image store"},
      {"name: " + p + "\nservices:\n  web:\n    image: busybox\n    mem_limit: lots\n",
       "stack.yaml:5:16: services.web.mem_limit: expected a byte size"},
  };
  for (const auto& c : cases) {
    env.write(c.yaml);
    auto r = env.stack({"up", "-d"});
    CHECK(r.code == 1);
    CHECK_MESSAGE(r.err.find(c.expected) != std::string::npos, r.err);
    CHECK(env.leftovers(p).empty());
  }
}

TEST_CASE("two instances with their own roots run one project name side by side") {
  STACK_REQUIRE_ROOT();
  StackEnv one, two;
  auto p = unique_project("twin");
  one.uses(p);
  two.uses(p);
  std::string yaml = "name: " + p + "\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n";
  one.write(yaml);
  two.write(yaml);
  REQUIRE(one.stack({"up", "-d"}).code == 0);
  REQUIRE(two.stack({"up", "-d"}).code == 0);
  int pid_one = one.container(p, p + "-s-1")["pid"], pid_two = two.container(p, p + "-s-1")["pid"];
  CHECK(pid_one != pid_two);
  REQUIRE(one.stack({"down"}).code == 0);
  CHECK(one.ps(p).empty());
  auto c = two.container(p, p + "-s-1");
  CHECK(c["state"] == "running");
  CHECK(c["pid"] == pid_two);
  CHECK(two.stack({"exec", "s", "true"}).code == 0);
  REQUIRE(two.stack({"down"}).code == 0);
  CHECK(two.leftovers(p).empty());
}

TEST_CASE("usage errors exit 2 with the parser's message, never its internal codes") {
  // No daemon and no root needed: these end while the arguments are read.
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"ps", "--bogus"}, "The following argument was not expected: --bogus"},
      {{"exec"}, "service is required"},
      {{"exec", "s"}, "needs a COMMAND after the service"},
      {{"port", "s"}, "private_port is required"},
      {{"nosuchcommand"}, "A subcommand is required"},
      {{"ps", "--format", "xml"}, "xml not in {table,json}"},
      {{"up", "--wait-timeout", "soon"}, "soon"},
      {{}, "A subcommand is required"},
      {{"image"}, "A subcommand is required"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {std::string(STACK_BUILD_DIR) + "/stack"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run(argv);
    CAPTURE(r.err);
    CHECK_MESSAGE(r.code == 2, (c.args.empty() ? "(none)" : c.args[0]));
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK(r.out.empty());
  }
  // --help is not an error.
  CHECK(run({std::string(STACK_BUILD_DIR) + "/stack", "exec", "--help"}).code == 0);
}

TEST_CASE("a global flag after the subcommand takes one value, exec's command keeps its own") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("argv");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  web:\n    image: busybox\n    command: [sleep, '300']\n"
            "    stop_grace_period: 1s\n  db:\n    image: busybox\n    command: [sleep, '300']\n",
            "app.yaml");
  REQUIRE(env.stack({"-f", "app.yaml", "up", "-d"}).code == 0);
  int web = env.container(p, p + "-web-1")["pid"], db = env.container(p, p + "-db-1")["pid"];
  // issue 15: `restart -f stack.yaml web` said "file not found: web".
  auto restart = env.stack({"restart", "-f", "app.yaml", "web"});
  CHECK_MESSAGE(restart.code == 0, restart.err);
  CHECK(env.container(p, p + "-web-1")["pid"] != web);
  CHECK(env.container(p, p + "-db-1")["pid"] == db);
  // issue 15: `exec -f stack.yaml web sh -c 'echo hi'` said "service is required" (exit 106).
  auto hi = env.stack({"exec", "-f", "app.yaml", "web", "sh", "-c", "echo hi"});
  CHECK_MESSAGE(hi.code == 0, hi.err);
  CHECK(hi.out == "hi\n");
  // After the service, everything is the command's, stack's own flags included.
  CHECK(env.stack({"-f", "app.yaml", "exec", "-e", "A=1", "web", "echo", "-f", "x", "-p", "y",
                   "--root", "z", "-e", "B=2", "--help"})
            .out == "-f x -p y --root z -e B=2 --help\n");
  CHECK(env.stack({"exec", "-Te", "A=1", "-f", "app.yaml", "web", "sh", "-c", "echo $A"}).out ==
        "1\n");
  CHECK(env.stack({"exec", "-f", "app.yaml", "--", "web", "true"}).code == 0);
  // Repeated -f still merges files.
  env.write("services:\n  web:\n    environment: {FROM: two}\n", "two.yaml");
  auto plan = env.stack({"plan", "-f", "app.yaml", "-f", "two.yaml"});
  CHECK_MESSAGE(plan.out.find("create " + p + "-web-1 (environment changed)") != std::string::npos,
                plan.err);
}

TEST_CASE("up: the daemon loads the files once and its warnings reach the user once") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("warn");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  s:\n    image: busybox\n"
            "    command: [sleep, '300']\n    environment: {X: \"${STACK_TEST_UNSET_VAR}\"}\n",
            "stack.yaml");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  const std::string warning = "variable \"STACK_TEST_UNSET_VAR\" is not set";
  auto first = up.err.find(warning);
  CHECK_MESSAGE(first != std::string::npos, up.err);
  CHECK_MESSAGE(up.err.find(warning, first + 1) == std::string::npos, up.err);
  // The daemon names the project the files define: the no-op message carries it.
  auto again = env.stack({"up", "-d"});
  CHECK_MESSAGE(again.err.find("already up to date") != std::string::npos, again.err);
  CHECK_MESSAGE(again.err.find(" of " + p) != std::string::npos, again.err);
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("up SERVICE: the daemon keeps up what was asked for, and reads only its env files") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("select");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n"
            "  db:\n    image: busybox\n    command: [sleep, '300']\n"
            "  web:\n    image: busybox\n    command: [sleep, '300']\n    depends_on: [db]\n"
            "  admin:\n    image: busybox\n    command: [sleep, '300']\n"
            "    env_file: admin.env\n");  // does not exist
  env.start_daemon({"--resync", "0.1"});
  // compose reads only the env files of the services it runs.
  auto up = env.stack({"up", "-d", "web"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.container(p, p + "-db-1")["state"] == "running");
  CHECK(env.container(p, p + "-web-1")["state"] == "running");
  // Resync passes keep web and db up and do not bring up admin (they did: every service).
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  auto names = [&] {
    std::set<std::string> out;
    for (const auto& c : env.ps(p)) out.insert(c["name"].get<std::string>());
    return out;
  };
  CHECK(names() == std::set<std::string>{p + "-db-1", p + "-web-1"});
  // admin itself needs its env file, and says which.
  auto admin = env.stack({"up", "-d", "admin"});
  CHECK(admin.code == 1);
  bool named = admin.err.find("stack.yaml:13:15: services.admin.env_file: open ") !=
                   std::string::npos &&
               admin.err.find("admin.env: No such file") != std::string::npos;
  CHECK_MESSAGE(named, admin.err);
  CHECK(env.stack({"config", "-q"}).code == 1);  // config reads every service, as compose does
  env.write("X=1\n", "admin.env");
  REQUIRE(env.stack({"up", "-d", "admin"}).code == 0);
  REQUIRE(env.wait_reconciles(env.reconciles(), 2));
  CHECK(names() == std::set<std::string>{p + "-db-1", p + "-web-1", p + "-admin-1"});
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("a missing image is pulled by up, and the tests' registries config keeps that on this machine") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("offline");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  s:\n    image: example.invalid/nothing:1\n", "stack.yaml");
  auto plan = env.stack({"plan"});
  CHECK_MESSAGE(plan.out.find("+ pull example.invalid/nothing:1 (missing)") != std::string::npos,
                (plan.out + plan.err));
  auto up = env.stack({"up", "-d"});
  CHECK(up.code == 1);
  CHECK_MESSAGE(up.err.find("registry example.invalid is blocked by") != std::string::npos, up.err);
  CHECK(env.ps(p).empty());
  CHECK(env.leftovers(p).empty());
}
