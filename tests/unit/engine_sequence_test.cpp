// The engine's start sequence without root: Engine::create, start and abandon against the
// simulated kernel of tests/support/fake_engine_kernel.h, through the recording decorators.
// The call order, a failure at each call leaving nothing (every cgroup made removed, every
// process started killed and reaped), and the configuration as the init's own decoder reads
// it. The same scenarios run against the real kernel in integration/engine_contract_test.cpp.
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/container.h"
#include "engine/security.h"
#include "support/engine_contract.h"
#include "support/fake_engine_kernel.h"

extern "C" {
#include "engine/init/init.h"
}

using namespace stack;
using namespace stack::test;
using Strings = std::vector<std::string>;

namespace {

// Open descriptors of this process: what a scenario must give back.
size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) n++;
  return n;
}

class FakeWorld final : public EngineWorld {
 public:
  FakeEngineKernel k;
  engine::Engine eng{"/stack-sim/stack-init", k.cgroups(), k.seams()};

  engine::Engine& engine() override { return eng; }
  CallLog& log() override { return k.log(); }
  const std::vector<pid_t>& launched() override { return k.launched(); }
  engine::CgroupDriver& observed_cgroups() override { return k.sim_cgroups(); }
  // Paths of a world that exists only in memory: nothing on the host is named.
  engine::ContainerSpec spec(const std::string& name, std::vector<std::string> argv) override {
    engine::ContainerSpec s;
    s.name = name;
    s.cgroup = "stack/sim/" + name;
    s.dir = "/stack-sim/containers/" + name;
    s.layers = {"/stack-sim/layers/base", "/stack-sim/layers/app"};
    s.hostname = name;
    s.hosts = "127.0.0.1\tlocalhost\n";
    s.process.argv = std::move(argv);
    s.process.env = {"PATH=/bin:/usr/bin", "GREETING=hello"};
    s.process.capabilities = engine::default_capabilities();
    k.log().alias(s.dir.string(), "DIR");
    k.log().alias(s.cgroup, "CG");
    return s;
  }
  std::string break_setup(engine::ContainerSpec& s) override {
    s.mounts.push_back({"/nonexistent-stack-contract", "/mnt", false});
    std::string why = "bind /nonexistent-stack-contract: No such file or directory";
    k.world.ready = {SimWorld::Reply::kError, why};
    return why;
  }
  void missing_command(engine::ContainerSpec& s) override {
    s.process.argv = {"no-such-program"};
    k.world.started = {SimWorld::Reply::kError,
                       "exec \"no-such-program\": No such file or directory"};
  }
  bool process_exists(pid_t pid) override {
    auto it = k.world.procs.find(pid);
    return it != k.world.procs.end() && !it->second.reaped;
  }
  void dispose(const engine::ContainerProcess& p, const engine::ContainerSpec& s) override {
    k.world.exit(p.pid);  // stopped, and reaped by whoever waits for it
    k.world.procs[p.pid].reaped = true;
    REQUIRE(k.sim_cgroups().remove(s.cgroup));
  }
};

// Runs SCENARIO in a fresh simulated world; the kernel saw nothing it would punish, and no
// descriptor is left open.
template <class F>
void in_fake_world(F scenario) {
  size_t fds = open_fds();
  {
    FakeWorld w;
    scenario(w);
    CHECK(w.k.world.violations == Strings{});
  }
  CHECK(open_fds() == fds);
}

// The init's read_config of MESSAGE: what the container's PID 1 would run with.
config decode_config(const std::string& message) {
  UniqueFd fd(::memfd_create("stack-test-config", MFD_CLOEXEC));
  REQUIRE(::write(fd.get(), message.data(), message.size()) ==
          static_cast<ssize_t>(message.size()));
  REQUIRE(::lseek(fd.get(), 0, SEEK_SET) == 0);
  config cfg{};
  char err[4096] = "";
  REQUIRE_MESSAGE(read_config(fd.get(), &cfg, err, sizeof err) == 0, err);
  return cfg;
}

