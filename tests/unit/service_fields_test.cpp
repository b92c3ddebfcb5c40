// The process and resource fields of a service without root: the checks of what this host
// refuses (platform, runtime, sysctls, ulimits, container_name with replicas), the mapping of
// deploy.restart_policy, the init's decoding of ulimits and kernel settings, and the cgroup
// knobs against fake v1 and v2 trees.
#include "spec/service_fields.h"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>

#include "common/files.h"
#include "engine/cgroup.h"
#include "engine/wire.h"
#include "reconciler/restart_policy.h"
#include "spec/loader.h"
#include "support/temp_dir.h"

extern "C" {
#include "engine/init/init.h"
}

using namespace stack;
namespace fs = std::filesystem;

namespace {

Result<spec::Stack> load_text(const test::TempDir& dir, const std::string& text) {
  test::write_text(dir / "stack.yaml", text);
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  return spec::load(opts);
}

// check_supported's message for a one-service stack with FIELDS (YAML lines under it).
std::string refusal(const std::string& fields) {
  test::TempDir dir("stack-fields");
  auto r = load_text(dir, "services:\n  web:\n    image: x\n" + fields);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  auto c = spec::check_supported(*r);
  return c ? "" : c.error().message;
}

std::string content(const fs::path& p) {
  auto r = read_file(p);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  return *r;
}

struct Decoded {
  int rc = -1;
  std::string err;
  config cfg{};
};

Decoded init_decode(const std::string& message) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::write(fds[1], message.data(), message.size()) == static_cast<ssize_t>(message.size()));
  ::close(fds[1]);
  Decoded d;
  char err[4096] = "";
  d.rc = read_config(fds[0], &d.cfg, err, sizeof err);
  d.err = err;
  ::close(fds[0]);
  return d;
}

}  // namespace

TEST_CASE("service fields: the process and resource fields load and are supported") {
  CHECK(refusal("    labels: {a: b}\n    annotations: {c: d}\n    init: true\n"
                "    platform: linux/amd64\n    runtime: stack\n"
                "    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 100}\n"
                "    sysctls: {net.core.somaxconn: 1024, kernel.shmmax: 65536}\n"
                "    group_add: [42]\n    domainname: example.test\n    oom_score_adj: 300\n"
                "    oom_kill_disable: true\n    mem_reservation: 8m\n    mem_limit: 64m\n"
                "    memswap_limit: 128m\n    mem_swappiness: 10\n"
                "    cpu_quota: 50000\n    cpu_period: 100000\n"
                "    deploy: {labels: {e: f}, restart_policy: {condition: on-failure, "
                "max_attempts: 3, delay: 1s, window: 20s}, resources: {reservations: {memory: "
                "1m, cpus: '0.1'}}}\n") == "");
}

TEST_CASE("service fields: another platform is refused at its line, naming the host's") {
  if (spec::host_platform() != "linux/amd64") return;
  CHECK(refusal("    platform: linux/arm64\n") ==
        "stack.yaml:4:5: service \"web\": platform linux/arm64 cannot run on this host "
        "(linux/amd64): stack runs images natively, without emulation");
  CHECK(refusal("    platform: linux/x86_64\n") == "");
}

TEST_CASE("service fields: a runtime other than stack's is refused by name") {
  CHECK(refusal("    runtime: nvidia\n") ==
        "stack.yaml:4:5: service \"web\": runtime nvidia is refused: stack runs every container "
        "with its own engine (runtime: stack)");
}

TEST_CASE("service fields: sysctls outside the container's namespaces are refused by name") {
  auto m = refusal("    sysctls:\n      kernel.panic: 1\n      vm.swappiness: 0\n");
  CHECK(m.find("stack.yaml:5:7: service \"web\": sysctl kernel.panic is refused: it is not "
               "namespaced") == 0);
  CHECK(m.find("stack.yaml:6:7: service \"web\": sysctl vm.swappiness is refused") !=
        std::string::npos);
  CHECK(refusal("    sysctls: [net.ipv4.ip_forward=1]\n    network_mode: host\n")
            .find("sysctl net.ipv4.ip_forward is refused with network_mode host") !=
        std::string::npos);
  CHECK(refusal("    sysctls: {net/ipv4/../../kernel/panic: 1}\n").find("not a sysctl name") !=
        std::string::npos);
  CHECK(refusal("    sysctls: {fs.mqueue.msg_max: 20, kernel.sem: 250 32000 32 128}\n") == "");
}

