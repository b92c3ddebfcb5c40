// The seccomp compiler without installing anything: the default program, the cache, Docker's
// JSON format with every feature, and the errors a user sees for a bad profile or option.
// What the programs do to a process is in seccomp_filter_test.cpp.
#include <doctest/doctest.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/stat.h>

#include <set>
#include <thread>

#include "engine/seccomp.h"
#include "engine/seccomp_profile.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::engine;
namespace fs = std::filesystem;

namespace {

// Docker's default capability set (CapEff 00000000a80425fb).
constexpr uint64_t kDockerCaps = 0xa80425fbULL;

std::shared_ptr<const std::string> program_of(const SeccompSpec& spec) {
  auto r = seccomp_program(spec);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  return *r;
}

SeccompSpec profile_spec(std::string json, uint64_t caps = kDockerCaps) {
  SeccompSpec s;
  s.mode = SeccompSpec::Mode::kProfile;
  s.profile_json = std::move(json);
  s.capabilities = caps;
  return s;
}

std::string compile_error(const std::string& json) {
  auto r = seccomp_program(profile_spec(json));
  return r ? "COMPILED" : r.error().message;
}

seccomp::Host host_with_kernel(unsigned major, unsigned minor) {
  auto h = seccomp::current_host();
  REQUIRE(h);
  h->kernel = {major, minor};
  return *h;
}

// A profile using every part of Docker's format.
const char* kEveryFeature = R"({
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
  "syscalls": [
    {"names": ["read", "write", "exit_group", "no_such_syscall_anywhere"], "action": "SCMP_ACT_ALLOW",
     "comment": "an unknown name is skipped"},
    {"name": "getppid", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
    {"names": ["kill"], "action": "SCMP_ACT_KILL"},
    {"names": ["tkill"], "action": "SCMP_ACT_KILL_THREAD"},
    {"names": ["tgkill"], "action": "SCMP_ACT_KILL_PROCESS"},
    {"names": ["pause"], "action": "SCMP_ACT_TRAP"},
    {"names": ["sched_yield"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
    {"names": ["uname"], "action": "SCMP_ACT_LOG"},
    {"names": ["dup3"], "action": "SCMP_ACT_ALLOW", "args": [
      {"index": 0, "value": 10, "op": "SCMP_CMP_NE"},
      {"index": 1, "value": 10, "op": "SCMP_CMP_LT"},
      {"index": 2, "value": 524288, "valueTwo": 524288, "op": "SCMP_CMP_MASKED_EQ"}]},
    {"names": ["lseek"], "action": "SCMP_ACT_ALLOW", "args": [
      {"index": 0, "value": 1, "op": "SCMP_CMP_GE"}, {"index": 0, "value": 100, "op": "SCMP_CMP_LE"},
      {"index": 2, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 4, "op": "SCMP_CMP_GT"}]},
    {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["umount2"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
    {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
    {"names": ["chown32"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["s390x"], "minKernel": "99.0"}}
  ]
})";

}  // namespace

TEST_CASE("the default program is a non-empty sock_filter array and deterministic") {
  auto host = seccomp::current_host();
  REQUIRE(host);
  auto a = seccomp::compile(seccomp::default_profile(), kDockerCaps, *host);
  auto b = seccomp::compile(seccomp::default_profile(), kDockerCaps, *host);
  REQUIRE_MESSAGE(a, (a ? "" : a.error().message));
  REQUIRE(b);
  CHECK(a->size() % sizeof(sock_filter) == 0);
  CHECK(a->size() / sizeof(sock_filter) > 100);  // the allow list is in it
  CHECK(a->size() / sizeof(sock_filter) <= BPF_MAXINSNS);
  CHECK(*a == *b);
  // The public entry point gives the same bytes.
  CHECK(*program_of(SeccompSpec{SeccompSpec::Mode::kDefault, "", kDockerCaps}) == *a);
}

TEST_CASE("a cache hit returns the same program object") {
  SeccompSpec spec{SeccompSpec::Mode::kDefault, "", kDockerCaps};
  auto first = program_of(spec);
  auto second = program_of(spec);
  CHECK(first.get() == second.get());
  // The profile text is ignored in default mode: still the same entry.
  spec.profile_json = "{}";
  CHECK(program_of(spec).get() == first.get());
  // Another capability set is another entry.
  spec.capabilities = kDockerCaps | (uint64_t{1} << CAP_SYS_PTRACE);
  CHECK(program_of(spec).get() != first.get());
}

TEST_CASE("the cache drops programs nobody holds once it is full, and keeps the held ones") {
  auto tiny = [](int n) {
    return profile_spec(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"],
      "action": "SCMP_ACT_ERRNO", "errnoRet": )" +
                        std::to_string(n) + "}]}");
  };
  auto held = program_of(tiny(1));
  std::weak_ptr<const std::string> dropped = program_of(tiny(2));
  CHECK(!dropped.expired());  // the cache holds it
  for (int n = 3; n < 200; ++n) program_of(tiny(n));
  CHECK(dropped.expired());
  CHECK(program_of(tiny(1)).get() == held.get());
}

TEST_CASE("unconfined gives no program") {
  auto r = seccomp_program(SeccompSpec{SeccompSpec::Mode::kUnconfined, "", kDockerCaps});
  REQUIRE(r);
  CHECK(*r == nullptr);
  auto flags = seccomp_filter_flags(SeccompSpec{SeccompSpec::Mode::kUnconfined, "", 0});
  REQUIRE(flags);
  CHECK(*flags == 0u);
}

TEST_CASE("CAP_SYS_ADMIN and the other capability rules change the default program") {
  auto base = program_of(SeccompSpec{SeccompSpec::Mode::kDefault, "", kDockerCaps});
  std::set<std::string> programs{*base};
  for (int cap : {CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_TIME, CAP_SYS_MODULE, CAP_SYS_BOOT,
                  CAP_SYSLOG, CAP_SYS_NICE, CAP_SYS_RAWIO, CAP_SYS_PACCT, CAP_SYS_TTY_CONFIG,
                  CAP_DAC_READ_SEARCH, CAP_BPF, CAP_PERFMON}) {
    CAPTURE(cap);
    auto p = program_of(
        SeccompSpec{SeccompSpec::Mode::kDefault, "", kDockerCaps | (uint64_t{1} << cap)});
    CHECK(programs.insert(*p).second);  // a program no other capability gave
  }
  // A capability no rule mentions gives the same program under another key.
  auto net_admin = program_of(
      SeccompSpec{SeccompSpec::Mode::kDefault, "", kDockerCaps | (uint64_t{1} << CAP_NET_ADMIN)});
  CHECK(*net_admin == *base);
}

TEST_CASE("the ptrace rule follows the kernel version as Docker's minKernel 4.8") {
  auto old_kernel =
      seccomp::compile(seccomp::default_profile(), kDockerCaps, host_with_kernel(4, 4));
  auto new_kernel =
      seccomp::compile(seccomp::default_profile(), kDockerCaps, host_with_kernel(4, 8));
  REQUIRE(old_kernel);
  REQUIRE(new_kernel);
  CHECK(old_kernel->size() < new_kernel->size());
}

TEST_CASE("concurrent first calls compile once and share the program") {
  SeccompSpec spec{SeccompSpec::Mode::kDefault, "", kDockerCaps | (uint64_t{1} << 62)};
  std::vector<const std::string*> seen(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i)
    threads.emplace_back([&, i] {
      auto r = seccomp_program(spec);
      seen[i] = r ? r->get() : nullptr;
    });
  for (auto& t : threads) t.join();
  REQUIRE(seen[0] != nullptr);
  for (auto* p : seen) CHECK(p == seen[0]);
}

TEST_CASE("a JSON profile with every feature of Docker's format compiles") {
  auto spec = profile_spec(kEveryFeature);
  auto program = program_of(spec);
  REQUIRE(program);
  CHECK(program->size() % sizeof(sock_filter) == 0);
  auto flags = seccomp_filter_flags(spec);
  REQUIRE(flags);
  CHECK(*flags == (SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW));
  // includes.caps: CAP_SYS_ADMIN adds the mount rule and drops the umount2 one.
  auto admin =
      program_of(profile_spec(kEveryFeature, kDockerCaps | (uint64_t{1} << CAP_SYS_ADMIN)));
  CHECK(*admin != *program);
}

TEST_CASE("the built-in table written as Docker's JSON reads back to the same program") {
  // A full-size profile in Docker's format (archMap, includes/excludes, masked args, errnoRet).
  std::string json = seccomp::to_docker_json(seccomp::default_profile());
  CHECK(json.find("\"archMap\"") != std::string::npos);
  for (uint64_t caps : {kDockerCaps, kDockerCaps | (uint64_t{1} << CAP_SYS_ADMIN)}) {
    auto builtin = program_of(SeccompSpec{SeccompSpec::Mode::kDefault, "", caps});
    auto from_json = program_of(profile_spec(json, caps));
    CHECK(*from_json == *builtin);
    CHECK(from_json.get() != builtin.get());  // another cache entry
  }
}

TEST_CASE("archMap selects the native architecture's entry") {
  auto with_map = program_of(profile_spec(R"({"defaultAction": "SCMP_ACT_ERRNO",
    "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})"));
  auto listed = program_of(profile_spec(R"({"defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})"));
  CHECK(*with_map == *listed);
}

TEST_CASE("bad profiles are refused with the member and the reason") {
  CHECK(compile_error(R"({"syscalls": []})") ==
        "seccomp profile: defaultAction: missing (to run without a filter, use security_opt: "
        "[seccomp=unconfined])");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_DENY"})")
            .find("seccomp profile: defaultAction: unknown action \"SCMP_ACT_DENY\"") == 0);
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_NOTIFY"})") ==
        "seccomp profile: defaultAction: SCMP_ACT_NOTIFY needs a seccomp agent, which stack does "
        "not run");
  CHECK(
      compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"})") ==
      "seccomp profile: listenerPath: seccomp agents (SCMP_ACT_NOTIFY) are not supported");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO"}, {"names": ["x"], "action": "SCMP_ACT_NOTIFY"}]})") ==
        "seccomp profile: syscalls[1].action: SCMP_ACT_NOTIFY needs a seccomp agent, which stack "
        "does not run");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read",
        "names": ["write"], "action": "SCMP_ACT_ERRNO"}]})") ==
        "seccomp profile: syscalls[0]: 'name' and 'names' are both given: use one");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}]})") ==
        "seccomp profile: archMap: 'architectures' and 'archMap' are both given: use one");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]})")
            .find("seccomp profile: architectures: unknown architecture \"SCMP_ARCH_Z80\"") == 0);
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})") ==
        "seccomp profile: syscalls[0].args[0].index: 6 is above 5");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]})") ==
        "seccomp profile: syscalls[0].args[0].value: must be an unsigned integer");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]})")
            .find("seccomp profile: syscalls[0].args[0].op: unknown operator \"SCMP_CMP_LIKE\"") ==
        0);
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_KILL", "errnoRet": 1}]})") ==
        "seccomp profile: syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a "
        "return value");
  CHECK(compile_error(
            R"({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]})") ==
        "seccomp profile: flags: unknown flag \"SECCOMP_FILTER_FLAG_FAST\"");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "four"}}]})") ==
        "seccomp profile: syscalls[0].includes.minKernel: \"four\" is not a kernel version like "
        "\"4.8\"");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {"names": ["read"]}})") ==
        "seccomp profile: syscalls: must be an array");
  CHECK(compile_error(R"(["SCMP_ACT_ALLOW"])") == "seccomp profile: a profile is a JSON object");
  // A misspelt member would drop rules without a word: refused.
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "sycalls": []})") ==
        "seccomp profile: sycalls: unknown member (expected one of defaultAction, "
        "defaultErrnoRet, architectures, archMap, flags, listenerPath, listenerMetadata, "
        "syscalls)");
  CHECK(compile_error(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "includes": {"cap": ["CAP_SYS_ADMIN"]}}]})") ==
        "seccomp profile: syscalls[0].includes.cap: unknown member (expected one of caps, "
        "arches, minKernel)");
}

