// stack-runtime's reading of config.json (src/runtime/bundle.cpp): what each field becomes in
// the engine's ContainerSpec, and that what cannot be honoured is refused naming the field.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/bundle.h"
#include "runtime/runtime.h"

using json = nlohmann::json;
using stack::runtime::parse_config;

namespace {

json minimal() {
  return {{"ociVersion", "1.0.2"},
          {"root", {{"path", "rootfs"}}},
          {"process", {{"args", {"/bin/true"}}, {"cwd", "/"}}},
          {"linux", {{"namespaces", {{{"type", "pid"}}, {{"type", "mount"}}}}}}};
}

std::string refusal(const json& c) {
  auto b = parse_config(c.dump(), "/b", "ctr", "/state/ctr/container");
  REQUIRE_FALSE(b);
  return b.error().message;
}

}  // namespace

TEST_CASE("runtime bundle: a minimal config.json becomes an OCI-mode ContainerSpec") {
  auto b = parse_config(minimal().dump(), "/b", "ctr", "/state/ctr/container");
  REQUIRE(b);
  const auto& s = b->spec;
  CHECK(s.layers == std::vector<std::filesystem::path>{"/b/rootfs"});
  CHECK(s.dir == "/state/ctr/container");
  CHECK(s.inherit_stdio);
  CHECK_FALSE(s.etc_binds);
  CHECK(s.cgroup == "stack-runtime/ctr");
  // No network, uts or ipc namespace in the list: the host's, as the runtime spec says.
  CHECK(s.host_network);
  CHECK(s.host_uts);
  CHECK(s.host_ipc);
  // No seccomp object: no filter; no capabilities object: none.
  CHECK(s.process.seccomp.mode == stack::model::SeccompSpec::Mode::kUnconfined);
  CHECK(s.process.capabilities == 0);
  CHECK_FALSE(s.process.no_new_privs);
  CHECK(s.masked->empty());
  CHECK(s.readonly->empty());
}