TEST_CASE("service fields: an unknown ulimit and container_name with replicas are refused") {
  CHECK(refusal("    ulimits: {bogus: 1}\n")
            .find("stack.yaml:4:15: service \"web\": unknown "
                  "ulimit \"bogus\"") == 0);
  CHECK(refusal("    container_name: one\n    scale: 2\n")
            .find("container_name one names one container, and the service asks for 2 "
                  "replicas") != std::string::npos);
}

TEST_CASE("service fields: deploy.restart_policy becomes the supervisor's policy") {
  test::TempDir dir("stack-fields");
  auto r = load_text(dir, R"(services:
  a: {image: x, restart: always, deploy: {restart_policy: {condition: on-failure, max_attempts: 3}}}
  b: {image: x, deploy: {restart_policy: {condition: none}}}
  c: {image: x, deploy: {restart_policy: {max_attempts: 2}}}
  d: {image: x, restart: unless-stopped}
)");
  REQUIRE(r);
  CHECK(spec::effective_restart(*r->find("a")) == "on-failure:3");
  CHECK(spec::effective_restart(*r->find("b")) == "no");
  CHECK(spec::effective_restart(*r->find("c")) == "any:2");
  CHECK(spec::effective_restart(*r->find("d")) == "unless-stopped");

  using reconciler::RestartPolicy;
  auto any2 = RestartPolicy::parse("any:2");
  REQUIRE(any2);
  CHECK(any2->str() == "any:2");
  CHECK(any2->restarts_after(0, 1));
  CHECK(!any2->restarts_after(0, 2));  // max_attempts reached, whatever the exit code
  RestartPolicy fixed = *RestartPolicy::parse("always");
  fixed.delay = std::chrono::milliseconds(1500);
  int streak = 5;
  auto d = reconciler::restart_delay(fixed, {1, false, std::chrono::milliseconds(10), 0}, streak);
  REQUIRE(d);
  CHECK(d->count() == 1500);  // the delay asked for, not the backoff
}

TEST_CASE("wire: ulimits and kernel settings reach the init, malformed ones are refused") {
  using namespace engine;
  wire::Writer w;
  w.bytes(W_ARG, "sh")
      .nested(W_RLIMIT,
              wire::Writer().u32(WR_RESOURCE, RLIMIT_NOFILE).u64(WR_SOFT, 1024).u64(WR_HARD, 2048))
      .nested(W_KERNEL, wire::Writer()
                            .bytes(WK_SYSCTL, "net.core.somaxconn=1024")
                            .bytes(WK_DOMAINNAME, "example.test")
                            .u32(WK_OOM_SCORE_ADJ, 1000 - 500));
  auto d = init_decode(w.message());
  REQUIRE_MESSAGE(d.rc == 0, d.err);
  REQUIRE(d.cfg.nrlimits == 1);
  CHECK(d.cfg.rlimits[0].resource == RLIMIT_NOFILE);
  CHECK(d.cfg.rlimits[0].soft == 1024);
  CHECK(d.cfg.rlimits[0].hard == 2048);
  REQUIRE(d.cfg.sysctls.n == 1);
  CHECK(std::string(d.cfg.sysctls.v[0]) == "net.core.somaxconn=1024");
  CHECK(std::string(d.cfg.domainname) == "example.test");
  CHECK(d.cfg.has_oom_score_adj == 1);
  CHECK(d.cfg.oom_score_adj == -500);

  wire::Writer nul;
  nul.bytes(W_ARG, "sh")
      .nested(W_KERNEL, wire::Writer().bytes(WK_SYSCTL, std::string("a.b=1\0x", 7)));
  CHECK(init_decode(nul.message()).rc == -1);
  wire::Writer noval;
  noval.bytes(W_ARG, "sh").nested(W_KERNEL, wire::Writer().bytes(WK_SYSCTL, "a.b"));
  CHECK(init_decode(noval.message()).rc == -1);
  wire::Writer nores;
  nores.bytes(W_ARG, "sh").nested(W_RLIMIT, wire::Writer().u64(WR_SOFT, 1));
  CHECK(init_decode(nores.message()).rc == -1);
}

TEST_CASE("cgroup v1: reservation, swap, swappiness, OOM killer and CFS period and quota") {
  test::TempDir dir("stack-cgv1f");
  for (const char* h : {"memory", "cpu", "pids"}) fs::create_directories(dir / h);
  test::write_text(dir / "memory/stack/x/memory.memsw.limit_in_bytes", "max\n");
  auto cg = engine::make_cgroup_v1(dir.path());
  engine::CgroupLimits l;
  l.memory_bytes = 64 << 20;
  l.memory_swap = 128 << 20;
  l.memory_reservation = 8 << 20;
  l.swappiness = 10;
  l.oom_kill_disable = true;
  l.cpu_period = 50000;
  l.cpu_quota = 25000;
  auto r = cg->create("stack/x", l);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  fs::path m = dir / "memory/stack/x", c = dir / "cpu/stack/x";
  CHECK(content(m / "memory.memsw.limit_in_bytes") == std::to_string(128 << 20));
  CHECK(content(m / "memory.soft_limit_in_bytes") == std::to_string(8 << 20));
  CHECK(content(m / "memory.swappiness") == "10");
  CHECK(content(m / "memory.oom_control") == "1");
  CHECK(content(c / "cpu.cfs_period_us") == "50000");
  CHECK(content(c / "cpu.cfs_quota_us") == "25000");
}

