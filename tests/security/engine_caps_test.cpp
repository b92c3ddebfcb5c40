// Capabilities and no_new_privs of a container, as Docker sets them, through the stack binary:
// the defaults for PID 1, the service and exec'd processes; cap_add, cap_drop, privileged and
// security_opt no-new-privileges. Root only.
#include <doctest/doctest.h>

#include "e2e/stack_env.h"
#include "security/engine_fixture.h"

using namespace stack::test;

namespace {

constexpr const char* kDockerCaps = "00000000a80425fb";

// Brings up PROJECT with one service `s` running as USER (empty: root) with EXTRA fields; the
// service writes its own /proc/self/status to /tmp/status before sleeping.
RunResult up(StackEnv& env, const std::string& project, const std::string& extra,
             const std::string& user = "") {
  env.uses(project);
  env.write("name: " + project + R"(
services:
  s:
    image: busybox
    command: [sh, -c, "cat /proc/self/status > /tmp/status; exec sleep 300"]
)" + (user.empty() ? "" : "    user: " + user + "\n") +
            extra);
  return env.stack({"up", "-d"});
}

std::string service_status(StackEnv& env) {
  return env
      .stack({"exec", "s", "sh", "-c",
              "while [ ! -s /tmp/status ]; do sleep 0.05; done; "
              "cat /tmp/status"})
      .out;
}

}  // namespace