TEST_CASE("runtime bundle: process, mounts, linux and hooks are carried over") {
  json c = minimal();
  c["process"]["user"] = {{"uid", 1000}, {"gid", 100}, {"additionalGids", {5, 6}}};
  c["process"]["env"] = {"A=1"};
  c["process"]["noNewPrivileges"] = true;
  c["process"]["oomScoreAdj"] = 100;
  c["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 1024}, {"hard", 4096}}};
  c["process"]["capabilities"] = {{"bounding", {"CAP_KILL", "CAP_CHOWN"}}};
  c["hostname"] = "h";
  c["mounts"] = {
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"options", {"size=65536k"}}},
      {{"destination", "/data"}, {"type", "bind"}, {"source", "/host/data"},
       {"options", {"rbind", "ro", "rslave"}}},
      {{"destination", "/scratch"}, {"type", "tmpfs"}, {"options", {"nosuid", "size=1m"}}},
      {{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"}}};
  c["linux"]["namespaces"] = {{{"type", "pid"}},
                              {{"type", "mount"}},
                              {{"type", "uts"}},
                              {{"type", "network"}, {"path", "/run/netns/x"}}};
  c["linux"]["cgroupsPath"] = "/libpod_parent/libpod-1";
  c["linux"]["resources"] = {{"memory", {{"limit", 1 << 26}}},
                             {"pids", {{"limit", 64}}},
                             {"cpu", {{"quota", 50000}, {"period", 100000}}},
                             {"devices",
                              {{{"allow", false}, {"access", "rwm"}},
                               {{"allow", true}, {"type", "c"}, {"major", 10}, {"minor", 200},
                                {"access", "rwm"}}}}};
  c["linux"]["sysctl"] = {{"net.core.somaxconn", "1024"}};
  c["linux"]["maskedPaths"] = {"/proc/kcore"};
  c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"}};
  c["hooks"]["prestart"] = {{{"path", "/bin/hook"}, {"args", {"hook", "a"}}, {"timeout", 3}}};
  c["annotations"] = {{"k", "v"}};
  auto b = parse_config(c.dump(), "/b", "ctr", "/d");
  REQUIRE_MESSAGE(b, (b ? "" : b.error().message));
  const auto& s = b->spec;
  CHECK(s.process.uid == 1000);
  CHECK(s.process.gid == 100);
  CHECK(s.process.groups == std::vector<gid_t>{5, 6});
  CHECK(s.process.no_new_privs);
  CHECK(s.oom_score_adj == 100);
  REQUIRE(s.process.rlimits.size() == 1);
  CHECK(s.process.rlimits[0].soft == 1024);
  CHECK(s.process.rlimits[0].hard == 4096);
  CHECK(s.process.capabilities == ((1ull << 5) | (1ull << 0)));  // CAP_KILL, CAP_CHOWN
  CHECK(s.hostname == "h");
  CHECK(s.shm_size == 65536 * 1024);
  // /proc and /dev/shm are the init's own, mounted at their place in the list.
  REQUIRE(s.mounts.size() == 5);
  CHECK(s.mounts[0].kind == stack::model::BindMount::Kind::kKernel);
  CHECK(s.mounts[0].target == "/proc");
  CHECK(s.mounts[1].kind == stack::model::BindMount::Kind::kKernel);
  CHECK(s.mounts[1].target == "/dev/shm");
  CHECK(s.mounts[2].source == "/host/data");
  CHECK(s.mounts[2].read_only);
  CHECK(s.mounts[2].recursive == stack::model::BindMount::Recursive::kAll);
  CHECK(s.mounts[2].propagation == "rslave");
  CHECK(s.mounts[3].kind == stack::model::BindMount::Kind::kTmpfs);
  CHECK(s.mounts[3].options == "size=1m");
  CHECK(s.mounts[4].kind == stack::model::BindMount::Kind::kCgroup);
  CHECK(s.mounts[4].read_only);  // as crun on v1: read-only unless "rw"
  CHECK(b->warnings.empty());
  CHECK(s.join_netns == "/run/netns/x");
  CHECK_FALSE(s.host_network);
  CHECK_FALSE(s.host_uts);
  CHECK(s.host_ipc);
  CHECK(s.cgroup == "libpod_parent/libpod-1");
  CHECK(s.limits.memory_bytes == 1 << 26);
  CHECK(s.limits.pids == 64);
  CHECK(s.limits.cpu_quota == 50000);
  REQUIRE(s.device_rules.size() == 1);
  CHECK(s.device_rules[0].major == 10);
  CHECK(s.sysctls.front().first == "net.core.somaxconn");
  CHECK(*s.masked == std::vector<std::string>{"/proc/kcore"});
  CHECK(s.process.seccomp.mode == stack::model::SeccompSpec::Mode::kProfile);
  REQUIRE(b->hooks.prestart.size() == 1);
  CHECK(b->hooks.prestart[0].timeout == 3);
  CHECK(b->annotations == std::vector<std::pair<std::string, std::string>>{{"k", "v"}});
}

TEST_CASE("runtime bundle: what cannot be honoured is refused naming the field") {
  auto with = [](auto edit) {
    json c = minimal();
    edit(c);
    return refusal(c);
  };
  CHECK(with([](json& c) { c["ociVersion"] = "2.0.0"; }).find("ociVersion") == 0);
  CHECK(with([](json& c) { c["linux"]["cgroupsPath"] = "machine.slice:libpod:x"; })
            .find("linux.cgroupsPath") == 0);
  CHECK(with([](json& c) {
          c["linux"]["resources"]["hugepageLimits"] = {{{"pageSize", "2MB"}, {"limit", 1 << 21}}};
        }).find("linux.resources.hugepageLimits: not supported") == 0);
  CHECK(with([](json& c) { c["linux"]["resources"]["network"] = {{"classID", 1}}; })
            .find("linux.resources.network: not supported") == 0);
  CHECK(with([](json& c) { c["linux"]["resources"]["blockIO"] = {{"leafWeight", 10}}; })
            .find("linux.resources.blockIO.leafWeight") == 0);
  CHECK(with([](json& c) {
          c["linux"]["namespaces"].push_back({{"type", "bogus"}});
        }).find("linux.namespaces (bogus)") == 0);
  CHECK(with([](json& c) {
          c["linux"]["namespaces"][1]["path"] = "/proc/1/ns/mnt";
          c["root"]["readonly"] = true;
        }).find("root.readonly: not with a joined mount namespace") == 0);
  CHECK(with([](json& c) { c["linux"]["rootfsPropagation"] = "bogus"; })
            .find("linux.rootfsPropagation") == 0);
  CHECK(with([](json& c) {
          c["linux"]["namespaces"].push_back({{"type", "user"}, {"path", "/run/userns/x"}});
        }).find("linux.uidMappings: required with a user namespace joined by a path") == 0);
  CHECK(with([](json& c) {
          c["linux"]["intelRdt"] = {{"closID", "x"}};
        }).find("linux.intelRdt") == 0);
  CHECK(with([](json& c) {
          c["process"]["user"]["uid"] = 1000;
          c["process"]["capabilities"] = {{"bounding", {"CAP_KILL"}}, {"effective", {"CAP_KILL"}}};
        }).find("process.capabilities.effective: must be a subset of the permitted set") == 0);
  CHECK(with([](json& c) {
          c["mounts"] = {{{"destination", "/x"}, {"type", "nfs"}, {"source", "h:/x"}}};
        }).find("mounts[0] (/x).type") == 0);
  CHECK(with([](json& c) { c["process"]["capabilities"] = {{"bounding", {"CAP_KILL"}},
                                                            {"effective", {"CAP_CHOWN"}}}; })
            .find("process.capabilities.effective") == 0);
  CHECK(with([](json& c) {
          c["mounts"] = {{{"destination", "/x"}, {"type", "bind"}, {"source", "/srv"},
                          {"options", {"rbind"}},
                          {"uidMappings", {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}}}}};
        }).find("mounts[0] (/x).gidMappings: required for an idmapped mount") == 0);
  CHECK(with([](json& c) {
          c["mounts"] = {{{"destination", "/x"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                          {"options", {"idmap"}}}};
        }).find("mounts[0] (/x).uidMappings: an idmapped mount must be a bind mount") == 0);
  CHECK(with([](json& c) { c["linux"]["personality"] = {{"domain", "WINDOWS"}}; })
            .find("linux.personality.domain") == 0);
  CHECK(with([](json& c) { c["process"]["user"]["umask"] = 01000; }).find("process.user.umask") ==
        0);
  CHECK(with([](json& c) {
          c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_NONE"}};
        }).find("process.ioPriority.class: \"IOPRIO_CLASS_NONE\" is not one of") == 0);
  CHECK(with([](json& c) {
          c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_BE"}, {"priority", 8}};
        }).find("process.ioPriority.priority") == 0);
  CHECK(with([](json& c) {
          c["process"]["scheduler"] = {{"policy", "SCHED_ISO"}};
        }).find("process.scheduler.policy") == 0);
  CHECK(with([](json& c) {
          c["process"]["scheduler"] = {{"policy", "SCHED_OTHER"}, {"nice", 20}};
        }).find("process.scheduler.nice") == 0);
  CHECK(with([](json& c) {
          c["process"]["scheduler"] = {{"policy", "SCHED_FIFO"}};
        }).find("process.scheduler.priority: must be 1 to 99") == 0);
  CHECK(with([](json& c) {
          c["process"]["scheduler"] = {{"policy", "SCHED_OTHER"}, {"flags", {"SCHED_FLAG_X"}}};
        }).find("process.scheduler.flags") == 0);
  CHECK(with([](json& c) {
          c["process"]["scheduler"] = {{"policy", "SCHED_DEADLINE"}};
        }).find("process.scheduler: SCHED_DEADLINE needs") == 0);
  CHECK(with([](json& c) {
          c["linux"]["memoryPolicy"] = {{"mode", "MPOL_BIND"}};
        }).find("linux.memoryPolicy.nodes: required with MPOL_BIND") == 0);
  CHECK(with([](json& c) {
          c["linux"]["memoryPolicy"] = {{"mode", "MPOL_BIND"}, {"nodes", "0-"}};
        }).find("linux.memoryPolicy.nodes: \"0-\" is not a node list") == 0);
  CHECK(with([](json& c) {
          c["linux"]["memoryPolicy"] = {{"mode", "MPOL_BIND"}, {"nodes", "1023"}};
        }).find("linux.memoryPolicy.nodes: node 1023 does not exist on this host") == 0);
  CHECK(with([](json& c) {
          c["linux"]["memoryPolicy"] = {{"mode", "MPOL_LOCAL"}, {"nodes", "0"}};
        }).find("linux.memoryPolicy: MPOL_DEFAULT and MPOL_LOCAL take no") == 0);
  CHECK(with([](json& c) {
          c["linux"]["memoryPolicy"] = {
              {"mode", "MPOL_BIND"},
              {"nodes", "0"},
              {"flags", {"MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"}}};
        }).find("linux.memoryPolicy.flags") == 0);
  CHECK(with([](json& c) {
          c["linux"]["timeOffsets"] = {{"boottime", {{"secs", 1}}}};
        }).find("linux.timeOffsets: needs a new time namespace") == 0);
  CHECK(with([](json& c) {
          c["linux"]["namespaces"].push_back({{"type", "time"}});
          c["linux"]["timeOffsets"] = {{"realtime", {{"secs", 1}}}};
        }).find("linux.timeOffsets.realtime") == 0);
  CHECK(with([](json& c) { c["root"]["path"] = 5; }).find("invalid") == 0);
}

TEST_CASE("runtime bundle: a terminal, namespaces joined by path, a cgroup namespace") {
  json c = minimal();
  c["process"]["terminal"] = true;
  c["process"]["consoleSize"] = {{"height", 40}, {"width", 120}};
  c["linux"]["namespaces"] = {{{"type", "pid"}, {"path", "/proc/9/ns/pid"}},
                              {{"type", "network"}, {"path", "/run/netns/x"}},
                              {{"type", "ipc"}, {"path", "/proc/9/ns/ipc"}},
                              {{"type", "cgroup"}},
                              {{"type", "mount"}}};
  auto b = parse_config(c.dump(), "/b", "ctr", "/state/ctr/container");
  REQUIRE(b);
  CHECK(b->spec.tty);
  CHECK(b->console.terminal);
  CHECK(b->console.rows == 40);
  CHECK(b->console.cols == 120);
  CHECK(b->spec.join_pidns == "/proc/9/ns/pid");
  CHECK(b->spec.join_netns == "/run/netns/x");
  CHECK(b->spec.join_ipcns == "/proc/9/ns/ipc");
  CHECK(b->spec.cgroupns);
  CHECK_FALSE(b->spec.host_pid);
  // No pid namespace in the list: the host's.
  c["linux"]["namespaces"] = {{{"type", "mount"}}};
  b = parse_config(c.dump(), "/b", "ctr", "/state/ctr/container");
  REQUIRE(b);
  CHECK(b->spec.host_pid);
}

TEST_CASE("runtime bundle: joined uts, cgroup, user and mount namespaces, root propagation") {
  json c = minimal();
  c["linux"]["namespaces"] = {{{"type", "uts"}, {"path", "/proc/9/ns/uts"}},
                              {{"type", "cgroup"}, {"path", "/proc/9/ns/cgroup"}},
                              {{"type", "user"}, {"path", "/run/userns/x"}},
                              {{"type", "network"}},
                              {{"type", "mount"}, {"path", "/run/mntns/x"}}};
  c["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  c["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  auto b = parse_config(c.dump(), "/b", "ctr", "/state/ctr/container");
  REQUIRE_MESSAGE(b, b.error().message);
  CHECK(b->spec.join_utsns == "/proc/9/ns/uts");
  CHECK(b->spec.join_cgroupns == "/proc/9/ns/cgroup");
  CHECK_FALSE(b->spec.cgroupns);
  CHECK(b->spec.join_userns == "/run/userns/x");
  CHECK(b->spec.join_mntns == "/run/mntns/x");
  CHECK(b->spec.root_in_place);  // the root's directory as the joined namespace has it
  REQUIRE(b->spec.userns);
  CHECK(b->spec.userns->uid_base == 100000);
  c = minimal();
  c["linux"]["rootfsPropagation"] = "rshared";
  c["linux"]["personality"] = {{"domain", "LINUX32"}};
  c["linux"]["resources"]["blockIO"] = {
      {"weight", 300}, {"throttleReadBpsDevice", {{{"major", 254}, {"minor", 0}, {"rate", 1024}}}}};
  c["linux"]["resources"]["cpu"] = {
      {"realtimeRuntime", 1000}, {"realtimePeriod", 100000}, {"mems", "0"}};
  c["mounts"] = {{{"destination", "/x"}, {"type", "bind"}, {"source", "/srv"},
                  {"options", {"rbind", "ridmap", "nosuid", "nodev", "noexec"}},
                  {"uidMappings", {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}}},
                  {"gidMappings", {{{"containerID", 0}, {"hostID", 1001}, {"size", 2}}}}}};
  b = parse_config(c.dump(), "/b", "ctr", "/state/ctr/container");
  REQUIRE_MESSAGE(b, b.error().message);
  CHECK(b->spec.rootfs_propagation == "rshared");
  CHECK(b->spec.personality == 8u);
  CHECK(b->spec.limits.blkio_weight == 300);
  REQUIRE(b->spec.limits.blkio_device.size() == 1);
  CHECK(b->spec.limits.blkio_device[0].first == "blkio.throttle.read_bps_device");
  CHECK(b->spec.limits.blkio_device[0].second == "254:0 1024");
  CHECK(b->spec.limits.cpu_rt_runtime == 1000);
  CHECK(b->spec.limits.cpu_rt_period == 100000);
  CHECK(b->spec.limits.cpuset_mems == "0");
  REQUIRE(b->spec.mounts.size() == 1);
  const auto& m = b->spec.mounts[0];
  CHECK(m.nosuid);
  CHECK(m.nodev);
  CHECK(m.noexec);
  // uid_map(5) lines as crun writes them: "containerID hostID size".
  CHECK(m.idmap_uids == "0 1000 1\n");
  CHECK(m.idmap_gids == "0 1001 2\n");
  CHECK(m.idmap_recursive);
}

TEST_CASE("runtime bundle: umask, I/O priority, scheduler, memory policy, time namespace") {
  json c = minimal();
  c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}, {"umask", 027}};
  json one = {"CAP_NET_BIND_SERVICE"};
  c["process"]["capabilities"] = {{"bounding", {"CAP_NET_BIND_SERVICE", "CAP_KILL"}},
                                  {"permitted", one},
                                  {"effective", one},
                                  {"inheritable", one},
                                  {"ambient", one}};
  c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_IDLE"}, {"priority", 7}};
  c["process"]["scheduler"] = {
      {"policy", "SCHED_BATCH"}, {"nice", -3}, {"flags", {"SCHED_FLAG_RESET_ON_FORK"}}};
  c["linux"]["memoryPolicy"] = {
      {"mode", "MPOL_INTERLEAVE"}, {"nodes", "0"}, {"flags", {"MPOL_F_STATIC_NODES"}}};
  c["linux"]["namespaces"].push_back({{"type", "time"}});
  c["linux"]["timeOffsets"] = {{"monotonic", {{"secs", -5}, {"nanosecs", 9}}}};
  auto b = parse_config(c.dump(), "/b", "ctr", "/state/ctr/container");
  REQUIRE_MESSAGE(b, b.error().message);
  const auto& p = b->spec.process;
  CHECK(p.umask == 027u);
  CHECK(p.io_priority == (3u << 13 | 7));
  REQUIRE(p.scheduler);
  CHECK(p.scheduler->policy == 3);
  CHECK(p.scheduler->nice == -3);
  CHECK(p.scheduler->flags == 1);
  REQUIRE(p.memory_policy);
  CHECK(p.memory_policy->mode == (3u | 1u << 15));
  CHECK(p.memory_policy->nodes == std::vector<uint64_t>{1});
  CHECK(p.user_permitted == 1u << 10);
  CHECK(p.user_effective == 1u << 10);
  CHECK(p.ambient == 1u << 10);
  CHECK(p.inheritable == 1u << 10);
  CHECK(b->spec.timens);
  CHECK(b->spec.join_timens.empty());
  CHECK(b->spec.time_offsets.monotonic_secs == -5);
  CHECK(b->spec.time_offsets.monotonic_nanosecs == 9);
  CHECK(b->spec.time_offsets.boottime_secs == 0);
  // An exec's process.json takes none of these from the container's process.
  stack::runtime::Console console;
  auto e = stack::runtime::parse_process(R"({"args": ["sh"], "cwd": "/"})", p, console);
  REQUIRE(e);
  CHECK_FALSE(e->umask);
  CHECK_FALSE(e->io_priority);
  CHECK_FALSE(e->scheduler);
  // Without capabilities: the container's sets, as runc and crun keep them.
  CHECK(e->capabilities == p.capabilities);
  CHECK(e->ambient == p.ambient);
  CHECK(e->user_permitted == p.user_permitted);
  CHECK(e->memory_policy == p.memory_policy);  // linux.memoryPolicy: the container's
  // Without a user: root, as runc and crun run it, not the container's user.
  stack::model::ProcessSpec as_user = p;
  as_user.uid = as_user.gid = 1000;
  as_user.groups = {5};
  auto root = stack::runtime::parse_process(R"({"args": ["sh"], "cwd": "/"})", as_user, console);
  REQUIRE(root);
  CHECK(root->uid == 0);
  CHECK(root->gid == 0);
  CHECK(root->groups.empty());
  // What an exec cannot honour is refused by name, never dropped.
  auto affinity = stack::runtime::parse_process(
      R"({"args": ["sh"], "cwd": "/", "execCPUAffinity": {"final": "0"}})", p, console);
  REQUIRE_FALSE(affinity);
  CHECK(affinity.error().message.find("process.execCPUAffinity: ") == 0);
  // execCPUAffinity: refused where the caller cannot apply it, else read as masks.
  stack::runtime::ExecAffinity masks;
  auto cpus = stack::runtime::parse_process(
      R"({"args": ["sh"], "execCPUAffinity": {"initial": "0-1,66", "final": "1"}})", p, console,
      nullptr, &masks);
  REQUIRE(cpus);
  CHECK(masks.initial == std::vector<uint64_t>{3, 4});
  CHECK(masks.final == std::vector<uint64_t>{2});
  auto bad = stack::runtime::parse_process(
      R"({"args": ["sh"], "execCPUAffinity": {"final": "1-x"}})", p, console, nullptr, &masks);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "process.execCPUAffinity.final: \"1-x\" is not a CPU list (0-3,7)");
  auto oom = stack::runtime::parse_process(R"({"args": ["sh"], "cwd": "/", "oomScoreAdj": 5})", p,
                                           console);
  REQUIRE_FALSE(oom);
  CHECK(oom.error().message.find("process.oomScoreAdj: ") == 0);
}

