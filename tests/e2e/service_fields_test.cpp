// The process and resource fields of a service through the stack binary, proven where a user
// would look: from inside the container (/proc/self/limits, /proc/sys, the domain name, the
// OOM score, `id`), from the host (cgroup files), and in `stack ps` (labels, restarts).
#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The line of TEXT that starts with PREFIX, or "".
std::string line_of(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(prefix) != std::string::npos) return line;
  return "";
}

// Waits until the logs of SERVICE hold MARKER; returns them.
std::string logs_with(StackEnv& env, const std::string& service, const std::string& marker) {
  std::string out;
  for (int i = 0; i < 300; i++) {
    out = env.stack({"logs", service}).out;
    if (out.find(marker) != std::string::npos) break;
    usleep(50'000);
  }
  return out;
}

std::string service_yaml(const std::string& p, int adj) {
  return "name: " + p + R"(
services:
  box:
    image: busybox
    ulimits:
      nofile: {soft: 1000, hard: 2000}
      core: 0
    sysctls:
      net.core.somaxconn: 1234
      kernel.shmmni: 555
    domainname: example.test
    oom_score_adj: )" +
         std::to_string(adj) + R"(
    group_add: [4242]
    labels: {tier: web}
    deploy: {labels: {team: ops}}
    init: true
    platform: linux/amd64
    runtime: stack
    command: [sh, -c, "cat /proc/self/limits; echo somaxconn=$$(cat /proc/sys/net/core/somaxconn); echo shmmni=$$(cat /proc/sys/kernel/shmmni); echo domain=$$(cat /proc/sys/kernel/domainname); echo adj=$$(cat /proc/self/oom_score_adj); id; echo READY; exec sleep 300"]
)";
}

}  // namespace

