// The namespace and RT fields of a service (issue 13) through the stack binary, proven from
// inside the containers (/proc/self/ns, /proc, /proc/self/cgroup) and in the host's cgroup
// files: pid host|service:NAME, ipc service:NAME, cgroup host|private, network_mode
// container:NAME, cpu_rt_runtime/cpu_rt_period, a secret owned by the image's named user.
#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

std::string text_of(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string host_ns(const char* kind) {
  return std::filesystem::read_symlink(std::string("/proc/self/ns/") + kind).string();
}

// Waits until the logs of SERVICE hold MARKER; returns them.
std::string logs_until(StackEnv& env, const std::string& service, const std::string& marker) {
  std::string out;
  for (int i = 0; i < 300; i++) {
    out = env.stack({"logs", service}).out;
    if (out.find(marker) != std::string::npos) break;
    usleep(50'000);
  }
  return out;
}

// What `stack exec SERVICE sh -c SCRIPT` prints (stdout and stderr).
std::string sh(StackEnv& env, const std::string& service, const std::string& script) {
  auto r = env.stack({"exec", service, "sh", "-c", script});
  return r.out + r.err;
}

}  // namespace

TEST_CASE("pid host and pid service:NAME: the container sees the host's or the other's processes") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("pidns");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  main:
    image: busybox
    command: [sleep, "4031"]
  side:
    image: busybox
    pid: service:main
    command: [sleep, "300"]
  hostpid:
    image: busybox
    pid: host
    command: [sleep, "300"]
  own:
    image: busybox
    command: [sleep, "300"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::string ns_main = sh(env, "main", "readlink /proc/self/ns/pid");
  std::string ns_side = sh(env, "side", "readlink /proc/self/ns/pid");
  CHECK_MESSAGE(ns_main == ns_side, (ns_main + " / " + ns_side));
  CHECK(ns_main.find(host_ns("pid")) == std::string::npos);
  // side sees main's sleep in its /proc; a container of its own does not.
  CHECK_MESSAGE(sh(env, "side", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").find("sleep 4031") !=
                    std::string::npos,
                "side does not see main's process");
  CHECK(sh(env, "own", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").find("sleep 4031") ==
        std::string::npos);
  // pid: host: the host's namespace, its PID 1 included.
  CHECK(sh(env, "hostpid", "readlink /proc/self/ns/pid") == host_ns("pid") + "\n");
  CHECK(sh(env, "hostpid", "cat /proc/1/comm") == text_of("/proc/1/comm"));
  CHECK(sh(env, "own", "readlink /proc/self/ns/pid") != host_ns("pid") + "\n");
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("ipc service:NAME joins the other's IPC namespace, cgroup private hides the host's tree") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("ipccg");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  owner:
    image: busybox
    ipc: shareable
    cgroup: host
    command: [sleep, "300"]
  guest:
    image: busybox
    ipc: service:owner
    cgroup: private
    command: [sleep, "300"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::string owner = sh(env, "owner", "readlink /proc/self/ns/ipc");
  CHECK(owner.find("ipc:[") == 0);
  CHECK(sh(env, "guest", "readlink /proc/self/ns/ipc") == owner);
  CHECK(owner != host_ns("ipc") + "\n");
  // cgroup: host shows where the container's cgroups are on the host; private shows "/".
  std::string host_view = sh(env, "owner", "grep ':memory:' /proc/self/cgroup");
  CHECK_MESSAGE(host_view.find("/" + p + "/" + p + "-owner-1") != std::string::npos, host_view);
  CHECK(sh(env, "guest", "grep ':memory:' /proc/self/cgroup").find(":memory:/\n") !=
        std::string::npos);
  CHECK(sh(env, "guest", "readlink /proc/self/ns/cgroup") != host_ns("cgroup") + "\n");
  CHECK(sh(env, "owner", "readlink /proc/self/ns/cgroup") == host_ns("cgroup") + "\n");
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("network_mode container:NAME joins a running container by name, a missing one is refused") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netctr");
  auto q = p + "b";
  env.uses(p);
  env.uses(q);
  env.write("name: " + p + "\nservices:\n  web:\n    image: busybox\n    container_name: " + p +
            "-named\n    command: [sleep, \"300\"]\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  // Another project joins it by its name.
  env.write("name: " + q + "\nservices:\n  probe:\n    image: busybox\n    network_mode: container:" +
                p + "-named\n    command: [sleep, \"300\"]\n",
            "other.yaml");
  auto other = (env.project_dir() / "other.yaml").string();
  auto up2 = env.stack({"-f", other, "up", "-d"});
  REQUIRE_MESSAGE(up2.code == 0, up2.err);
  auto web = env.stack({"exec", "web", "readlink", "/proc/self/ns/net"});
  auto probe = env.stack({"-f", other, "exec", "probe", "readlink", "/proc/self/ns/net"});
  CHECK(web.out.find("net:[") == 0);
  CHECK_MESSAGE(probe.out == web.out, (probe.out + probe.err));
  CHECK(env.stack({"-f", other, "down", "-t", "1"}).code == 0);

  // A container that does not exist: refused by name, nothing made.
  env.write("name: " + q + "\nservices:\n  probe:\n    image: busybox\n    network_mode: container:" +
                p + "-nosuch\n    command: [sleep, \"300\"]\n",
            "other.yaml");
  auto bad = env.stack({"-f", other, "up", "-d"});
  CHECK(bad.code != 0);
  CHECK_MESSAGE(bad.err.find("network_mode container:" + p + "-nosuch: no container " + p +
                             "-nosuch on this host") != std::string::npos,
                bad.err);
  CHECK(env.ps(q).empty());
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
  CHECK(env.leftovers(q).empty());
}

TEST_CASE("cpu_rt_runtime and cpu_rt_period reach the container's cpu cgroup") {
  STACK_REQUIRE_ROOT();
  if (!std::filesystem::exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us")) {
    MESSAGE("SKIPPED: this kernel has no RT group scheduling");
    return;
  }
  StackEnv env;
  auto p = unique_project("rtgrp");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  rt:
    image: busybox
    cpu_rt_period: 100000
    cpu_rt_runtime: 20ms
    command: [sleep, "300"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto cpu = StackEnv::cgroup_dir("cpu", p, p + "-rt-1");
  CHECK(text_of(cpu / "cpu.rt_period_us") == "100000\n");
  CHECK(text_of(cpu / "cpu.rt_runtime_us") == "20000\n");
  // The ancestors were given the budget first (the kernel refuses a child more than its parent).
  auto project = cpu.parent_path();
  CHECK(std::stoll(text_of(project / "cpu.rt_runtime_us")) * 1000000 /
            std::stoll(text_of(project / "cpu.rt_period_us")) >=
        200000);
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a secret's uid and gid by name: owned by the image's user and group inside") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("secnm");
  env.uses(p);
  env.write("s3cret\n", "token.txt");
  env.write("name: " + p + R"(
secrets:
  token: {file: ./token.txt}
services:
  app:
    image: busybox
    secrets:
      - {source: token, uid: www-data, gid: nogroup, mode: 0400}
    command: [sleep, "300"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  // busybox: www-data is 33, nogroup 65534.
  CHECK(sh(env, "app", "stat -c '%u %g %a' /run/secrets/token") == "33 65534 400\n");
  CHECK(sh(env, "app", "su -s /bin/sh www-data -c 'cat /run/secrets/token'") == "s3cret\n");
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("anonymous volumes are carried over a recreation, and go with down") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("anonk");
  env.uses(p);
  auto yaml = [&](const std::string& mark) {
    return "name: " + p + "\nservices:\n  db:\n    image: busybox\n    volumes: [/data]\n" +
           "    environment: {MARK: " + mark + "}\n    command: [sleep, \"300\"]\n";
  };
  env.write(yaml("one"));
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(sh(env, "db", "echo kept > /data/f && echo $MARK") == "one\n");
  // A changed environment recreates the container: the anonymous volume's data is still there.
  env.write(yaml("two"));
  up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(sh(env, "db", "echo $MARK; cat /data/f") == "two\nkept\n");
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
  // After down the next container starts empty (compose removes anonymous volumes with it).
  up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(sh(env, "db", "cat /data/f 2>/dev/null || echo empty") == "empty\n");
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a named volume whose driver_opts or labels changed is refused until down -v") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("volcfg");
  env.uses(p);
  auto yaml = [&](const std::string& size, const std::string& label) {
    return "name: " + p + R"(
volumes:
  data:
    driver_opts: {type: tmpfs, device: tmpfs, o: "size=)" +
           size + R"("}
    labels: {tier: )" + label + R"(}
services:
  db:
    image: busybox
    volumes: [data:/data]
    command: [sleep, "300"]
)";
  };
  env.write(yaml("1m", "a"));
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.stack({"down", "-t", "1"}).code == 0);  // the volume stays
  env.write(yaml("2m", "a"));
  auto changed = env.stack({"up", "-d"});
  CHECK(changed.code != 0);
  CHECK_MESSAGE(changed.err.find("stack.yaml:3:3: volume \"" + p +
                                 "_data\" exists but doesn't match configuration (driver_opts "
                                 "changed)") != std::string::npos,
                changed.err);
  CHECK(env.ps(p).empty());  // nothing was made
  env.write(yaml("1m", "b"));
  changed = env.stack({"up", "-d"});
  CHECK(changed.code != 0);
  CHECK_MESSAGE(changed.err.find("(labels changed)") != std::string::npos, changed.err);
  // down -v removes it; the new configuration is then made.
  CHECK(env.stack({"down", "-v"}).code == 0);
  up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(sh(env, "db", "df -k /data | tail -1 | awk '{print $2}'") == "1024\n");
  CHECK(env.stack({"down", "-v", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("volumes_from container:NAME takes a container's volumes, read-only when asked") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("vfrom");
  auto q = p + "b";
  env.uses(p);
  env.uses(q);
  env.write("name: " + p + "\nservices:\n  db:\n    image: busybox\n    container_name: " + p +
            "-named\n    volumes: [/shared]\n    command: [sleep, \"300\"]\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(sh(env, "db", "echo from-db > /shared/f && echo ok") == "ok\n");
  env.write("name: " + q + "\nservices:\n  reader:\n    image: busybox\n    volumes_from: [\"container:" +
                p + "-named:ro\"]\n    command: [sleep, \"300\"]\n",
            "other.yaml");
  auto other = (env.project_dir() / "other.yaml").string();
  auto up2 = env.stack({"-f", other, "up", "-d"});
  REQUIRE_MESSAGE(up2.code == 0, up2.err);
  auto read = env.stack({"-f", other, "exec", "reader", "cat", "/shared/f"});
  CHECK_MESSAGE(read.out == "from-db\n", (read.out + read.err));
  auto write = env.stack({"-f", other, "exec", "reader", "sh", "-c", "echo x > /shared/g"});
  CHECK(write.code != 0);
  CHECK_MESSAGE(write.err.find("Read-only file system") != std::string::npos, write.err);
  CHECK(env.stack({"-f", other, "down", "-t", "1"}).code == 0);
  // A container that does not exist: refused by name before anything is made.
  env.write("name: " + q + "\nservices:\n  reader:\n    image: busybox\n    volumes_from: [\"container:" +
                p + "-nosuch\"]\n    command: [sleep, \"300\"]\n",
            "other.yaml");
  auto bad = env.stack({"-f", other, "up", "-d"});
  CHECK(bad.code != 0);
  CHECK_MESSAGE(bad.err.find("volumes_from container:" + p + "-nosuch: no container " + p +
                             "-nosuch on this host") != std::string::npos,
                bad.err);
  CHECK(env.ps(q).empty());
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
  CHECK(env.leftovers(q).empty());
}

TEST_CASE("cgroup_parent puts the container's cgroups under it, made and removed by stack when it made it") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("cgpar");
  env.uses(p);
  std::string made = "stk-test-" + p;  // stack makes this one
  std::string users = "stk-user-" + p;  // the user made this one: it stays
  auto mem = [](const std::string& rel) { return std::filesystem::path("/sys/fs/cgroup/memory") / rel; };
  // The user's parent, made in every hierarchy as cgcreate would; all removed pass or fail.
  const char* hierarchies[] = {"memory", "cpu", "pids", "devices", "cpuacct", "freezer", "systemd",
                               "unified"};
  struct Cleanup {
    std::vector<std::filesystem::path> dirs;
    ~Cleanup() {
      for (const auto& d : dirs) ::rmdir(d.c_str());
    }
  } cleanup;
  for (const char* h : hierarchies) {
    auto top = std::filesystem::path("/sys/fs/cgroup") / h;
    for (const auto& rel : {made + "/inner/" + p + "-a-1", made + "/inner", made,
                            users + "/" + p + "-b-1", users})
      cleanup.dirs.push_back(top / rel);
  }
  for (const char* h : hierarchies)
    REQUIRE(std::filesystem::create_directory(std::filesystem::path("/sys/fs/cgroup") / h / users));
  env.write("name: " + p + "\nservices:\n  a:\n    image: busybox\n    cgroup_parent: /" + made +
            "/inner\n    mem_limit: 32m\n    command: [sleep, \"300\"]\n  b:\n    image: busybox\n"
            "    cgroup_parent: " + users + "\n    command: [sleep, \"300\"]\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  // From inside: the container's own cgroup is under the parent; the limit is in its files.
  auto in = env.stack({"exec", "a", "grep", ":memory:", "/proc/self/cgroup"});
  CHECK_MESSAGE(in.out.find(":memory:/" + made + "/inner/" + p + "-a-1\n") != std::string::npos,
                (in.out + in.err));
  CHECK(text_of(mem(made + "/inner/" + p + "-a-1") / "memory.limit_in_bytes") ==
        std::to_string(32 << 20) + "\n");
  CHECK(std::filesystem::exists(mem(users + "/" + p + "-b-1")));
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
  CHECK(!std::filesystem::exists(mem(made)));   // stack made it: gone with the last container
  CHECK(!std::filesystem::exists(mem(users + "/" + p + "-b-1")));
  CHECK(std::filesystem::exists(mem(users)));   // the user's stays
}
