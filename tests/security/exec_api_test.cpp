// `stack exec` by a member of group stack (issue 11): the daemon runs the command, so what a
// member gets must be the container and nothing more: its namespaces, cgroup, capabilities,
// no_new_privs and seccomp filter, whatever user, directory or environment is asked for. Before
// exec went through the API a member could not exec at all (the CLI ran the engine as itself).
// Root only; the users and the group are made and removed by the test.
#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>

#include "e2e/stack_env.h"
#include "e2e/stack_group.h"
#include "security/engine_fixture.h"

using namespace stack::test;

namespace {

std::string fs_read_link(const std::string& path) {
  std::error_code ec;
  return std::filesystem::read_symlink(path, ec).string();
}

// The host PID of the service: the container's init's only child.
int service_pid(StackEnv& env, const std::string& project) {
  int init = env.container(project, project + "-s-1")["pid"];
  std::ifstream children("/proc/" + std::to_string(init) + "/task/" + std::to_string(init) +
                         "/children");
  int pid = 0;
  children >> pid;
  return pid;
}

}  // namespace

TEST_CASE("a member's exec runs inside the container with its capabilities and seccomp only" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackGroupUsers users;
  StackEnv env;
  auto p = unique_project("xsec");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  s:\n    image: busybox\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  StackGroupUsers::open_to_users(env);
  int service = service_pid(env, p);
  REQUIRE(service > 0);
  auto as_member = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"exec", "-T"});
    return StackGroupUsers::stack_as(env, users.member(), p, args);
  };

  // The exec'd process (asked to be root) holds exactly what the service holds.
  auto status = as_member({"-u", "0", "s", "cat", "/proc/self/status"});
  REQUIRE_MESSAGE(status.code == 0, status.err);
  auto host_view = read_text("/proc/" + std::to_string(service) + "/status");
  for (const char* field : {"CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "NoNewPrivs",
                            "Seccomp", "Seccomp_filters"}) {
    CAPTURE(field);
    CHECK(status_field(status.out, field) == status_field(host_view, field));
  }
  CHECK(status_field(status.out, "CapEff") == "00000000a80425fb");
  CHECK(status_field(status.out, "Seccomp") == "2");  // a filter is installed
  CHECK(status_field(status.out, "NoNewPrivs") == "1");

  // Its namespaces are the container's, none of them the host's.
  for (const char* ns : {"mnt", "pid", "net", "uts", "ipc", "user", "cgroup"}) {
    CAPTURE(ns);
    auto inside = as_member({"s", "readlink", std::string("/proc/self/ns/") + ns});
    REQUIRE(inside.code == 0);
    auto container_ns = fs_read_link("/proc/" + std::to_string(service) + "/ns/" + ns);
    CHECK(inside.out == container_ns + "\n");
    if (std::string(ns) != "user" && std::string(ns) != "cgroup")
      CHECK(inside.out != fs_read_link(std::string("/proc/self/ns/") + ns) + "\n");
  }
  // Its cgroups are the container's.
  CHECK(as_member({"s", "cat", "/proc/self/cgroup"}).out ==
        read_text("/proc/" + std::to_string(service) + "/cgroup"));
  // Its root is the container's: a directory of the host is not there, whatever the working
  // directory asked for (resolved inside the container).
  CHECK(as_member({"s", "test", "-e", env.root().string()}).code == 1);
  auto cwd = as_member({"-w", env.root().string(), "s", "pwd"});
  CHECK(cwd.code == 126);
  CHECK(as_member({"-w", "/../../..", "s", "pwd"}).out == "/\n");
  CHECK(as_member({"-w", "/../..", "s", "stat", "-c", "%d:%i", "."}).out ==
        as_member({"s", "stat", "-c", "%d:%i", "/"}).out);
  // What the capabilities and the filter keep from root in the container.
  CHECK(as_member({"-u", "0", "s", "ip", "link", "add", "stkx0", "type", "dummy"}).code != 0);
  CHECK(as_member({"-u", "0", "s", "mount", "-t", "tmpfs", "none", "/mnt"}).code != 0);
  CHECK(as_member({"-u", "0", "s", "unshare", "-U", "true"}).code != 0);  // seccomp: unshare
  CHECK(read_text("/proc/net/dev").find("stkx0") == std::string::npos);
}