TEST_CASE("ulimits, sysctls, domainname, oom_score_adj and group_add hold inside the container") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("procf");
  env.uses(p);
  std::string host_somaxconn = file_text("/proc/sys/net/core/somaxconn");
  std::string host_domain = file_text("/proc/sys/kernel/domainname");
  env.write(service_yaml(p, 321));
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::string logs = logs_with(env, "box", "READY");
  REQUIRE_MESSAGE(logs.find("READY") != std::string::npos, logs);
  std::string nofile = line_of(logs, "Max open files");
  CHECK_MESSAGE(nofile.find(" 1000 ") != std::string::npos, nofile);
  CHECK_MESSAGE(nofile.find(" 2000 ") != std::string::npos, nofile);
  std::string core = line_of(logs, "Max core file size");
  CHECK_MESSAGE(core.find(" 0                    0 ") != std::string::npos, core);
  CHECK(logs.find("somaxconn=1234") != std::string::npos);
  CHECK(logs.find("shmmni=555") != std::string::npos);
  CHECK(logs.find("domain=example.test") != std::string::npos);
  CHECK(logs.find("adj=321") != std::string::npos);
  CHECK_MESSAGE(line_of(logs, "uid=0").find("groups=4242") != std::string::npos, logs);
  // The host is untouched: the sysctls and the domain name were the container's namespaces'.
  CHECK(file_text("/proc/sys/net/core/somaxconn") == host_somaxconn);
  CHECK(file_text("/proc/sys/kernel/domainname") == host_domain);
  // An exec gets the service's ulimits too.
  auto ex = env.stack({"exec", "box", "sh", "-c", "ulimit -n; ulimit -Hn"});
  CHECK_MESSAGE(ex.out == "1000\n2000\n", (ex.out + ex.err));
  // Labels (and deploy.labels) are the container's, as `stack ps` shows.
  auto c = env.container(p, p + "-box-1");
  CHECK(c["labels"]["tier"] == "web");
  CHECK(c["labels"]["team"] == "ops");

  // A changed field recreates the container with the new value.
  env.write(service_yaml(p, 123));
  up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  logs = logs_with(env, "box", "adj=123");
  CHECK_MESSAGE(logs.find("adj=123") != std::string::npos, logs);
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("memory and cpu fields reach the container's cgroup files") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("cgf");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  box:
    image: busybox
    mem_limit: 64m
    memswap_limit: 128m
    mem_reservation: 16m
    mem_swappiness: 7
    oom_kill_disable: true
    cpu_period: 40000
    cpu_quota: 20000
    command: [sleep, "300"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto mem = StackEnv::cgroup_dir("memory", p, p + "-box-1");
  auto cpu = StackEnv::cgroup_dir("cpu", p, p + "-box-1");
  CHECK(file_text(mem / "memory.limit_in_bytes") == std::to_string(64 << 20) + "\n");
  if (std::filesystem::exists(mem / "memory.memsw.limit_in_bytes"))
    CHECK(file_text(mem / "memory.memsw.limit_in_bytes") == std::to_string(128 << 20) + "\n");
  CHECK(file_text(mem / "memory.soft_limit_in_bytes") == std::to_string(16 << 20) + "\n");
  CHECK(file_text(mem / "memory.swappiness") == "7\n");
  CHECK(file_text(mem / "memory.oom_control").find("oom_kill_disable 1") == 0);
  CHECK(file_text(cpu / "cpu.cfs_period_us") == "40000\n");
  CHECK(file_text(cpu / "cpu.cfs_quota_us") == "20000\n");
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("deploy.restart_policy: on-failure with max_attempts stops after that many restarts") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("rpol");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  job:
    image: busybox
    command: [sh, -c, "exit 3"]
    deploy:
      restart_policy: {condition: on-failure, max_attempts: 2, delay: 100ms, window: 5s}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto c = env.wait_for(
      p, p + "-job-1", [](auto& c) { return c["state"] == "exited" && c["restarts"] == 2; }, 20s);
  CHECK(c["state"] == "exited");
  CHECK(c["restarts"] == 2);
  CHECK(c["exit_code"] == 3);
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a sysctl that is not namespaced is refused by name and nothing is made") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("sysref");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  box:
    image: busybox
    command: [sleep, "300"]
    sysctls:
      kernel.panic: 1
)");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(up.err.find("stack.yaml:7:7: service \"box\": sysctl kernel.panic is refused") !=
                    std::string::npos,
                up.err);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("container_name names the container, and another project cannot take it") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("cname");
  auto q = p + "b";
  env.uses(p);
  env.uses(q);
  std::string name = p + "-named";
  env.write("name: " + p + "\nservices:\n  web:\n    image: busybox\n    container_name: " + name +
            "\n    command: [sleep, \"300\"]\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto c = env.container(p, name);
  REQUIRE(!c.is_null());
  CHECK(c["state"] == "running");
  CHECK(c["service"] == "web");
  auto host = env.stack({"exec", "web", "hostname"});
  CHECK_MESSAGE(host.out == name + "\n", (host.out + host.err));

  // The same container_name in another project: refused before anything is made.
  env.write("name: " + q + "\nservices:\n  api:\n    image: busybox\n    container_name: " + name +
                "\n    command: [sleep, \"300\"]\n",
            "other.yaml");
  auto clash = env.stack({"-f", (env.project_dir() / "other.yaml").string(), "up", "-d"});
  CHECK(clash.code != 0);
  CHECK_MESSAGE(
      clash.err.find("other.yaml:5:5: service \"api\": container name " + name +
                     " is taken by project \"" + p + "\" on this host") != std::string::npos,
      clash.err);
  CHECK(env.ps(q).empty());
  CHECK(env.container(p, name)["state"] == "running");  // the owner's container is untouched
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
  CHECK(env.leftovers(q).empty());
}

