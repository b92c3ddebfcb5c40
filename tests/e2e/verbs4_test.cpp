// Compose verbs, part 4 (issue 15's remainder): `run -d --rm` (the supervisor removes the
// one-off container once it has exited), `attach --sig-proxy`, and `run` with a terminal
// (-t, or this stdin one; -T; without one this stdin and its end), `cp -L`. Root; each test has its own instance.
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <fstream>
#include <thread>

#include "e2e/interactive.h"
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

TEST_CASE("attach --sig-proxy passes a signal on to the container, --sig-proxy=false leaves it") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("sigproxy");
  env.uses(p);
  env.write("services:\n  app:\n    image: busybox\n    stop_grace_period: 1s\n"
            "    command: [sh, -c, 'trap \"echo got-int; exit 7\" INT; "
            "while true; do echo tick; sleep 0.2; done']\n");
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  auto attach = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {std::string(STACK_BUILD_DIR) + "/stack", "--root",
                                     env.root().string(), "--run-root",
                                     (env.root().parent_path() / "run").string(), "-p", p,
                                     "attach"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("app");
    return std::make_unique<Interactive>(argv);
  };
  {
    // Default: SIGINT to the CLI is the container's; its exit code is attach's.
    auto a = attach({});
    REQUIRE_MESSAGE(a->wait_for("tick"), a->output());  // attached: the handler is in place
    a->signal(SIGINT);
    CHECK_MESSAGE(a->wait_for("got-int"), a->output());
    CHECK(a->wait() == 7);
    auto c = env.wait_for(p, p + "-app-1", [](const auto& c) { return c["state"] == "exited"; });
    CHECK(c["state"] == "exited");
    CHECK(c["exit_code"] == 7);
  }
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  auto c = env.wait_for(p, p + "-app-1", [](const auto& c) { return c["state"] == "running"; });
  REQUIRE(c["state"] == "running");
  {
    // --sig-proxy=false: the signal ends attach only; the service goes on.
    auto a = attach({"--sig-proxy=false"});
    REQUIRE_MESSAGE(a->wait_for("tick"), a->output());
    a->signal(SIGINT);
    CHECK(a->wait() == 128 + SIGINT);
    CHECK(a->output().find("got-int") == std::string::npos);
    CHECK(env.container(p, p + "-app-1")["state"] == "running");
    CHECK(env.container(p, p + "-app-1")["pid"] == c["pid"]);
    auto logs = env.stack({"-p", p, "logs", "app"}).out;  // one got-int only: the first run's
    CHECK(logs.find("got-int") == logs.rfind("got-int"));
  }
  REQUIRE(env.stack({"-p", p, "down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("run on a terminal gets a tty as compose gives it, without one this stdin and its end reach the service") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("runtty");
  env.uses(p);
  env.write("services:\n  app:\n    image: busybox\n    command: [sleep, '300']\n");
  // This terminal is a terminal: so is the container's, and its exit code is run's.
  auto t = on_terminal(env, "runtty",
                       "$S -p " + p + " run --rm app sh -c 'tty; exit 3'; echo run=$?\n"
                       "$S -p " + p + " run -T --rm app sh -c 'tty; exit 4'; echo run=$?\n"
                       "$S -p " + p + " run --rm app sh; echo run=$?\n");
  CHECK_MESSAGE(t.wait_for("/dev/pts/"), t.output());
  CHECK_MESSAGE(t.wait_for("run=3"), t.output());
  CHECK_MESSAGE(t.wait_for("not a tty"), t.output());  // -T
  CHECK_MESSAGE(t.wait_for("run=4"), t.output());
  // An interactive shell: a line typed, its exit.
  t.send("echo typed-$((40+2))\r");
  CHECK_MESSAGE(t.wait_for("typed-42"), t.output());
  t.send("exit 5\r");
  CHECK_MESSAGE(t.wait_for("run=5"), t.output());
  CHECK(t.wait() == 0);
  // Without a terminal, this stdin is the service's (-i is compose's default), and its end is
  // the service's end of input: `cat` ends, run passes its code on.
  auto shell = [&](const std::string& line) {
    return run({"/bin/sh", "-c",
                "cd " + env.project_dir().string() + " && " + line});
  };
  auto cat = shell("echo hi | " + stack_words(env) + " -p " + p + " run -T --rm app cat");
  CHECK_MESSAGE(cat.code == 0, cat.err);
  CHECK(cat.out == "hi\n");
  auto cat_i = shell("printf 'a\\nb\\n' | " + stack_words(env) + " -p " + p +
                     " run -T -i --rm app sh -c 'wc -l; exit 6'");
  CHECK_MESSAGE(cat_i.code == 6, cat_i.err);
  CHECK(cat_i.out.find("2") != std::string::npos);
  auto piped = shell("echo one | " + stack_words(env) + " -p " + p +
                     " run --rm app sh -c 'read l; echo got:$l'");
  CHECK(piped.out == "got:one\n");
  // A larger input than a pipe holds arrives whole before the end.
  auto big = shell("head -c 300000 /dev/zero | " + stack_words(env) + " -p " + p +
                   " run -T --rm app wc -c");
  CHECK_MESSAGE(big.code == 0, big.err);
  CHECK(big.out.find("300000") != std::string::npos);
  // exec -T -i: the same end of input.
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  auto exec_cat = shell("echo via-exec | " + stack_words(env) + " -p " + p + " exec -T app cat");
  CHECK_MESSAGE(exec_cat.code == 0, exec_cat.err);
  CHECK(exec_cat.out == "via-exec\n");
  CHECK(env.stack({"-p", p, "run", "-t", "-T", "app", "true"}).code == 2);
  CHECK(env.ps(p).size() == 1);  // --rm left nothing: the service's own container only
  // down names the network as compose does: its kind, its name, then what happened, after the
  // containers.
  auto down = env.stack({"-p", p, "down", "-t", "1"});
  REQUIRE(down.code == 0);
  size_t net = down.err.find("Network " + p + "_default ");
  CHECK_MESSAGE(net != std::string::npos, down.err);
  CHECK(down.err.find("Removed", net) != std::string::npos);
  CHECK(down.err.find("Network removed") == std::string::npos);
  CHECK(down.err.find("Container " + p + "-app-1") < net);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("cp -L copies what a symlink names, looked up inside the container's root") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("cpfollow");
  env.uses(p);
  // A host file the container's links point at by its host path: never what -L reaches.
  auto host = env.project_dir() / "host-only.txt";
  write_text(host, "host-secret\n");
  env.write("services:\n  app:\n    image: busybox\n    stop_grace_period: 1s\n"
            "    command: [sh, -c, 'echo in-container > /data.txt && ln -s /data.txt /link && "
            "ln -s link /link2 && ln -s ../../../../../../.." + host.string() + " /escape && "
            "touch /ready && sleep 300']\n");
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  auto dir = env.project_dir();
  REQUIRE(eventually([&] {
    return env.stack({"-p", p, "exec", "-T", "app", "test", "-e", "/ready"}).code == 0;
  }));
  // Without -L the link itself; with it (two hops) the file, under the link's name.
  REQUIRE(env.stack({"-p", p, "cp", "app:/link2", (dir / "plain").string()}).code == 0);
  CHECK(std::filesystem::is_symlink(dir / "plain"));
  auto r = env.stack({"-p", p, "cp", "-L", "app:/link2", (dir / "followed").string()});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(!std::filesystem::is_symlink(dir / "followed"));
  CHECK(read_text(dir / "followed") == "in-container\n");
  std::filesystem::create_directories(dir / "into");
  REQUIRE(env.stack({"-p", p, "cp", "-L", "app:/link", (dir / "into").string()}).code == 0);
  CHECK(read_text(dir / "into" / "link") == "in-container\n");
  // A link to a host path by '..': resolved in the container's root, where it does not exist.
  r = env.stack({"-p", p, "cp", "-L", "app:/escape", (dir / "escaped").string()});
  CHECK(r.code != 0);
  CHECK(!std::filesystem::exists(dir / "escaped"));
  // Into the container: the host link's target, under the link's name.
  std::filesystem::create_symlink(host, dir / "hostlink");
  r = env.stack({"-p", p, "cp", "-L", (dir / "hostlink").string(), "app:/copied"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  auto cat = env.stack({"-p", p, "exec", "-T", "app", "sh", "-c", "test -L /copied || cat /copied"});
  CHECK(cat.out == "host-secret\n");
  REQUIRE(env.stack({"-p", p, "down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
