// The seccomp filter of a container, through the stack binary: Docker's default profile for the
// service and exec'd processes, what it refuses from inside, seccomp=unconfined, a profile file,
// and the filter installed with no_new_privs off. Root only; /probe is tests/security/probe.c.
#include <doctest/doctest.h>

#include "e2e/stack_env.h"
#include "security/engine_fixture.h"

using namespace stack::test;

namespace {

// PROJECT with one service `s` (with EXTRA fields) that saves its own status, and the probe.
RunResult up(StackEnv& env, const std::string& project, const std::string& extra = "") {
  env.uses(project);
  env.write("name: " + project + R"(
services:
  s:
    image: busybox
    command: [sh, -c, "cat /proc/self/status > /tmp/status; exec sleep 300"]
    volumes: [")" +
            probe_dir().string() + R"(:/probe:ro"]
)" + extra);
  return env.stack({"up", "-d", "-p", project});
}

std::string service_status(StackEnv& env, const std::string& project) {
  return env
      .stack({"exec", "-p", project, "s", "sh", "-c",
              "while [ ! -s /tmp/status ]; do sleep 0.05; done; cat /tmp/status"})
      .out;
}

RunResult in(StackEnv& env, const std::string& project, std::vector<std::string> argv) {
  std::vector<std::string> args = {"exec", "-p", project, "s"};
  args.insert(args.end(), argv.begin(), argv.end());
  return env.stack(args);
}

}  // namespace

TEST_CASE("the service and exec'd processes run under Docker's default seccomp profile" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("seccdef");
  auto u = up(env, p);
  REQUIRE_MESSAGE(u.code == 0, u.err);
  CHECK(status_field(service_status(env, p), "Seccomp") == "2");
  CHECK(status_field(in(env, p, {"cat", "/proc/self/status"}).out, "Seccomp") == "2");

  // What the profile refuses, as an attacker would try it.
  auto userns = in(env, p, {"unshare", "-U", "true"});
  CHECK(userns.code != 0);
  CHECK(userns.err.find("Operation not permitted") != std::string::npos);
  auto mountns = in(env, p, {"unshare", "-m", "true"});
  CHECK(mountns.code != 0);
  CHECK(in(env, p, {"unshare", "-U", "-r", "-m", "sh", "-c", "mount -t tmpfs t /tmp"}).code != 0);
  CHECK(in(env, p, {"/probe/probe", "unshare", "user"}).out == "errno=1 Operation not permitted\n");
  CHECK(in(env, p, {"/probe/probe", "keyctl"}).out == "errno=1 Operation not permitted\n");
  CHECK(in(env, p, {"/probe/probe", "mount", "/tmp"}).out == "errno=1 Operation not permitted\n");
  CHECK(in(env, p, {"/probe/probe", "settime"}).out == "errno=1 Operation not permitted\n");
  // busybox date -s says so and still exits 0: the message is what counts.
  auto date = in(env, p, {"date", "-s", "2030-01-01 00:00:00"});
  CHECK(date.err.find("can't set date") != std::string::npos);
  // ...and what it allows: an ordinary program, a fork.
  CHECK(in(env, p, {"sh", "-c", "echo ok | cat"}).out == "ok\n");
  CHECK(env.stack({"down", "-p", p}).code == 0);
}

TEST_CASE("seccomp=unconfined runs without a filter" * doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("seccoff");
  auto u = up(env, p, "    security_opt: [seccomp=unconfined]\n");
  REQUIRE_MESSAGE(u.code == 0, u.err);
  CHECK(status_field(service_status(env, p), "Seccomp") == "0");
  CHECK(status_field(in(env, p, {"cat", "/proc/self/status"}).out, "Seccomp") == "0");
  // Without the filter, only capabilities stand in the way: an unprivileged user namespace
  // works, as on the host.
  CHECK(in(env, p, {"/probe/probe", "unshare", "user"}).out == "ok\n");
  CHECK(env.stack({"down", "-p", p}).code == 0);
}

TEST_CASE("a seccomp profile file is honoured, with no_new_privs off too" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  // Allows everything but mkdir/mkdirat, refused with EACCES.
  write_text(env.project_dir() / "profile.json", R"({
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
})");
  auto p = unique_project("seccfile");
  auto u = up(env, p, "    security_opt: [\"seccomp=profile.json\"]\n");
  REQUIRE_MESSAGE(u.code == 0, u.err);
  CHECK(status_field(service_status(env, p), "Seccomp") == "2");
  auto mk = in(env, p, {"mkdir", "/tmp/d"});
  CHECK(mk.code != 0);
  CHECK(mk.err.find("Permission denied") != std::string::npos);
  CHECK(in(env, p, {"touch", "/tmp/f"}).code == 0);
  CHECK(env.stack({"down", "-p", p}).code == 0);

  // no_new_privs off: the filter is installed while the process still holds CAP_SYS_ADMIN.
  auto q = unique_project("seccnnp");
  u = up(env, q, "    security_opt: [\"no-new-privileges:false\"]\n");
  REQUIRE_MESSAGE(u.code == 0, u.err);
  auto status = service_status(env, q);
  CHECK(status_field(status, "Seccomp") == "2");
  CHECK(status_field(status, "NoNewPrivs") == "0");
  CHECK(in(env, q, {"/probe/probe", "unshare", "user"}).out == "errno=1 Operation not permitted\n");
  CHECK(env.stack({"down", "-p", q}).code == 0);
}

TEST_CASE("a bad seccomp profile is refused before anything is made" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  write_text(env.project_dir() / "bad.json", "{\"defaultAction\": \"SCMP_ACT_NOPE\"}");
  auto p = unique_project("seccbad");
  auto u = up(env, p, "    security_opt: [\"seccomp=bad.json\"]\n");
  CHECK(u.code != 0);
  CHECK(u.err.find("bad.json") != std::string::npos);
  CHECK(env.leftovers(p).empty());
}