TEST_CASE("security_opt selects the mode, and other options are left alone") {
  test::TempDir dir{"stack-seccomp"};
  auto mode_of = [&](std::vector<std::string> opts) {
    auto r = seccomp_from_security_opt(opts, dir.path(), kDockerCaps);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->capabilities == kDockerCaps);
    return r->mode;
  };
  CHECK(mode_of({}) == SeccompSpec::Mode::kDefault);
  CHECK(mode_of({"no-new-privileges:true", "label=disable", "apparmor=unconfined"}) ==
        SeccompSpec::Mode::kDefault);
  CHECK(mode_of({"seccomp=unconfined"}) == SeccompSpec::Mode::kUnconfined);
  CHECK(mode_of({"seccomp:unconfined"}) == SeccompSpec::Mode::kUnconfined);
  CHECK(mode_of({"seccomp=builtin"}) == SeccompSpec::Mode::kDefault);
  CHECK(mode_of({"seccomp=unconfined", "seccomp=builtin"}) == SeccompSpec::Mode::kDefault);

  test::write_text(dir / "profiles/p.json", kEveryFeature);
  auto r = seccomp_from_security_opt({"seccomp=profiles/p.json"}, dir.path(), kDockerCaps);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->mode == SeccompSpec::Mode::kProfile);
  CHECK(r->profile_json == kEveryFeature);
  // Read now, compiled now: the start finds it in the cache.
  CHECK(program_of(*r).get() == program_of(*r).get());
  test::write_text(dir / "a=b:c.json", kEveryFeature);
  auto absolute = seccomp_from_security_opt({"seccomp:" + (dir / "a=b:c.json").string()},
                                            "/nonexistent", kDockerCaps);
  REQUIRE_MESSAGE(absolute, (absolute ? "" : absolute.error().message));
  CHECK(absolute->profile_json == kEveryFeature);
  CHECK(mode_of({"seccompx=unconfined", "label:seccomp=unconfined"}) ==
        SeccompSpec::Mode::kDefault);
}

