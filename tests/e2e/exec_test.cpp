// `stack exec` through the daemon's API (issue 11, issue 15): exit codes, stdin, environment,
// user and working directory; a pty (under script(1), so the CLI has a terminal): the
// container's /dev/pts, the size set outside, Ctrl-C as a byte that becomes SIGINT inside,
// SIGWINCH, the local terminal restored; members of group stack exec, others are refused at
// the socket; -d; a stopped container is a clear error. Root; each test has its own instance.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "e2e/stack_env.h"
#include "e2e/interactive.h"
#include "e2e/stack_group.h"

using namespace stack::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string up_sleeper(StackEnv& env, const std::string& base) {
  auto p = unique_project(base);
  env.uses(p);
  env.write("name: " + p +
            "\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n"
            "    environment: {MODE: one}\n    stop_grace_period: 1s\n");
  auto r = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  return p;
}

}  // namespace

TEST_CASE("exec as root: exit codes, stdin, stdout and stderr apart, env, user and workdir") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  up_sleeper(env, "xbasic");
  CHECK(env.stack({"exec", "s", "sh", "-c", "exit 7"}).code == 7);
  CHECK(env.stack({"exec", "s", "sh", "-c", "kill -TERM $$"}).code == 128 + SIGTERM);
  auto cat = run({std::string(STACK_BUILD_DIR) + "/stack", "--root", env.root().string(),
                  "--run-root", (env.root().parent_path() / "run").string(), "-f",
                  (env.project_dir() / "stack.yaml").string(), "exec", "-T", "s", "cat"},
                 {}, "hi\n");
  CHECK(cat.code == 0);
  CHECK(cat.out == "hi\n");
  // More than any pipe or socket buffer holds, both ways at once: nothing lost, nothing stuck.
  // (Files, not this process's pipes: it would write all of stdin before reading the output.)
  std::string big;
  for (int i = 0; big.size() < (3u << 20); i++) big += std::to_string(i) + "\n";
  write_text(env.project_dir() / "big.in", big);
  auto wc = run({"/bin/sh", "-c",
                 "cd " + env.project_dir().string() + " && " + stack_words(env) +
                     " exec -T s sh -c \"cat; head -c 2000000 /dev/zero | tr '\\\\0' y\" <big.in "
                     ">big.out"});
  CHECK(wc.code == 0);
  auto got = read_text(env.project_dir() / "big.out");
  CHECK(got.size() == big.size() + 2000000);
  CHECK(got.compare(0, big.size(), big) == 0);
  CHECK(got.find_first_not_of('y', big.size()) == std::string::npos);
  auto split = env.stack({"exec", "s", "sh", "-c", "echo out; echo err >&2"});
  CHECK(split.out == "out\n");
  CHECK(split.err == "err\n");
  // -e adds to and overrides the service's environment; `-e KEY` takes this shell's value.
  auto vars = env.stack({"exec", "-e", "MODE=two", "-e", "EXTRA=a b", "-e", "FROM_SHELL", "s", "sh",
                         "-c", "echo \"$MODE|$EXTRA|$FROM_SHELL\"; env | grep -c ^MODE="},
                        {"FROM_SHELL=here"});
  CHECK(vars.out == "two|a b|here\n1\n");
  CHECK(env.stack({"exec", "-u", "nobody", "-w", "/tmp", "s", "sh", "-c", "echo $(id -u) $(pwd)"})
            .out == "65534 /tmp\n");
  CHECK(env.stack({"exec", "--user", "1234:5678", "s", "id"}).out.find("uid=1234 gid=5678") !=
        std::string::npos);
  // A command that cannot start: 126, as shells say, and why.
  auto missing = env.stack({"exec", "s", "no-such-command"});
  CHECK(missing.code == 126);
  CHECK(missing.err.find("no-such-command") != std::string::npos);
  auto baduser = env.stack({"exec", "-u", "nosuchuser", "s", "true"});
  CHECK(baduser.code == 126);
  CHECK(baduser.err.find("nosuchuser") != std::string::npos);
  CHECK(env.stack({"exec", "-w", "relative", "s", "true"}).err.find("must be absolute") !=
        std::string::npos);
}