TEST_CASE("runtime bundle: ambient capabilities outside inheritable are not raised, said so") {
  // `crun spec`'s and `runc spec`'s default: ambient capabilities, no inheritable ones; both
  // runtimes raise what the kernel lets them and go on.
  json c = minimal();
  json three = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  c["process"]["capabilities"] = {{"bounding", three},
                                  {"effective", three},
                                  {"permitted", three},
                                  {"inheritable", {"CAP_KILL"}},
                                  {"ambient", three}};
  auto b = parse_config(c.dump(), "/b", "ctr", "/state/ctr/container");
  REQUIRE(b);
  CHECK(b->spec.process.ambient == 1u << 5);  // CAP_KILL alone
  REQUIRE(b->warnings.size() == 1);
  CHECK(b->warnings[0] ==
        "process.capabilities.ambient: CAP_AUDIT_WRITE, CAP_NET_BIND_SERVICE "
        "not raised: not in the inheritable and permitted sets");
  std::vector<std::string> warnings;
  stack::runtime::Console console;
  auto e = stack::runtime::parse_process(
      R"({"args": ["sh"], "capabilities": {"bounding": ["CAP_KILL"], "ambient": ["CAP_KILL"]}})",
      b->spec.process, console, &warnings);
  REQUIRE(e);
  CHECK(e->ambient == 0);
  CHECK(warnings.size() == 1);
}

