// startContainer hooks: run at `start`, before the container's process, inside its namespaces
// (its root, its hostname), with the state on stdin; a failing one stops the container and the
// process never runs. Run against crun too where installed. Root; containers and cgroups named
// stack-rt-<pid>-..., removed pass or fail.
#include <sstream>
#include <utility>

#include "runtime_support.h"

using namespace stack::test::rt;

TEST_CASE("runtime startContainer hooks run in the container before its process") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("starthook");
    // The process records whether the hook had run when it started.
    json c = config({"sh", "-c", "test -e /tmp/hooked && echo yes > /tmp/saw"}, b.shared, id);
    // /bin/sh and /tmp resolve in the container: BusyBox's shell, the shared directory.
    c["hooks"]["startContainer"] = json::array(
        {json{{"path", "/bin/sh"},
              {"args", {"sh", "-c", "cat > /tmp/state.json && hostname > /tmp/hooked"}},
              {"env", {"PATH=/bin:/usr/bin"}}}});
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto cr = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    CHECK_FALSE(fs::exists(b.shared / "hooked"));
    auto st = rt({"start", id});
    REQUIRE_MESSAGE(st.code == 0, st.err);
    CHECK(wait_status(rt, id, "stopped"));
    CHECK(stack::test::read_text(b.shared / "hooked") == "rt-test\n");
    CHECK(json::parse(stack::test::read_text(b.shared / "state.json"))["id"] == id);
    CHECK(stack::test::read_text(b.shared / "saw") == "yes\n");
    CHECK(rt({"delete", id}).code == 0);

    // A failing one: start fails, the process never runs, delete clears everything.
    std::string id2 = unique("starthook-fail");
    c["linux"]["cgroupsPath"] = "/" + id2;
    c["process"]["args"] = {"sh", "-c", "touch /tmp/ran"};
    c["hooks"]["startContainer"] = json::array({json{{"path", "/bin/false"}}});
    b.write(c);
    b.made.emplace_back(&rt, id2);
    REQUIRE(rt({"create", "--bundle", b.path(), id2}).code == 0);
    // crun's start returns before its init runs the hook (0 here); ours runs it first and
    // fails, as the runtime spec asks ("generate an error").
    auto st2 = rt({"start", id2});
    if (rt.name == "stack-runtime") CHECK(st2.code != 0);
    CHECK(wait_status(rt, id2, "stopped"));
    CHECK_FALSE(fs::exists(b.shared / "ran"));
    CHECK(rt({"delete", "--force", id2}).code == 0);
    CHECK_FALSE(cgroup_exists(id2));
  }
}

namespace {

// A host hook appending its NAME to the host file ORDER, after SCRIPT (which reads the state
// on stdin, or it is read here: crun dies of SIGPIPE writing to a hook that does not read it).
json host_hook(const std::string& name, const fs::path& order,
               const std::string& script = "cat > /dev/null; ") {
  return {{"path", "/bin/sh"},
          {"args", {"sh", "-c", script + "echo " + name + " >> " + order.string()}},
          {"env", {"PATH=/usr/bin:/bin"}}};
}

std::vector<std::string> lines(const fs::path& f) {
  std::vector<std::string> out;
  std::string text = stack::test::read_text(f), line;
  for (char ch : text)
    if (ch == '\n') out.push_back(std::exchange(line, ""));
    else line += ch;
  return out;
}

}  // namespace