TEST_CASE("a bad profile file is named with the JSON position, and its bytes are not echoed") {
  test::TempDir dir{"stack-seccomp"};
  auto error_of = [&](const std::string& opt) {
    auto r = seccomp_from_security_opt({opt}, dir.path(), kDockerCaps);
    return r ? "LOADED" : r.error().message;
  };
  const std::string file = (dir / "bad.json").string();
  test::write_text(
      dir / "bad.json",
      "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": "
      "[\"read\"] \"action\": \"SCMP_ACT_ALLOW\"}\n  ]\n}\n");
  CHECK(error_of("seccomp=bad.json") ==
        "seccomp profile " + file +
            ":4:24: invalid JSON: syntax error while parsing object - unexpected string literal; "
            "expected '}'");
  test::write_text(dir / "shadow", "root:$6$s3cr3tHash:19000:0:99999:7:::\n");
  std::string shadow = error_of("seccomp=shadow");
  CHECK(shadow.find("seccomp profile " + (dir / "shadow").string() + ":1:1: invalid JSON") == 0);
  CHECK(shadow.find("s3cr3t") == std::string::npos);
  test::write_text(
      dir / "semantic.json",
      R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]})");
  CHECK(error_of("seccomp=semantic.json")
            .find("seccomp profile " + (dir / "semantic.json").string() +
                  ": syscalls[0].action: unknown action \"ALLOW\"") == 0);
  CHECK(error_of("seccomp=missing.json") ==
        "seccomp profile " + (dir / "missing.json").string() + ": open: No such file or directory");
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  CHECK(error_of("seccomp=fifo") ==
        "seccomp profile " + (dir / "fifo").string() + ": not a regular file");
  CHECK(error_of("seccomp=") ==
        "security_opt \"seccomp=\": seccomp needs unconfined, builtin or a file");
}