TEST_CASE("devices and device_cgroup_rules: the node is made and opens, others stay closed") {
  STACK_REQUIRE_ROOT();
  if (!std::filesystem::exists("/dev/net/tun")) {
    MESSAGE("SKIPPED: no /dev/net/tun on this host");
    return;
  }
  StackEnv env;
  auto p = unique_project("devs");
  env.uses(p);
  // tun (10:200) mapped to another path; fuse (10:229) only allowed by a rule, made by mknod.
  env.write("name: " + p + R"(
services:
  box:
    image: busybox
    devices: ["/dev/net/tun:/dev/tun0:rw"]
    device_cgroup_rules: ["c 10:229 rw"]
    command: [sleep, "300"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto tun =
      env.stack({"exec", "box", "sh", "-c", "ls -l /dev/tun0; exec 3<>/dev/tun0 && echo opened"});
  CHECK_MESSAGE(tun.out.find("10, 200") != std::string::npos, (tun.out + tun.err));
  CHECK_MESSAGE(tun.out.find("opened") != std::string::npos, (tun.out + tun.err));
  auto fuse = env.stack(
      {"exec", "box", "sh", "-c", "mknod /tmp/f c 10 229 && exec 3<>/tmp/f && echo opened"});
  CHECK_MESSAGE(fuse.out.find("opened") != std::string::npos, (fuse.out + fuse.err));
  // A device neither mapped nor allowed: the device cgroup refuses it.
  auto other = env.stack(
      {"exec", "box", "sh", "-c", "mknod /tmp/l c 10 237 && exec 3<>/tmp/l && echo opened"});
  CHECK(other.out.find("opened") == std::string::npos);
  CHECK_MESSAGE(other.err.find("Operation not permitted") != std::string::npos, other.err);
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("cpuset pins the service to its CPUs, blkio_config throttles its disk") {
  STACK_REQUIRE_ROOT();
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || !std::filesystem::exists("/dev/vda")) {
    MESSAGE("SKIPPED: needs two CPUs and /dev/vda");
    return;
  }
  StackEnv env;
  auto p = unique_project("cpus");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  box:
    image: busybox
    cpuset: "1"
    blkio_config:
      device_read_bps: [{path: /dev/vda, rate: 1mb}]
      device_write_iops: [{path: /dev/vda, rate: 100}]
    command: [sleep, "300"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto in = env.stack({"exec", "box", "grep", "Cpus_allowed_list", "/proc/self/status"});
  CHECK_MESSAGE(in.out.find("Cpus_allowed_list:\t1\n") != std::string::npos, (in.out + in.err));
  auto blk = StackEnv::cgroup_dir("blkio", p, p + "-box-1");
  CHECK(file_text(blk / "blkio.throttle.read_bps_device") == "254:0 1048576\n");
  CHECK(file_text(blk / "blkio.throttle.write_iops_device") == "254:0 100\n");
  CHECK(file_text(StackEnv::cgroup_dir("cpuset", p, p + "-box-1") / "cpuset.cpus") == "1\n");
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
  CHECK(StackEnv::cgroup_dir("cpuset", p, p + "-box-1").empty());  // the project's is gone
  CHECK(StackEnv::cgroup_dir("blkio", p, p + "-box-1").empty());
}

TEST_CASE("uts host and ipc host: the container sees the host's namespaces and /dev/shm") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("hostns");
  env.uses(p);
  char host_name[256] = {};
  REQUIRE(::gethostname(host_name, sizeof host_name - 1) == 0);
  auto ns = [](const char* kind) {
    return std::filesystem::read_symlink(std::string("/proc/self/ns/") + kind).string();
  };
  // A file in the host's /dev/shm, removed pass or fail.
  std::filesystem::path shm = "/dev/shm/" + p + "-marker";
  std::ofstream(shm) << "x";
  struct Remove {
    std::filesystem::path f;
    ~Remove() { std::filesystem::remove(f); }
  } remove_shm{shm};
  env.write("name: " + p + R"(
services:
  shared:
    image: busybox
    uts: host
    ipc: host
    command: [sh, -c, "echo name=$$(hostname) uts=$$(readlink /proc/self/ns/uts) ipc=$$(readlink /proc/self/ns/ipc); ls /dev/shm; echo READY; exec sleep 300"]
  own:
    image: busybox
    ipc: shareable
    command: [sh, -c, "echo name=$$(hostname) uts=$$(readlink /proc/self/ns/uts) ipc=$$(readlink /proc/self/ns/ipc); echo READY; exec sleep 300"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::string shared = logs_with(env, "shared", "READY");
  CHECK_MESSAGE(shared.find("name=" + std::string(host_name) + " ") != std::string::npos, shared);
  CHECK_MESSAGE(shared.find("uts=" + ns("uts")) != std::string::npos, shared);
  CHECK_MESSAGE(shared.find("ipc=" + ns("ipc")) != std::string::npos, shared);
  CHECK_MESSAGE(shared.find(shm.filename().string()) != std::string::npos, shared);
  std::string own = logs_with(env, "own", "READY");
  CHECK_MESSAGE(own.find("uts=" + ns("uts")) == std::string::npos, own);
  CHECK_MESSAGE(own.find("ipc=" + ns("ipc")) == std::string::npos, own);
  CHECK_MESSAGE(own.find("name=" + p + "-own-1") != std::string::npos, own);
  // The host's name is untouched.
  char after[256] = {};
  REQUIRE(::gethostname(after, sizeof after - 1) == 0);
  CHECK(std::string(after) == host_name);
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