TEST_CASE("runtime hooks run at the points of the runtime spec, in order") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("hookorder");
    auto order = b.shared / "order";
    json c = config({"sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.02; done; echo process >> /tmp/order"},
                    b.shared, id);
    // createContainer: in the container's namespaces before pivot_root, so a host path
    // resolves; what it sees is kept for the checks below. Its env and args are the hook's.
    std::string cc = "cat > " + (b.shared / "cc-state").string() + "; readlink /proc/self/ns/mnt > " +
                     (b.shared / "cc-mnt").string() + "; cat /proc/self/mountinfo > " +
                     (b.shared / "cc-mountinfo").string() + "; echo $STACK_RT_HOOK > " +
                     (b.shared / "cc-env").string() + "; ";
    json ccj = host_hook("createContainer", order, cc);
    ccj["env"].push_back("STACK_RT_HOOK=from-env");
    c["hooks"] = {
        {"prestart", {host_hook("prestart", order, "cat > " + (b.shared / "pre-state").string() + "; ")}},
        {"createRuntime", {host_hook("createRuntime", order)}},
        {"createContainer", {ccj}},
        {"startContainer",
         {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "cat > /dev/null; echo startContainer >> /tmp/order"}}}}},
        {"poststart", {host_hook("poststart", order)}},
        {"poststop", {host_hook("poststop", order)}}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto cr = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    CHECK(lines(order) == std::vector<std::string>{"prestart", "createRuntime", "createContainer"});
    auto st = json::parse(rt({"state", id}).out);
    int pid = st["pid"].get<int>();
    // The state on stdin names the container and its init.
    auto pre = json::parse(stack::test::read_text(b.shared / "pre-state"));
    CHECK(pre["id"] == id);
    CHECK(pre["pid"] == pid);
    CHECK(json::parse(stack::test::read_text(b.shared / "cc-state"))["id"] == id);
    CHECK(stack::test::read_text(b.shared / "cc-env") == "from-env\n");
    // createContainer ran in the container's mount namespace, its mounts made: the shared
    // directory bound at the root's /tmp (mountinfo: root field ".../shared", point ".../tmp").
    auto ns = fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/mnt").string();
    CHECK(stack::test::read_text(b.shared / "cc-mnt") == ns + "\n");
    CHECK(ns != fs::read_symlink("/proc/self/ns/mnt").string());
    bool bound = false;
    for (const auto& l : lines(b.shared / "cc-mountinfo")) {
      std::istringstream in(l);
      std::string f[5];
      for (auto& x : f) in >> x;
      bound |= f[3].ends_with("/shared") && f[4].ends_with("/tmp");
    }
    CHECK(bound);
    auto started = rt({"start", id});
    REQUIRE_MESSAGE(started.code == 0, started.err);
    // startContainer and poststart before start returns. crun's start returns before its init
    // runs startContainer (see the test above): there the two may come in either order.
    if (rt.name == "stack-runtime") CHECK(lines(order).size() == 5);
    for (auto until = std::chrono::steady_clock::now() + 10s;
         lines(order).size() < 5 && std::chrono::steady_clock::now() < until;)
      std::this_thread::sleep_for(10ms);
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, id, "stopped"));
    CHECK(rt({"delete", id}).code == 0);
    auto got = lines(order);
    if (rt.name != "stack-runtime" && got.size() > 4 && got[3] == "poststart")
      std::swap(got[3], got[4]);
    CHECK(got == std::vector<std::string>{"prestart", "createRuntime", "createContainer",
                                          "startContainer", "poststart", "process", "poststop"});
  }
}

TEST_CASE("runtime a failing or timed out create hook fails create and leaves nothing") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    for (const char* kind : {"prestart", "createRuntime", "createContainer"}) {
      for (bool timeout : {false, true}) {
        CAPTURE(kind);
        CAPTURE(timeout);
        Bundle b;
        std::string id = unique("hookfail");
        json c = config({"sh", "-c", "touch /tmp/ran"}, b.shared, id);
        // The init's pid, for the check that it is gone.
        json hook = {{"path", "/bin/sh"},
                     {"args", {"sh", "-c", "cat > " + (b.shared / "state").string() +
                                               (timeout ? "; sleep 30" : "; exit 7")}}};
        if (timeout) hook["timeout"] = 1;
        c["hooks"][kind] = json::array({hook});
        b.write(c);
        b.made.emplace_back(&rt, id);
        auto cr = rt({"create", "--bundle", b.path(), id});
        CHECK(cr.code != 0);
        if (rt.name == "stack-runtime") CHECK(cr.err.find(kind) != std::string::npos);
        CHECK(status(rt, id) == "absent");
        CHECK_FALSE(cgroup_exists(id));
        auto st = json::parse(stack::test::read_text(b.shared / "state"));
        int pid = st["pid"].get<int>();
        CHECK_FALSE(alive(pid));
        CHECK_FALSE(fs::exists(b.shared / "ran"));
      }
    }
  }
}