TEST_CASE("by default PID 1, the service and exec'd processes hold Docker's capabilities" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("capdef");
  auto u = up(env, p, "");
  REQUIRE_MESSAGE(u.code == 0, u.err);
  auto init = env.stack({"exec", "s", "cat", "/proc/1/status"}).out;
  auto service = service_status(env);
  auto exec = env.stack({"exec", "s", "cat", "/proc/self/status"}).out;
  for (const auto* status : {&init, &service, &exec}) {
    CAPTURE(*status);
    CHECK(status_field(*status, "CapEff") == kDockerCaps);
    CHECK(status_field(*status, "CapPrm") == kDockerCaps);
    CHECK(status_field(*status, "CapBnd") == kDockerCaps);
    CHECK(status_field(*status, "CapInh") == "0000000000000000");
    CHECK(status_field(*status, "CapAmb") == "0000000000000000");
  }
  // no_new_privs for the service and exec'd processes.
  CHECK(status_field(service, "NoNewPrivs") == "1");
  CHECK(status_field(exec, "NoNewPrivs") == "1");
  // NET_ADMIN is not in the set: no new interface.
  auto link = env.stack({"exec", "s", "ip", "link", "add", "stkprobe0", "type", "bridge"});
  CHECK(link.code != 0);
  CHECK(link.err.find("Operation not permitted") != std::string::npos);
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("a non-root service keeps no capability but the bounding set" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("capuser");
  auto u = up(env, p, "", "app");
  REQUIRE_MESSAGE(u.code == 0, u.err);
  auto service = service_status(env);
  CHECK(status_field(service, "Uid").rfind("1000", 0) == 0);
  CHECK(status_field(service, "CapEff") == "0000000000000000");
  CHECK(status_field(service, "CapPrm") == "0000000000000000");
  CHECK(status_field(service, "CapAmb") == "0000000000000000");
  CHECK(status_field(service, "CapBnd") == kDockerCaps);
  CHECK(status_field(env.stack({"exec", "s", "cat", "/proc/self/status"}).out, "CapEff") ==
        "0000000000000000");
  // The init forwards signals to the service of another user: stop is graceful.
  CHECK(env.stack({"down", "-t", "5"}).code == 0);
}

TEST_CASE("cap_add NET_ADMIN lets ip link add work, cap_drop ALL leaves nothing" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("capadd");
  auto u = up(env, p, "    cap_add: [NET_ADMIN]\n    cap_drop: [CAP_MKNOD]\n");
  REQUIRE_MESSAGE(u.code == 0, u.err);
  auto link = env.stack({"exec", "s", "ip", "link", "add", "stkprobe0", "type", "bridge"});
  CHECK_MESSAGE(link.code == 0, link.err);
  auto service = service_status(env);
  // a80425fb + NET_ADMIN (bit 12) - MKNOD (bit 27)
  CHECK(status_field(service, "CapEff") == "00000000a00435fb");
  CHECK(status_field(service, "CapBnd") == "00000000a00435fb");
  CHECK(env.stack({"down"}).code == 0);

  auto q = unique_project("capdrop");
  u = up(env, q, "    cap_drop: [ALL]\n");
  REQUIRE_MESSAGE(u.code == 0, u.err);
  service = service_status(env);
  for (const char* field : {"CapEff", "CapPrm", "CapBnd"})
    CHECK(status_field(service, field) == "0000000000000000");
  CHECK(status_field(env.stack({"exec", "s", "cat", "/proc/1/status"}).out, "CapEff") ==
        "0000000000000000");
  CHECK(env.stack({"exec", "s", "chown", "1:1", "/tmp/status"}).code != 0);  // no CAP_CHOWN
  CHECK(env.stack({"down", "-t", "5"}).code == 0);
}

TEST_CASE("an unknown capability is refused before anything is made" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("capbad");
  auto u = up(env, p, "    cap_add: [NET_ADMIN, WARP_DRIVE]\n");
  CHECK(u.code != 0);
  CHECK(u.err.find("CAP_WARP_DRIVE") != std::string::npos);
  CHECK(u.err.find("stack.yaml:") != std::string::npos);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("security_opt no-new-privileges:false clears no_new_privs, true keeps it" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  for (const char* opt : {"no-new-privileges:false", "no-new-privileges=false"}) {
    auto p = unique_project("nnpoff") + (opt[17] == ':' ? "a" : "b");
    auto u = up(env, p, std::string("    security_opt: [\"") + opt + "\"]\n");
    REQUIRE_MESSAGE(u.code == 0, u.err);
    CHECK(status_field(service_status(env), "NoNewPrivs") == "0");
    CHECK(status_field(env.stack({"exec", "s", "cat", "/proc/self/status"}).out, "NoNewPrivs") ==
          "0");
    CHECK(env.stack({"down", "-p", p}).code == 0);
  }
  for (const char* opt : {"no-new-privileges", "no-new-privileges:true"}) {
    auto p = unique_project("nnpon") + (opt[17] == ':' ? "a" : "b");
    auto u = up(env, p, std::string("    security_opt: [\"") + opt + "\"]\n");
    REQUIRE_MESSAGE(u.code == 0, u.err);
    CHECK(status_field(service_status(env), "NoNewPrivs") == "1");
    CHECK(env.stack({"down", "-p", p}).code == 0);
  }
}

TEST_CASE("privileged gets every capability, the host's devices and a writable /sys" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("priv");
  auto u = up(env, p, "    privileged: true\n");
  REQUIRE_MESSAGE(u.code == 0, u.err);
  auto service = service_status(env);
  std::string all = read_text("/proc/self/status");  // the test runs as root with every cap
  CHECK(status_field(service, "CapEff") == status_field(all, "CapBnd"));
  CHECK(status_field(service, "CapBnd") == status_field(all, "CapBnd"));
  CHECK(status_field(service, "Seccomp") == "0");
  // The host's devices, and the device cgroup lets them be opened.
  if (std::filesystem::exists("/dev/loop0")) {
    CHECK(env.stack({"exec", "s", "test", "-b", "/dev/loop0"}).code == 0);
    CHECK(env.stack({"exec", "s", "head", "-c", "1", "/dev/loop0"}).code == 0);
  }
  auto mounts = env.stack({"exec", "s", "cat", "/proc/mounts"}).out;
  CHECK(mounts.find("sysfs /sys sysfs rw") != std::string::npos);
  CHECK(mounts.find(" /proc/sys ") == std::string::npos);        // nothing read-only...
  CHECK(mounts.find(" /proc/interrupts ") == std::string::npos);  // ...nor masked
  CHECK(env.stack({"exec", "s", "ip", "link", "add", "stkprobe0", "type", "bridge"}).code == 0);
  CHECK(env.stack({"down"}).code == 0);
}