TEST_CASE("exec with a pty: the container's terminal, the size set outside, Ctrl-C inside") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  up_sleeper(env, "xtty");
  {
    auto t = on_terminal(env, "tty", "$S exec s tty; echo code=$?\n");
    CHECK(t.wait() == 0);
    CHECK_MESSAGE(t.output().find("/dev/pts/0\r\ncode=0") != std::string::npos, t.output());
  }
  {
    auto t = on_terminal(env, "size", "stty cols 123 rows 45; $S exec s stty size\n");
    CHECK(t.wait() == 0);
    CHECK_MESSAGE(t.output().find("45 123\r\n") != std::string::npos, t.output());
  }
  {
    // Without -T but with stdin not a terminal: no pty (compose's rule).
    auto r = env.stack({"exec", "s", "sh", "-c", "tty; echo \"$?\""});
    CHECK(r.out == "not a tty\n1\n");
  }
  {
    // Ctrl-C is the byte 0x03 on the local terminal, raw: the container's terminal makes it
    // SIGINT for the command, whose exit code comes back. The local terminal is as before.
    auto t = on_terminal(env, "ctrlc",
                         "stty -g\n"
                         "$S exec s sh -c 'trap \"echo got-int; exit 7\" INT; echo ready; "
                         "while :; do sleep 0.1; done'\n"
                         "echo code=$?\nstty -g\n");
    REQUIRE_MESSAGE(t.wait_for("ready"), t.output());
    t.send("\x03");
    CHECK(t.wait() == 0);
    CHECK_MESSAGE(t.output().find("got-int\r\ncode=7\r\n") != std::string::npos, t.output());
    auto first = t.output().substr(0, t.output().find("\r\n"));
    auto last = t.output().substr(t.output().rfind("code=7\r\n") + 8);
    CHECK(last == first + "\r\n");
  }
}

TEST_CASE("exec with a pty: SIGWINCH resizes, the terminal is restored when the CLI is killed") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  up_sleeper(env, "xwinch");
  {
    // The CLI in the background on the same terminal (job control is off in sh): stty resizes
    // that terminal, the kernel sends the CLI SIGWINCH, the container's terminal follows. The
    // script waits for the command through marker files (a second exec, without a terminal):
    // the terminal's input is the CLI's while it runs.
    auto t = on_terminal(env, "winch",
                         "stty cols 80 rows 24\n"
                         "$S exec s sh -c 'trap \"stty size; touch /tmp/resized\" WINCH; "
                         "touch /tmp/ready; while :; do sleep 0.1; done' </dev/tty &\n"
                         "until $S exec -T s test -e /tmp/ready </dev/null; do sleep 0.05; done\n"
                         "stty cols 100 rows 30\n"
                         "until $S exec -T s test -e /tmp/resized </dev/null; do sleep 0.05; done\n"
                         "kill $!\nwait\n");
    CHECK(t.wait() == 0);
    CHECK_MESSAGE(t.output().find("30 100") != std::string::npos, t.output());
  }
  {
    // SIGTERM to the CLI in raw mode: the terminal is given back before it dies of it.
    auto t = on_terminal(env, "term",
                         "before=$(stty -g)\n"
                         "$S exec s sleep 60 </dev/tty &\n"
                         "until [ \"$(stty -g)\" != \"$before\" ]; do sleep 0.02; done\n"
                         "echo raw\nkill -TERM $!\nwait $!\necho code=$?\n"
                         "[ \"$(stty -g)\" = \"$before\" ] && echo restored\n");
    CHECK(t.wait() == 0);
    CHECK_MESSAGE(t.output().find("code=143\r\nrestored\r\n") != std::string::npos, t.output());
  }
}

TEST_CASE("exec -d returns at once, the command runs on and is reaped by the daemon") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  up_sleeper(env, "xdetach");
  auto r =
      env.stack({"exec", "-d", "s", "sh", "-c", "touch /tmp/started; sleep 0.3; touch /tmp/done"});
  CHECK(r.code == 0);
  CHECK(r.out.empty());
  auto daemon = env.api_get("/v1/version")["pid"].get<int>();
  // Waits for the file, then for the daemon to have no zombie child left.
  bool done = false;
  for (int i = 0; i < 200 && !done; i++) {
    done = env.stack({"exec", "s", "test", "-e", "/tmp/done"}).code == 0;
    if (!done) std::this_thread::sleep_for(20ms);
  }
  CHECK(done);
  auto zombies = [daemon] {
    int n = 0;
    for (auto& task : fs::directory_iterator("/proc/" + std::to_string(daemon) + "/task")) {
      std::ifstream children(task.path() / "children");
      for (int pid; children >> pid;) {
        auto stat = read_text("/proc/" + std::to_string(pid) + "/stat");
        auto paren = stat.rfind(')');
        if (paren != std::string::npos && stat[paren + 2] == 'Z') n++;
      }
    }
    return n;
  };
  int left = zombies();
  for (int i = 0; i < 100 && left > 0; i++) {
    std::this_thread::sleep_for(20ms);
    left = zombies();
  }
  CHECK(left == 0);
}

