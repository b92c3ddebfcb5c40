// `tty: true`, `stdin_open: true` and `stack attach` (issues 13 and 15): the service's own
// terminal (its /dev/pts, the size of the attaching terminal, the prompt shown before any
// newline), detach keys that leave it running, its output in the logs, a daemon killed with -9
// that leaves the terminal alive for the next attach, a stdin pipe without a tty, and the exit
// code passed on. Root; each test has its own instance.
#include <doctest/doctest.h>

#include "e2e/interactive.h"
#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

std::string up_shell(StackEnv& env, const std::string& base, const std::string& extra = "") {
  auto p = unique_project(base);
  env.uses(p);
  env.write("name: " + p +
            "\nservices:\n  sh:\n    image: busybox\n    tty: true\n    stdin_open: true\n"
            "    command: [sh]\n    stop_grace_period: 1s\n" + extra);
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  return p;
}

int daemon_pid(StackEnv& env) {
  env.stack({"ps", "-p", "none"});  // makes sure one runs
  auto out = run({"/bin/sh", "-c",
                  "pgrep -f -- 'stackd --root .* --run-root " +
                      (env.root().parent_path() / "run").string() + "( |$)'"});
  return std::atoi(out.out.c_str());
}

}  // namespace

TEST_CASE("attach to a tty service: its terminal, the window size, detach keys") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = up_shell(env, "ttyattach");
  auto t = on_terminal(env, "attach", "stty cols 111 rows 33; $S attach sh; echo attach=$?\n");
  t.send("\r");
  REQUIRE_MESSAGE(t.wait_for("# "), t.output());  // the prompt, with no newline after it
  t.send("tty; stty size\r");
  CHECK_MESSAGE(t.wait_for("/dev/pts/"), t.output());
  CHECK_MESSAGE(t.wait_for("33 111"), t.output());
  t.send("\x10\x11");  // Ctrl-P Ctrl-Q
  CHECK_MESSAGE(t.wait_for("attach=0"), t.output());
  CHECK(env.container(p, p + "-sh-1")["state"] == "running");
  // What the terminal showed is in the logs.
  CHECK(env.stack({"logs", "sh"}).out.find("/dev/pts/") != std::string::npos);
}

TEST_CASE("a tty service keeps its terminal across a daemon killed with -9") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = up_shell(env, "ttyrestart");
  int pid = env.container(p, p + "-sh-1")["pid"];
  int old_daemon = daemon_pid(env);
  REQUIRE(old_daemon > 0);
  REQUIRE(::kill(old_daemon, SIGKILL) == 0);
  // The next command starts a new daemon; the shell never lost its terminal.
  auto t = on_terminal(env, "again", "$S attach sh; echo attach=$?\n");
  t.send("\r");
  REQUIRE_MESSAGE(t.wait_for("# "), t.output());
  t.send("echo still-$((40+2))\r");
  CHECK_MESSAGE(t.wait_for("still-42"), t.output());
  CHECK(env.container(p, p + "-sh-1")["pid"] == pid);  // the same shell, adopted
  t.send("exit 7\r");  // the service's exit code is attach's
  CHECK_MESSAGE(t.wait_for("attach=7"), t.output());
  CHECK(env.container(p, p + "-sh-1")["exit_code"] == 7);
}

TEST_CASE("stdin_open without a tty: attach writes to the service's stdin") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("stdinopen");
  env.uses(p);
  env.write("name: " + p +
            "\nservices:\n  r:\n    image: busybox\n    stdin_open: true\n"
            "    command: [sh, -c, 'while read l; do echo got:$$l; done; echo eof']\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  {
    Interactive a({std::string(STACK_BUILD_DIR) + "/stack", "--root", env.root().string(),
                   "--run-root", (env.root().parent_path() / "run").string(), "-p", p, "attach",
                   "r"});
    // Output starts at the attach: send until the reply comes (the first line may be sent
    // before the daemon follows the log).
    bool got = false;
    for (int i = 0; i < 20 && !got; i++) {
      a.send("hello\n");
      got = a.wait_for("got:hello", 500ms);
    }
    CHECK_MESSAGE(got, a.output());
  }
  // The attach left (its stdin never closed the service's): the service still reads.
  auto c = env.container(p, p + "-r-1");
  CHECK(c["state"] == "running");
  CHECK(env.stack({"logs", "r"}).out.find("eof") == std::string::npos);
}

TEST_CASE("attach says what is wrong: no such service, a bad --detach-keys") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = up_shell(env, "ttyerr");
  auto none = env.stack({"attach", "nosuch"});
  CHECK(none.code != 0);
  CHECK_MESSAGE(none.err.find("nosuch") != std::string::npos, none.err);
  auto keys = env.stack({"attach", "--detach-keys", "ctrl-!!", "sh"});
  CHECK(keys.code == 2);
  CHECK_MESSAGE(keys.err.find("--detach-keys") != std::string::npos, keys.err);
}
