// linux.namespaces[].path: a container joining another's network, pid and ipc namespaces by
// path (podman's pods, --network ns:PATH), the kinds the engine cannot join refused by name.
// Run against crun too where installed. Root; containers and cgroups named stack-rt-<pid>-...,
// removed pass or fail.
#include "runtime_support.h"

using namespace stack::test::rt;

namespace {

std::string ns_link(int pid, const char* kind) {
  return fs::read_symlink(fs::path("/proc") / std::to_string(pid) / "ns" / kind).string();
}

}  // namespace

TEST_CASE("runtime joins network, pid and ipc namespaces by path") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string first = unique("nsa");
    b.write(config(kWaitForGo, b.shared, first));
    b.made.emplace_back(&rt, first);
    REQUIRE(rt({"create", "--bundle", b.path(), first}).code == 0);
    REQUIRE(rt({"start", first}).code == 0);
    REQUIRE(wait_status(rt, first, "running"));
    int pid = json::parse(rt({"state", first}).out)["pid"].get<int>();

    Bundle b2;
    std::string second = unique("nsb");
    json c = config({"sh", "-c",
                     "for k in net pid ipc; do readlink /proc/self/ns/$k; done > /tmp/ns; "
                     "ls /proc | grep -c '^[0-9]' >> /tmp/ns"},
                    b2.shared, second);
    auto proc_ns = [&](const char* k) { return "/proc/" + std::to_string(pid) + "/ns/" + k; };
    c["linux"]["namespaces"] = {{{"type", "pid"}, {"path", proc_ns("pid")}},
                                {{"type", "network"}, {"path", proc_ns("net")}},
                                {{"type", "ipc"}, {"path", proc_ns("ipc")}},
                                {{"type", "uts"}},
                                {{"type", "mount"}}};
    b2.write(c);
    b2.made.emplace_back(&rt, second);
    auto r = rt({"run", "--bundle", b2.path(), second});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    auto lines = stack::test::read_text(b2.shared / "ns");
    CHECK(lines.find(ns_link(pid, "net") + "\n" + ns_link(pid, "pid") + "\n" +
                     ns_link(pid, "ipc") + "\n") == 0);
    // The first container's processes are seen from the second: more than its own shell's.
    CHECK(std::stoi(lines.substr(lines.rfind('\n', lines.size() - 2) + 1)) > 2);
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, first, "stopped"));
  }
  // What the engine cannot join is refused by the field.
  auto rt = runtimes(roots.path()).front();
  Bundle b;
  std::string id = unique("nsuts");
  json c = config({"true"}, b.shared, id);
  c["linux"]["namespaces"][3] = {{"type", "uts"}, {"path", "/proc/1/ns/uts"}};
  b.write(c);
  b.made.emplace_back(&rt, id);
  auto r = rt({"create", "--bundle", b.path(), id});
  CHECK(r.code != 0);
  CHECK(r.err.find("linux.namespaces (uts)") != std::string::npos);
  CHECK(status(rt, id) == "absent");
}
