// `exec --process FILE`: the file is a whole runtime-spec process, as runc and crun take it. Each
// field is checked from inside the exec'd process (/proc/self/status, /proc/self/limits, a file
// it creates), against crun too. Root; containers and cgroups named stack-rt-<pid>-exec-...,
// removed pass or fail.
#include <unistd.h>

#include <functional>

#include "runtime_support.h"

using namespace stack::test::rt;

namespace {

// A running container of RT whose config.json is CONFIG; EXEC runs a process.json (the
// container's own process, edited) in it and gives what it printed.
struct Running {
  const Oci& rt;
  Bundle b;
  std::string id = unique("exec");
  json config_json;
  Running(const Oci& r, const std::function<void(json&)>& edit) : rt(r) {
    config_json = config(kWaitForGo, b.shared, id);
    edit(config_json);
    b.write(config_json);
    b.made.emplace_back(&rt, id);
    auto c = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(c.code == 0, c.err);
    REQUIRE(rt({"start", id}).code == 0);
    REQUIRE(wait_status(rt, id, "running"));
  }
  ~Running() { stack::test::write_text(b.shared / "go", ""); }
  RunResult exec(const std::vector<std::string>& args, const std::function<void(json&)>& edit) {
    json p = config_json["process"];
    p["args"] = args;
    edit(p);
    auto file = b.dir / "process.json";
    stack::test::write_text(file, p.dump());
    return rt({"exec", "--process", file.string(), id});
  }
};

// The value of FIELD ("CapEff", "NoNewPrivs") in /proc/self/status's text STATUS.
std::string status_field(const std::string& status, const std::string& field) {
  auto at = status.find("\n" + field + ":");
  if (at == std::string::npos) return "";
  at += field.size() + 2;
  while (at < status.size() && (status[at] == '\t' || status[at] == ' ')) at++;
  return status.substr(at, status.find('\n', at) - at);
}

}  // namespace

TEST_CASE("runtime exec --process honours user.umask, capabilities, noNewPrivileges, rlimits") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    // The container's own process: no umask, three capabilities, no_new_privs off, no rlimits;
    // each exec asks for something else.
    Running c(rt, [](json& cfg) { cfg["process"]["noNewPrivileges"] = false; });

    auto umask = c.exec({"sh", "-c", "touch /tmp/made; stat -c %a /tmp/made"},
                        [](json& p) { p["user"]["umask"] = 027; });
    REQUIRE_MESSAGE(umask.code == 0, umask.err);
    CHECK(umask.out == "640\n");

    // CAP_KILL (5) alone, in all five sets where a set is given.
    auto caps = c.exec({"cat", "/proc/self/status"}, [](json& p) {
      json kill = {"CAP_KILL"};
      p["capabilities"] = {{"bounding", kill}, {"effective", kill}, {"permitted", kill}};
    });
    REQUIRE_MESSAGE(caps.code == 0, caps.err);
    CHECK(status_field(caps.out, "CapEff") == "0000000000000020");
    CHECK(status_field(caps.out, "CapPrm") == "0000000000000020");
    CHECK(status_field(caps.out, "CapBnd") == "0000000000000020");
    CHECK(status_field(caps.out, "CapInh") == "0000000000000000");
    CHECK(status_field(caps.out, "CapAmb") == "0000000000000000");

    // Without capabilities: the container's (CAP_KILL, CAP_NET_BIND_SERVICE, CAP_CHOWN).
    auto kept = c.exec({"cat", "/proc/self/status"}, [](json& p) { p.erase("capabilities"); });
    REQUIRE_MESSAGE(kept.code == 0, kept.err);
    CHECK(status_field(kept.out, "CapEff") == "0000000000000421");
    CHECK(status_field(kept.out, "CapBnd") == "0000000000000421");

    auto nnp = c.exec({"cat", "/proc/self/status"}, [](json& p) { p["noNewPrivileges"] = true; });
    REQUIRE_MESSAGE(nnp.code == 0, nnp.err);
    CHECK(status_field(nnp.out, "NoNewPrivs") == "1");
    auto without = c.exec({"cat", "/proc/self/status"}, [](json&) {});
    REQUIRE_MESSAGE(without.code == 0, without.err);
    CHECK(status_field(without.out, "NoNewPrivs") == "0");

    auto limits = c.exec({"grep", "Max open files", "/proc/self/limits"}, [](json& p) {
      p["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 123}, {"hard", 456}}};
    });
    REQUIRE_MESSAGE(limits.code == 0, limits.err);
    CHECK(limits.out.find(" 123 ") != std::string::npos);
    CHECK(limits.out.find(" 456 ") != std::string::npos);
  }
}

TEST_CASE("runtime exec --process without a user runs as root, not as the container's user") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Running c(rt, [](json& cfg) {
      cfg["process"]["user"] = {{"uid", 1000}, {"gid", 1000}, {"additionalGids", {5}}};
      json kill = {"CAP_KILL"};
      cfg["process"]["capabilities"] = {
          {"bounding", kill}, {"effective", kill}, {"permitted", kill}};
    });
    auto as_user = c.exec({"sh", "-c", "id -u; id -G"}, [](json&) {});
    REQUIRE_MESSAGE(as_user.code == 0, as_user.err);
    CHECK(as_user.out == "1000\n1000 5\n");
    auto unset = c.exec({"sh", "-c", "id -u; id -G"}, [](json& p) { p.erase("user"); });
    REQUIRE_MESSAGE(unset.code == 0, unset.err);
    CHECK(unset.out == "0\n0\n");
  }
}

TEST_CASE("runtime exec --process sets process.execCPUAffinity") {
  STACK_REQUIRE_ROOT();
  if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    stack::test::report_skip("needs two CPUs online");
    return;
  }
  // crun 1.8.1 predates the field (runtime-spec 1.2) and ignores it: stack-runtime alone.
  MESSAGE("checked against stack-runtime only: crun 1.8.1 ignores execCPUAffinity");
  TempDir roots("stack-rt-roots");
  auto all = runtimes(roots.path());  // Running keeps a reference to its runtime
  Running c(all.front(), [](json&) {});
  auto cpus = [&](const json& affinity) {
    return c.exec({"grep", "Cpus_allowed_list", "/proc/self/status"},
                  [&](json& p) { p["execCPUAffinity"] = affinity; });
  };
  auto final_only = cpus({{"final", "1"}});
  REQUIRE_MESSAGE(final_only.code == 0, final_only.err);
  CHECK(final_only.out == "Cpus_allowed_list:\t1\n");
  auto initial_only = cpus({{"initial", "0"}});
  REQUIRE_MESSAGE(initial_only.code == 0, initial_only.err);
  CHECK(initial_only.out == "Cpus_allowed_list:\t0\n");
  auto both = cpus({{"initial", "0"}, {"final", "1"}});
  CHECK(both.code != 0);
  CHECK(both.err.find("process.execCPUAffinity: initial and final differ") != std::string::npos);
  // Without it: all of them, as the caller had.
  auto none = c.exec({"grep", "Cpus_allowed_list", "/proc/self/status"}, [](json&) {});
  CHECK(none.out != final_only.out);
}