TEST_CASE("runtime bundle: memory.kernel and SELinux labels are taken to no effect, said so") {
  // crun and runc take them; the OCI validation suite sets memory.kernel in every memory test
  // (the runtime spec marks it deprecated, "may be ignored by runtimes").
  json c = minimal();
  c["linux"]["resources"]["memory"] = {{"limit", 1 << 26}, {"kernel", 1 << 25}};
  c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0";
  c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0";
  auto b = parse_config(c.dump(), "/b", "ctr", "/state/ctr/container");
  REQUIRE_MESSAGE(b, (b ? "" : b.error().message));
  CHECK(b->spec.limits.memory_bytes == 1 << 26);
  std::string said;
  for (const auto& w : b->warnings) said += w + "\n";
  CHECK_MESSAGE(said.find("linux.resources.memory.kernel ignored: Linux 6 no longer limits "
                          "kernel memory") != std::string::npos,
                said);
  CHECK_MESSAGE(said.find("linux.mountLabel ignored: SELinux is not enabled") != std::string::npos,
                said);
  CHECK_MESSAGE(
      said.find("process.selinuxLabel ignored: SELinux is not enabled") != std::string::npos,
      said);
  // An AppArmor profile is still refused: runc and crun refuse it without AppArmor too.
  c["process"]["apparmorProfile"] = "docker-default";
  CHECK(refusal(c).find("process.apparmorProfile") != std::string::npos);
}

