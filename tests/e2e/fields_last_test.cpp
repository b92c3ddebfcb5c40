// Issue 13's last fields through the stack binary, proven on the host and from inside the
// containers: pid and ipc container:NAME (the namespaces of another project's container),
// networks named in the file (shared by two projects, kept while the other uses it), external
// networks (missing: refused, nothing made), link_local_ips (in `ip addr`), attach: false,
// security_opt apparmor/label (a no-op said in the daemon log, or refused).
#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "common/instance.h"
#include "e2e/network_support.h"
#include "e2e/stack_env.h"
#include "net/naming.h"

using namespace stack::test;

namespace {

std::string sh(StackEnv& env, const std::vector<std::string>& file, const std::string& service,
               const std::string& script) {
  std::vector<std::string> args = file;
  args.insert(args.end(), {"exec", service, "sh", "-c", script});
  auto r = env.stack(args);
  return r.out + r.err;
}

bool link_exists(const std::string& name) {
  return run({"/usr/sbin/ip", "link", "show", "dev", name}).code == 0;
}

// A network of no project (`stack network create`) and its bridge go, pass or fail: no down
// removes them.
struct NetworkGuard {
  StackEnv& env;
  std::string name, bridge;
  ~NetworkGuard() {
    env.stack({"network", "rm", name});
    if (link_exists(bridge)) run({"/usr/sbin/ip", "link", "del", bridge});
  }
};

}  // namespace