Strings list_of(const strv& v) { return Strings(v.v, v.v + v.n); }

}  // namespace

TEST_CASE("engine sequence: create then start, in the order of init.c's steps") {
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("web", {"sleep", "60"});
    auto c = w.eng.create(s);
    REQUIRE(c);
    REQUIRE(w.k.world.configs.size() == 1);
    auto config_bytes = std::to_string(w.k.world.configs[0].size());
    CHECK(w.log().calls == Strings{
                               "mkdir /stack-sim/containers/web/rootfs 0755",
                               "mkdir /stack-sim/containers/web/upper 0755",
                               "mkdir /stack-sim/containers/web/work 0755",
                               "write /stack-sim/containers/web/hostname 4 bytes",
                               "write /stack-sim/containers/web/hosts 20 bytes",
                               "unlink /stack-sim/containers/web/exit",
                               "cgroup.pids stack/sim/web",
                               "cgroup.remove stack/sim/web",
                               "cgroup.create stack/sim/web",
                               "opendir /stack-sim/containers/web",
                               "clone flags=PID|NS|UTS|IPC|NET",
                               "pidfd_open 4242",
                               "start_time 4242",
                               "send config " + config_bytes + " bytes",
                               "cgroup.attach stack/sim/web 4242",
                               "expect READY",
                               "netns_open 4242",
                           });
    // Created: nothing of the service runs; the init waits in its cgroup.
    CHECK(w.k.world.procs.size() == 1);
    CHECK(w.k.world.cgroups.at("stack/sim/web") == std::set<pid_t>{4242});
    CHECK(w.k.world.files.at("/stack-sim/containers/web/hostname") == "web\n");

    w.log().calls.clear();
    auto p = w.eng.start(std::move(*c));
    REQUIRE(p);
    CHECK(w.log().calls == Strings{"send GO", "expect STARTED"});
    CHECK(p->pid == 4242);
    CHECK(p->start_time == 1000 + 4242);
    CHECK(w.k.world.cgroups.at("stack/sim/web") == std::set<pid_t>{4242, 4243});
    w.dispose(*p, s);
  });
}

TEST_CASE("engine sequence: the configuration carries the spec, as the init decodes it") {
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("cfg", {"sh", "-c", "echo $GREETING"});
    s.resolv_conf = "nameserver 10.1.0.1\n";
    s.mounts.push_back({"/srv/data", "/data", true});
    s.log_max_size = 1 << 20;
    s.log_max_files = 5;
    s.process.cwd = "/work";
    s.process.uid = 1000;
    s.process.gid = 100;
    s.process.groups = {10, 20};
    s.process.no_new_privs = true;
    auto c = w.eng.create(s);
    REQUIRE(c);
    REQUIRE(w.k.world.configs.size() == 1);
    config cfg = decode_config(w.k.world.configs[0]);
    CHECK(std::string(cfg.rootfs) == "/stack-sim/containers/cfg/rootfs");
    CHECK(std::string(cfg.upper) == "/stack-sim/containers/cfg/upper");
    CHECK(std::string(cfg.work) == "/stack-sim/containers/cfg/work");
    // overlayfs takes the topmost layer first.
    CHECK(std::string(cfg.lowerdirs) == "/stack-sim/layers/app:/stack-sim/layers/base");
    CHECK(std::string(cfg.hostname) == "cfg");
    REQUIRE(cfg.nbinds == 4);
    CHECK(std::string(cfg.binds[0].dst) == "/etc/hostname");
    CHECK(std::string(cfg.binds[1].dst) == "/etc/hosts");
    CHECK(std::string(cfg.binds[2].src) == "/stack-sim/containers/cfg/resolv.conf");
    CHECK(std::string(cfg.binds[2].dst) == "/etc/resolv.conf");
    CHECK(std::string(cfg.binds[3].src) == "/srv/data");
    CHECK(std::string(cfg.binds[3].dst) == "/data");
    CHECK(cfg.binds[3].ro == 1);
    CHECK(cfg.binds[0].ro == 0);
    CHECK(cfg.ndevices == engine::default_devices().size());
    CHECK(list_of(cfg.masked) == engine::masked_paths());
    CHECK(list_of(cfg.readonly) == engine::readonly_paths());
    CHECK(cfg.sys_rw == 0);
    CHECK(cfg.userns == 0);
    CHECK(list_of(cfg.args) == s.process.argv);
    CHECK(list_of(cfg.env) == s.process.env);
    CHECK(std::string(cfg.cwd) == "/work");
    CHECK(cfg.uid == 1000);
    CHECK(cfg.gid == 100);
    REQUIRE(cfg.ngroups == 2);
    CHECK(cfg.groups[1] == 20);
    CHECK(cfg.caps == engine::default_capabilities());
    CHECK(cfg.no_new_privs == 1);
    CHECK(cfg.seccomp_len > 0);  // Docker's default profile, compiled for these capabilities
    CHECK(cfg.log_max_size == 1 << 20);
    CHECK(cfg.log_max_files == 5);
    CHECK(w.k.world.files.at("/stack-sim/containers/cfg/resolv.conf") == s.resolv_conf);
    // The device cgroup gets the default rules: the container is not privileged.
    CHECK(w.k.world.limits.at("stack/sim/cfg").devices == engine::default_device_rules());
  });
}