TEST_CASE("exec in a stopped container or a service that is not up is a clear error") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = up_sleeper(env, "xstopped");
  REQUIRE(env.stack({"stop", "s"}).code == 0);
  auto r = env.stack({"exec", "s", "true"});
  CHECK(r.code == 1);
  CHECK_MESSAGE(r.err.find("stack: container " + p + "-s-1 is not running (exited") == 0, r.err);
  auto none = env.stack({"exec", "nosuch", "true"});
  CHECK(none.code == 1);
  CHECK(none.err.find("no container " + p + "-nosuch-1") != std::string::npos);
  auto replica = env.stack({"exec", "--index", "2", "s", "true"});
  CHECK(replica.code == 1);
  CHECK(replica.err.find(p + "-s-2") != std::string::npos);
}

TEST_CASE("exec by a member of group stack works, a user outside it is refused at the socket") {
  STACK_REQUIRE_ROOT();
  StackGroupUsers users;
  StackEnv env;
  auto p = up_sleeper(env, "xgroup");
  StackGroupUsers::open_to_users(env);
  auto id = StackGroupUsers::stack_as(env, users.member(), p, {"exec", "s", "id", "-u"});
  CHECK_MESSAGE(id.code == 0, id.err);
  CHECK(id.out == "0\n");
  auto piped = StackGroupUsers::stack_as(
      env, users.member(), p, {"exec", "-T", "s", "sh", "-c", "cat > /tmp/by-member; exit 3"},
      "from a member\n");
  CHECK(piped.code == 3);
  CHECK(env.stack({"exec", "s", "cat", "/tmp/by-member"}).out == "from a member\n");
  CHECK(StackGroupUsers::stack_as(env, users.member(), p, {"ps", "--format", "json"}).code == 0);

  auto refused = StackGroupUsers::stack_as(env, users.outsider(), p,
                                           {"exec", "s", "touch", "/tmp/by-outsider"});
  CHECK(refused.code == 1);
  CHECK_MESSAGE(refused.err.find("permission denied on ") != std::string::npos, refused.err);
  CHECK(refused.err.find("group stack") != std::string::npos);
  CHECK(env.stack({"exec", "s", "test", "-e", "/tmp/by-outsider"}).code == 1);
  // Nor does the outsider start a daemon of its own.
  CHECK(StackGroupUsers::stack_as(env, users.outsider(), p, {"ps"}).code == 1);
}

TEST_CASE("an exec whose client is killed leaves nothing: stdin ends, the terminal hangs up") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  up_sleeper(env, "xgone");
  auto in_container = [&](const std::string& what) {
    return env.stack({"exec", "s", "ps", "-o", "args"}).out.find(what) != std::string::npos;
  };
  auto gone = [&](const std::string& what) {
    for (int i = 0; i < 250; i++) {
      if (!in_container(what)) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  {
    // Without a terminal: the command's stdin ends when the client is gone.
    Interactive cli({std::string(STACK_BUILD_DIR) + "/stack", "--root", env.root().string(),
                     "--run-root", (env.root().parent_path() / "run").string(), "-f",
                     (env.project_dir() / "stack.yaml").string(), "exec", "-T", "s", "sh", "-c",
                     "echo ready; exec cat"});
    REQUIRE(cli.wait_for("ready"));
    REQUIRE(in_container("cat"));
    cli.kill_now();
    CHECK(gone("cat"));
  }
  {
    // With one: the container's terminal hangs up, SIGHUP ends the command.
    auto t = on_terminal(env, "hup", "$S exec s sh -c 'echo ready; exec sleep 1000'\n");
    REQUIRE(t.wait_for("ready"));
    REQUIRE(in_container("sleep 1000"));
    auto cli =
        run({"/usr/bin/pgrep", "-f", "--", "stack --root " + env.root().string() + ".* exec s sh"});
    REQUIRE(cli.code == 0);
    for (std::istringstream pids(cli.out); pids;) {
      int pid = 0;
      if (pids >> pid) ::kill(pid, SIGKILL);
    }
    CHECK(gone("sleep 1000"));
  }
}