TEST_CASE("runtime features: the time namespace and the memory policy's modes are listed") {
  json f = json::parse(stack::runtime::features_json());
  auto ns = f["linux"]["namespaces"].get<std::vector<std::string>>();
  CHECK(std::find(ns.begin(), ns.end(), "time") != ns.end());
  auto modes = f["linux"]["memoryPolicy"]["modes"].get<std::vector<std::string>>();
  CHECK(std::find(modes.begin(), modes.end(), "MPOL_BIND") != modes.end());
}

TEST_CASE("runtime bundle: fifo devices, device owners, several id ranges, mount options") {
  json c = minimal();
  c["linux"]["devices"] = {{{"path", "/dev/f"}, {"type", "p"}, {"fileMode", 0600}, {"uid", 5}},
                           {{"path", "/dev/c"}, {"type", "c"}, {"major", 1}, {"minor", 3},
                            {"gid", 6}}};
  c["linux"]["namespaces"].push_back({{"type", "user"}});
  c["linux"]["namespaces"].push_back({{"type", "network"}});
  c["linux"]["namespaces"].push_back({{"type", "ipc"}});
  c["linux"]["namespaces"].push_back({{"type", "uts"}});
  c["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 10}},
                               {{"containerID", 10}, {"hostID", 200000}, {"size", 5}}};
  c["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 300000}, {"size", 65536}}};
  c["linux"]["resources"]["memory"] = {{"kernelTCP", 1 << 20}};
  c["mounts"] = {{{"destination", "/b"}, {"type", "bind"}, {"source", "/srv"},
                  {"options", {"bind", "rro", "noatime", "rnodiratime", "nosymfollow"}}},
                 {{"destination", "/t"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                  {"options", {"tmpcopyup", "rprivate", "noexec", "strictatime", "mode=755"}}}};
  auto b = parse_config(c.dump(), "/b", "ctr", "/d");
  REQUIRE_MESSAGE(b, (b ? "" : b.error().message));
  const auto& s = b->spec;
  REQUIRE(s.devices.size() == 2);
  CHECK(s.devices[0].type == 'p');
  CHECK(s.devices[0].mode == 0600);
  CHECK(s.devices[0].uid == 5);
  CHECK(s.devices[1].gid == 6);
  REQUIRE(s.userns);
  CHECK(s.userns->uid_base == 100000);  // container root's host ids (its directory's owner)
  CHECK(s.userns->gid_base == 300000);
  CHECK(s.userns->uid_map == "0 100000 10\n10 200000 5\n");
  CHECK(s.userns->gid_map == "0 300000 65536\n");
  CHECK(s.limits.kernel_tcp == 1 << 20);
  REQUIRE(s.mounts.size() == 2);
  CHECK(s.mounts[0].recursive == stack::model::BindMount::Recursive::kTopOnly);
  CHECK(s.mounts[0].read_only);
  CHECK(s.mounts[0].atime == "noatime");
  CHECK(s.mounts[0].nodiratime);
  CHECK(s.mounts[0].nosymfollow);
  CHECK(s.mounts[1].tmpcopyup);
  CHECK(s.mounts[1].noexec);
  CHECK(s.mounts[1].atime == "strictatime");
  CHECK(s.mounts[1].options == "mode=755");

  auto refused = [&](auto edit) {
    json d = c;
    edit(d);
    auto r = parse_config(d.dump(), "/b", "ctr", "/d");
    return r ? std::string("accepted") : r.error().message;
  };
  // A device owner the user namespace does not map; a map without container id 0.
  CHECK(refused([](json& d) { d["linux"]["devices"][0]["uid"] = 100; })
            .find("linux.devices (/dev/f).uid: not mapped") == 0);
  CHECK(refused([](json& d) { d["linux"]["uidMappings"][0]["containerID"] = 1; })
            .find("linux.uidMappings: needs a range starting at container id 0") == 0);
  CHECK(refused([](json& d) { d["mounts"][0]["options"].push_back("lazytime"); })
            .find("mounts[0] (/b).options: \"lazytime\" is not supported") == 0);
  CHECK(refused([](json& d) { d["mounts"][1]["options"].push_back("rshared"); }) == "accepted");
  // podman's cgroup mount (rprivate among its options); with the container's own user
  // namespace it is left out with a warning, /sys being mounted over it there.
  json d = c;
  d["mounts"].push_back({{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"},
                         {"options", {"rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"}}});
  b = parse_config(d.dump(), "/b", "ctr", "/d");
  REQUIRE_MESSAGE(b, (b ? "" : b.error().message));
  CHECK(b->spec.mounts.size() == 2);
  REQUIRE(b->warnings.size() == 1);
  CHECK(b->warnings[0].find("mounts (/sys/fs/cgroup): cgroup is not mounted") == 0);
  d["linux"]["namespaces"].erase(d["linux"]["namespaces"].size() - 4);  // the user one
  d["linux"].erase("uidMappings");
  d["linux"].erase("gidMappings");
  d["linux"]["devices"] = json::array();
  b = parse_config(d.dump(), "/b", "ctr", "/d");
  REQUIRE_MESSAGE(b, (b ? "" : b.error().message));
  REQUIRE(b->spec.mounts.size() == 3);
  CHECK(b->spec.mounts[2].kind == stack::model::BindMount::Kind::kCgroup);
  CHECK(b->warnings.empty());
}