TEST_CASE("engine sequence: a privileged container gets /sys read-write and no masks") {
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("priv", {"sleep", "60"});
    s.privileged = true;
    s.process.seccomp.mode = engine::SeccompSpec::Mode::kUnconfined;
    auto c = w.eng.create(s);
    REQUIRE(c);
    config cfg = decode_config(w.k.world.configs.at(0));
    CHECK(cfg.sys_rw == 1);
    CHECK(cfg.masked.n == 0);
    CHECK(cfg.readonly.n == 0);
    CHECK(cfg.seccomp == nullptr);
    CHECK(!w.k.world.limits.at("stack/sim/priv").devices);
  });
}

TEST_CASE("engine sequence: the contract scenarios against the simulated kernel") {
  SUBCASE("create then start") { in_fake_world(contract_create_then_start); }
  SUBCASE("abandon") { in_fake_world(contract_abandon); }
  SUBCASE("destructor") { in_fake_world(contract_destructor); }
  SUBCASE("ERROR at setup") { in_fake_world(contract_setup_error); }
  SUBCASE("ERROR at start") { in_fake_world(contract_start_error); }
  SUBCASE("a failure at each call of create") {
    for (const auto& f : create_failures())
      in_fake_world([&](FakeWorld& w) { contract_create_failure(w, f); });
  }
  SUBCASE("a failure at each call of start") {
    for (const auto& f : start_failures())
      in_fake_world([&](FakeWorld& w) { contract_start_failure(w, f); });
  }
}

TEST_CASE("engine sequence: network_mode host and a joined namespace give no netns descriptor") {
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("host", {"sleep", "60"});
    s.host_network = true;
    auto c = w.eng.create(s);
    REQUIRE(c);
    CHECK(c->netns_fd() == -1);
    CHECK(w.log().count("clone flags=PID|NS|UTS|IPC") == 1);
    CHECK(w.log().count("netns_open") == 0);
  });
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("joined", {"sleep", "60"});
    s.join_netns = "/proc/77/ns/net";
    auto c = w.eng.create(s);
    REQUIRE(c);
    CHECK(c->netns_fd() == -1);
    CHECK(w.log().count("clone flags=PID|NS|UTS|IPC netns=/proc/77/ns/net") == 1);
    CHECK(w.log().count("netns_open") == 0);
  });
}

