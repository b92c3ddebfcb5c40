// Concurrent calls on one container id (conmon, podman and a user racing): create, kill and
// delete of the same id serialised by the per-id lock, `state` and `list` consistent meanwhile.
// Run against crun too where installed. Root; containers and cgroups named stack-rt-<pid>-...,
// state roots in a temp dir, all removed pass or fail.
#include "runtime_support.h"

using namespace stack::test::rt;

namespace {

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// N copies of the runtime's ARGS started at once in the background; their exit codes, in
// order. Each one's stdio is /dev/null (a created container keeps its creator's).
std::vector<int> at_once(const Oci& rt, const std::vector<std::vector<std::string>>& calls,
                         const fs::path& dir) {
  std::string script;
  for (size_t i = 0; i < calls.size(); i++) {
    std::string cmd;
    for (const auto& a : rt.prefix) cmd += quoted(a) + " ";
    for (const auto& a : calls[i]) cmd += quoted(a) + " ";
    script += "(" + cmd + "</dev/null >/dev/null 2>" + quoted((dir / ("err" + std::to_string(i))).string()) +
              "; echo $? > " + quoted((dir / ("rc" + std::to_string(i))).string()) + ") &\n";
  }
  script += "wait\n";
  REQUIRE(stack::test::run({"/bin/sh", "-c", script}).code == 0);
  std::vector<int> codes;
  for (size_t i = 0; i < calls.size(); i++)
    codes.push_back(std::stoi(stack::test::read_text(dir / ("rc" + std::to_string(i)))));
  return codes;
}

// `list --format json` parses, and holds ID exactly WANT times, each time with a status that
// `state` could give.
void check_list(const Oci& rt, const std::string& id, int want) {
  auto l = rt({"list", "--format", "json"});
  REQUIRE_MESSAGE(l.code == 0, l.err);
  int seen = 0;
  auto arr = json::parse(l.out.empty() ? "[]" : l.out);
  if (arr.is_null()) arr = json::array();  // crun prints null for none
  for (const auto& s : arr)
    if (s["id"] == id) {
      seen++;
      CHECK(s["status"].get<std::string>() != "");
    }
  CHECK(seen == want);
}

}  // namespace

TEST_CASE("runtime concurrent create, kill and delete of one id are serialised") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("lock");
    b.write(config(kWaitForGo, b.shared, id));
    b.made.emplace_back(&rt, id);

    // Six creates of one id at once: one makes it, the others are refused, nothing is torn.
    TempDir out("stack-rt-race");
    std::vector<std::vector<std::string>> creates(6, {"create", "--bundle", b.path(), id});
    auto codes = at_once(rt, creates, out.path());
    CHECK(std::count(codes.begin(), codes.end(), 0) == 1);
    CHECK(status(rt, id) == "created");
    check_list(rt, id, 1);
    REQUIRE(rt({"start", id}).code == 0);
    REQUIRE(wait_status(rt, id, "running"));

    // Deletes (--force) and kills at once, with list read meanwhile: nothing is left. A
    // delete --force racing another may fail with crun ("cannot open directory"); ours
    // waits for the other and succeeds (the container is gone once it returns).
    std::vector<std::vector<std::string>> calls;
    for (int i = 0; i < 5; i++) {
      calls.push_back({"delete", "--force", id});
      calls.push_back({"kill", id, "KILL"});
      calls.push_back({"list", "--format", "json"});
    }
    codes = at_once(rt, calls, out.path());
    for (size_t i = 0; i < calls.size(); i++)
      if (calls[i][0] == "delete" && rt.name == "stack-runtime")
        CHECK_MESSAGE(codes[i] == 0,
                      stack::test::read_text(out / ("err" + std::to_string(i))));
      else if (calls[i][0] == "list")
        CHECK(codes[i] == 0);
    CHECK(status(rt, id) == "absent");
    check_list(rt, id, 0);
    CHECK_FALSE(cgroup_exists(id));
  }
}

TEST_CASE("stack-runtime leaves no cgroup parent of its default cgroupsPath") {
  // Without linux.cgroupsPath a container's cgroup is stack-runtime/<id>; the parent once
  // stayed in every hierarchy after the last container was deleted.
  STACK_REQUIRE_ROOT();
  if (fs::exists("/sys/fs/cgroup/memory/stack-runtime")) {
    stack::test::report_skip("stack-runtime/ cgroups in use by other containers");
    return;
  }
  TempDir roots("stack-rt-roots");
  auto rt = runtimes(roots.path()).front();
  Bundle b;
  std::string id = unique("defcg");
  json c = config({"true"}, b.shared, id);
  c["linux"].erase("cgroupsPath");
  b.write(c);
  b.made.emplace_back(&rt, id);
  auto r = rt({"run", "--bundle", b.path(), id});
  CHECK_MESSAGE(r.code == 0, r.err);
  for (const char* h : {"memory", "pids", "cpu", "freezer", "devices"})
    CHECK_FALSE(fs::exists(fs::path("/sys/fs/cgroup") / h / "stack-runtime"));
}