TEST_CASE("pid and ipc container:NAME join another project's container by its name") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("pidctr");
  auto q = p + "b";
  env.uses(p);
  env.uses(q);
  // peer joins main by service, main having a container_name.
  env.write("name: " + p + "\nservices:\n  main:\n    image: busybox\n    container_name: " + p +
            "-named\n    ipc: shareable\n    command: [sleep, \"4032\"]\n  peer:\n    image: "
            "busybox\n    pid: service:main\n    command: [sleep, \"300\"]\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto other = (env.project_dir() / "other.yaml").string();
  // A name that does not exist: refused by name before anything is made.
  env.write("name: " + q + "\nservices:\n  side:\n    image: busybox\n    pid: container:" + p +
                "-nosuch\n    command: [sleep, \"300\"]\n",
            "other.yaml");
  auto bad = env.stack({"-f", other, "up", "-d"});
  CHECK(bad.code != 0);
  CHECK_MESSAGE(bad.err.find("pid container:" + p + "-nosuch: no container " + p +
                             "-nosuch on this host") != std::string::npos,
                bad.err);
  CHECK(env.ps(q).empty());

  env.write("name: " + q + "\nservices:\n  side:\n    image: busybox\n    pid: container:" + p +
                "-named\n    ipc: container:" + p + "-named\n    command: [sleep, \"300\"]\n",
            "other.yaml");
  auto up2 = env.stack({"-f", other, "up", "-d"});
  REQUIRE_MESSAGE(up2.code == 0, up2.err);
  for (const char* ns : {"pid", "ipc"}) {
    std::string mine = sh(env, {}, "main", std::string("readlink /proc/self/ns/") + ns);
    std::string theirs = sh(env, {"-f", other}, "side", std::string("readlink /proc/self/ns/") + ns);
    CHECK(mine.find(std::string(ns) + ":[") == 0);
    CHECK_MESSAGE(mine == theirs, (std::string(ns) + ": " + mine + " / " + theirs));
  }
  // (/proc/self: the init, PID 1, is not dumpable, its /proc/1/ns unreadable.)
  std::string main_pid = sh(env, {}, "main", "readlink /proc/self/ns/pid");
  CHECK(main_pid.find("pid:[") == 0);
  CHECK(sh(env, {}, "peer", "readlink /proc/self/ns/pid") == main_pid);
  // side sees main's process: the same PID namespace.
  CHECK(sh(env, {"-f", other}, "side", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
            .find("sleep 4032") != std::string::npos);
  CHECK(env.stack({"-f", other, "down", "-t", "0"}).code == 0);
  CHECK(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
  CHECK(env.leftovers(q).empty());
}

TEST_CASE("a network named in the file is shared by two projects and outlives its maker's down") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netname");
  auto q = p + "b";
  env.uses(p);
  env.uses(q);
  std::string shared = p + "-shared";
  std::string bridge = stack::net::bridge_name(stack::instance_id(env.root()), "", shared);
  auto file = [&](const std::string& project, const std::string& key) {
    return "name: " + project + "\nservices:\n  app:\n    image: busybox\n    command: [sleep, "
           "\"300\"]\n    networks: [" + key + "]\nnetworks:\n  " + key + ": {name: " + shared +
           "}\n";
  };
  env.write(file(p, "front"));
  env.write(file(q, "edge"), "other.yaml");
  auto other = (env.project_dir() / "other.yaml").string();
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(link_exists(bridge));
  auto up2 = env.stack({"-f", other, "up", "-d"});
  REQUIRE_MESSAGE(up2.code == 0, up2.err);
  // Both on one network: the other project's container answers by its address.
  std::string addr = sh(env, {"-f", other}, "app",
                        "ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1");
  addr.erase(addr.find_last_not_of("\n") + 1);
  CHECK(env.stack({"exec", "app", "ping", "-c1", "-W2", addr}).code == 0);
  // A second up of the other project plans nothing for it: it is used, not made again.
  auto again = env.stack({"-f", other, "up", "-d"});
  CHECK_MESSAGE(again.err.find("Nothing to do") != std::string::npos, again.err);
  // The maker goes down: the network stays for the project still on it.
  CHECK(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(link_exists(bridge));
  CHECK(env.stack({"-f", other, "exec", "app", "true"}).code == 0);
  // The last user goes down: the network goes with it.
  CHECK(env.stack({"-f", other, "down", "-t", "0"}).code == 0);
  CHECK(!link_exists(bridge));
  CHECK(env.leftovers(p).empty());
  CHECK(env.leftovers(q).empty());
}

TEST_CASE("an external network must exist: missing, up names it and makes nothing") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto q = unique_project("netext");
  env.uses(q);
  std::string name = q + "-outside";
  std::string bridge = stack::net::bridge_name(stack::instance_id(env.root()), "", name);
  NetworkGuard guard{env, name, bridge};
  env.write("name: " + q + "\nservices:\n  app:\n    image: busybox\n    command: [sleep, "
            "\"300\"]\n    networks: [outer]\nnetworks:\n  outer: {external: true, name: " +
                name + "}\n",
            "other.yaml");
  auto other = (env.project_dir() / "other.yaml").string();
  auto bad = env.stack({"-f", other, "up", "-d"});
  CHECK(bad.code != 0);
  CHECK_MESSAGE(bad.err.find("network outer is external: network " + name +
                             " does not exist on this host") != std::string::npos,
                bad.err);
  CHECK(env.ps(q).empty());
  CHECK(!link_exists(bridge));
  // `stack network create` makes it (no project's); the project joins it, its down leaves it.
  auto made = env.stack({"network", "create", name});
  REQUIRE_MESSAGE(made.code == 0, made.err);
  CHECK(link_exists(bridge));
  auto up2 = env.stack({"-f", other, "up", "-d"});
  REQUIRE_MESSAGE(up2.code == 0, up2.err);
  auto ls = env.stack({"network", "ls", "--format", "json"});
  CHECK_MESSAGE(ls.out.find("\"" + q + "-app-1\"") != std::string::npos, ls.out);
  auto busy = env.stack({"network", "rm", name});
  CHECK(busy.code != 0);
  CHECK_MESSAGE(busy.err.find("network is in use by container " + q + "-app-1") != std::string::npos,
                busy.err);
  CHECK(env.stack({"-f", other, "down", "-t", "0"}).code == 0);
  CHECK(link_exists(bridge));
  auto rm = env.stack({"network", "rm", name});
  CHECK_MESSAGE(rm.code == 0, rm.err);
  CHECK(!link_exists(bridge));
  CHECK(env.leftovers(q).empty());
}

TEST_CASE("link_local_ips are on the container's interface") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("llips");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    networks:
      n: {link_local_ips: [169.254.42.7, "fe80::42:7"]}
networks:
  n: {}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::string addrs = sh(env, {}, "app", "ip addr show eth0");
  CHECK_MESSAGE(addrs.find("inet 169.254.42.7/16") != std::string::npos, addrs);
  CHECK_MESSAGE(addrs.find("inet6 fe80::42:7/64") != std::string::npos, addrs);
  CHECK(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("attach: false keeps a service's output out of the attached up") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("noattach");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  loud:
    image: busybox
    command: [sh, -c, "echo hidden-line-4033"]
  shown:
    image: busybox
    depends_on: {loud: {condition: service_completed_successfully}}
    command: [sh, -c, "echo shown-line-4033"]
)");
  // Both exit: the attached up ends when every container has.
  auto up = env.stack({"up"});
  CHECK_MESSAGE(up.out.find("shown-line-4033") != std::string::npos, up.out);
  CHECK_MESSAGE(up.out.find("hidden-line-4033") != std::string::npos, up.out);
  CHECK(env.stack({"down", "-t", "0"}).code == 0);
  env.write("name: " + p + R"(
services:
  loud:
    image: busybox
    attach: false
    command: [sh, -c, "echo hidden-line-4033"]
  shown:
    image: busybox
    depends_on: {loud: {condition: service_completed_successfully}}
    command: [sh, -c, "echo shown-line-4033"]
)");
  up = env.stack({"up"});
  CHECK_MESSAGE(up.out.find("shown-line-4033") != std::string::npos, up.out);
  CHECK_MESSAGE(up.out.find("hidden-line-4033") == std::string::npos, up.out);
  // Its logs are still kept: `stack logs` shows them.
  CHECK(env.stack({"logs", "loud"}).out.find("hidden-line-4033") != std::string::npos);
  CHECK(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("security_opt apparmor and label: no-ops when they ask for none, else refused") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("lsmopt");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    security_opt: ["apparmor:confined-profile"]
)");
  auto bad = env.stack({"up", "-d"});
  CHECK(bad.code != 0);
  CHECK_MESSAGE(bad.err.find("refused: services.app.security_opt apparmor:confined-profile (") !=
                    std::string::npos,
                bad.err);
  CHECK(env.ps(p).empty());
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    security_opt: ["apparmor:unconfined", "label:disable"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.stack({"exec", "app", "true"}).code == 0);
  std::ifstream log(env.run_root() / "daemon.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK_MESSAGE(text.find("ignored: stack confines with namespaces, capabilities and seccomp") !=
                    std::string::npos,
                text);
  CHECK(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