TEST_CASE(
    "engine sequence: a user namespace is made before the clone, its netns read after READY") {
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("mapped", {"sleep", "60"});
    s.userns = model::IdMapping{100000, 200000, 65536};
    w.k.world.idmap = true;
    auto c = w.eng.create(s);
    REQUIRE(c);
    CHECK(w.log().since(9) == Strings{
                                  "opendir DIR",
                                  "userns.own DIR",
                                  "userns.make 100000:200000:65536",
                                  "userns.idmap /stack-sim/layers/base",
                                  "clone flags=PID|NS userns",
                                  "pidfd_open PID",
                                  "start_time PID",
                                  "send config N bytes",
                                  "cgroup.attach CG PID",
                                  "expect READY",
                                  "netns_open PID",
                              });
    CHECK(c->netns_fd() >= 0);
    config cfg = decode_config(w.k.world.configs.at(0));
    CHECK(cfg.userns == 1);
    CHECK(cfg.layers_shifted == 0);
  });
  in_fake_world([](FakeWorld& w) {  // no idmapped mounts: shifted copies are mounted instead
    auto s = w.spec("copied", {"sleep", "60"});
    s.userns = model::IdMapping{100000, 100000, 65536};
    s.userns_layer_cache = "/stack-sim/userns-layers";
    w.k.world.idmap = false;
    REQUIRE(w.eng.create(s));
    CHECK(w.log().count("userns.shift") == 2);
    config cfg = decode_config(w.k.world.configs.at(0));
    CHECK(cfg.layers_shifted == 1);
    CHECK(std::string(cfg.lowerdirs) ==
          "/stack-sim/userns-layers/100000-100000-65536/app:"
          "/stack-sim/userns-layers/100000-100000-65536/base");
  });
}

TEST_CASE("engine sequence: bad input is refused before anything is made") {
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("nul", {"sh"});
    s.process.env.push_back(std::string("SECRET=a\0b", 10));
    auto c = w.eng.create(s);
    REQUIRE(!c);
    CHECK(c.error().message ==
          "environment variable SECRET holds a NUL byte at offset 1 of its value: execve(2) "
          "cannot pass it");
    s = w.spec("colon", {"sh"});
    s.layers = {"/stack-sim/layers/a:b"};
    c = w.eng.create(s);
    REQUIRE(!c);
    CHECK(c.error().message == "rootfs: layer path /stack-sim/layers/a:b contains ':' or ','");
    s = w.spec("userns-host", {"sh"});
    s.userns = model::IdMapping{100000, 100000, 65536};
    s.host_network = true;
    c = w.eng.create(s);
    REQUIRE(!c);
    CHECK(c.error().message == "a user namespace needs the container's own network namespace");
    CHECK(w.log().calls == Strings{});
  });
}

TEST_CASE("engine sequence: processes left in a reused cgroup are killed before it is made again") {
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("stray", {"sleep", "60"});
    pid_t stray = w.k.world.spawn(false);  // not ours: an engine that died left it
    w.k.world.cgroups[s.cgroup] = {stray};
    w.log().alias(std::to_string(stray), "STRAY");
    auto c = w.eng.create(s);
    REQUIRE(c);
    CHECK(w.log().since(6) == Strings{"cgroup.pids CG", "kill STRAY", "cgroup.remove CG",
                                      "cgroup.create CG", "opendir DIR",
                                      "clone flags=PID|NS|UTS|IPC|NET", "pidfd_open PID",
                                      "start_time PID", "send config N bytes",
                                      "cgroup.attach CG PID", "expect READY", "netns_open PID"});
    CHECK(!w.process_exists(stray));
  });
}

TEST_CASE("engine sequence: a Created moved onto another abandons what that one held") {
  in_fake_world([](FakeWorld& w) {
    auto a = w.eng.create(w.spec("a", {"sleep", "60"}));
    auto b = w.eng.create(w.spec("b", {"sleep", "60"}));
    REQUIRE(a);
    REQUIRE(b);
    pid_t pa = a->pid(), pb = b->pid();
    size_t mark = w.log().calls.size();
    *a = std::move(*b);
    CHECK(w.log().since(mark) == Strings{"kill PID pidfd", "reap PID", "cgroup.remove CG"});
    CHECK(!w.process_exists(pa));
    CHECK(a->pid() == pb);
    // The moved-from one holds nothing: starting it is an error that touches nothing.
    mark = w.log().calls.size();
    auto p = w.eng.start(std::move(*b));
    REQUIRE(!p);
    CHECK(p.error().message == "start: not a created container (started, abandoned or moved from)");
    CHECK(w.log().since(mark) == Strings{});
    w.eng.abandon(std::move(*a));
    CHECK(!w.process_exists(pb));
    CHECK(w.k.world.cgroups.empty());
  });
}