TEST_CASE("cgroup v2: reservation, swap and CFS quota, and what v2 cannot do refused") {
  test::TempDir dir("stack-cgv2f");
  test::write_text(dir / "stack/x/memory.swap.max", "max\n");
  auto cg = engine::make_cgroup_v2(dir.path());
  engine::CgroupLimits l;
  l.memory_bytes = 64 << 20;
  l.memory_swap = 96 << 20;
  l.memory_reservation = 8 << 20;
  l.cpu_quota = 25000;
  l.cpu_period = 50000;
  auto r = cg->create("stack/x", l);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(content(dir / "stack/x/memory.swap.max") == std::to_string(32 << 20));
  CHECK(content(dir / "stack/x/memory.low") == std::to_string(8 << 20));
  CHECK(content(dir / "stack/x/cpu.max") == "25000 50000");
  engine::CgroupLimits s;
  s.swappiness = 0;
  auto refused = cg->create("stack/y", s);
  REQUIRE(!refused);
  CHECK(refused.error().message.find("mem_swappiness has no cgroup v2 equivalent") !=
        std::string::npos);
}

TEST_CASE("env_file format raw: values are taken literally, dotenv's are parsed") {
  test::TempDir dir("stack-fields");
  test::write_text(dir / "raw.env",
                   "# comment\nA=\"quoted\"\nB=${HOME} $$x\nC= spaced \\n\r\n\nD\n");
  test::write_text(dir / "dot.env", "E=\"quoted\"\n");
  auto r = load_text(dir, R"(services:
  web:
    image: x
    env_file:
      - {path: raw.env, format: raw}
      - {path: dot.env, format: dotenv}
)");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  const auto& env = r->find("web")->environment;
  CHECK(env.at("A") == "\"quoted\"");
  CHECK(env.at("B") == "${HOME} $$x");
  CHECK(env.at("C") == " spaced \\n");
  CHECK(env.at("E") == "quoted");
  auto bad = load_text(dir,
                       "services:\n  web:\n    image: x\n    env_file: [{path: raw.env, "
                       "format: yaml}]\n");
  REQUIRE(!bad);
  CHECK(bad.error().message.find("stack.yaml:4:40: services.web.env_file: format must be raw "
                                 "or dotenv, got \"yaml\"") != std::string::npos);
}

TEST_CASE("cgroup v1: cpuset copies cpus and mems down each new level, blkio only when asked") {
  test::TempDir dir("stack-cgv1c");
  for (const char* h : {"memory", "cpu", "pids", "cpuset", "blkio"})
    fs::create_directories(dir / h);
  test::write_text(dir / "cpuset/cpuset.cpus", "0-1\n");
  test::write_text(dir / "cpuset/cpuset.mems", "0\n");
  auto cg = engine::make_cgroup_v1(dir.path());
  REQUIRE(cg->create("stack/p/plain", {}));
  CHECK(!fs::exists(dir / "cpuset/stack"));  // not asked for: not made
  CHECK(!fs::exists(dir / "blkio/stack"));
  engine::CgroupLimits l;
  l.cpuset_cpus = "1";
  l.blkio_device = {{"blkio.throttle.read_bps_device", "254:0 1048576"}};
  auto r = cg->create("stack/p/x", l);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(content(dir / "cpuset/stack/cpuset.cpus") == "0-1\n");
  CHECK(content(dir / "cpuset/stack/p/cpuset.mems") == "0\n");
  CHECK(content(dir / "cpuset/stack/p/x/cpuset.mems") == "0\n");
  CHECK(content(dir / "cpuset/stack/p/x/cpuset.cpus") == "1");
  CHECK(content(dir / "blkio/stack/p/x/blkio.throttle.read_bps_device") == "254:0 1048576");
  engine::CgroupLimits w;
  w.blkio_weight = 300;
  auto refused = cg->create("stack/p/w", w);
  REQUIRE(!refused);
  CHECK(refused.error().message.find("no weight file (weights need the bfq I/O scheduler") !=
        std::string::npos);
}