TEST_CASE("engine sequence: the caller attaches between create and start") {
  // What the reconciler does (Supervisor::create_and_start): its interfaces go into the
  // created container's namespace, by the descriptor create opened, while the init waits.
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("attached", {"sleep", "60"});
    auto c = w.eng.create(s);
    REQUIRE(c);
    CHECK(c->pid() == 4242);
    CHECK(c->netns_fd() >= 0);
    w.log().record("attach", std::to_string(c->pid()));
    auto p = w.eng.start(std::move(*c));
    REQUIRE(p);
    CHECK(w.log().since(15) ==
          Strings{"expect READY", "netns_open PID", "attach PID", "send GO", "expect STARTED"});
    w.dispose(*p, s);
  });
  in_fake_world([](FakeWorld& w) {  // the attach failed: the caller abandons, nothing is left
    auto s = w.spec("unattached", {"sleep", "60"});
    auto c = w.eng.create(s);
    REQUIRE(c);
    size_t mark = w.log().calls.size();
    w.eng.abandon(std::move(*c));
    CHECK(w.log().since(mark) == Strings{"kill PID pidfd", "reap PID", "cgroup.remove CG"});
    check_nothing_left(w, s);
  });
}

TEST_CASE("engine sequence: spawn enters a running container through an exec helper") {
  in_fake_world([](FakeWorld& w) {
    auto s = w.spec("entered", {"sleep", "60"});
    auto c = w.eng.create(s);
    REQUIRE(c);
    auto p = w.eng.start(std::move(*c));
    REQUIRE(p);
    size_t mark = w.log().calls.size();
    engine::ProcessSpec ps = s.process;
    ps.argv = {"ps"};
    auto h = w.eng.spawn(*p, s.cgroup, ps, {});
    REQUIRE(h);
    CHECK(h->pid == 4244);  // after the init (4242) and its service (4243)
    CHECK(Strings(w.log().calls.begin() + static_cast<ptrdiff_t>(mark), w.log().calls.end()) ==
          Strings{"pidfd_open 4242", "start_time 4242", "clone exec",
                  "cgroup.attach stack/sim/entered 4244", "userns.other 4242",
                  "send exec config " + std::to_string(w.k.world.configs.at(1).size()) + " bytes",
                  "expect STARTED", "pidfd_open 4244"});
    CHECK(list_of(decode_config(w.k.world.configs.at(1)).args) == Strings{"ps"});
    // The helper is ours to wait for: as exec() would, once it ends.
    w.k.world.exit(h->pid);
    w.k.world.procs[h->pid].reaped = true;
    w.dispose(*p, s);
  });
  in_fake_world([](FakeWorld& w) {  // the helper's command cannot start: it is killed and reaped
    auto s = w.spec("entered", {"sleep", "60"});
    auto c = w.eng.create(s);
    REQUIRE(c);
    auto p = w.eng.start(std::move(*c));
    REQUIRE(p);
    w.k.world.started = {SimWorld::Reply::kError, "exec \"nope\": No such file or directory"};
    size_t mark = w.log().calls.size();
    auto h = w.eng.spawn(*p, s.cgroup, s.process, {});
    REQUIRE(!h);
    CHECK(h.error().message == "exec \"nope\": No such file or directory");
    CHECK(Strings(w.log().calls.begin() + static_cast<ptrdiff_t>(mark) + 6, w.log().calls.end()) ==
          Strings{"expect STARTED", "kill 4244", "reap 4244"});
    w.dispose(*p, s);
  });
}
