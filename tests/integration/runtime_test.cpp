// stack-runtime against the runtime spec's lifecycle, with the very same assertions run against
// crun where it is installed, so the test itself is checked against a trusted runtime. Root:
// containers, cgroups (stack-rt-<pid>-<n>), state roots in a temp dir; all removed pass or fail.
// crun here needs the hybrid layout's cgroup2 tree hidden: each crun call runs in a private
// mount namespace with a tmpfs over /sys/fs/cgroup/unified (as bench/bench_start.cpp does).
#include "runtime_support.h"

using namespace stack::test::rt;

TEST_CASE("runtime state after create, start and exit, with the pid file") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("life");
    b.write(config(kWaitForGo, b.shared, id));
    b.made.emplace_back(&rt, id);
    auto pid_file = b.dir / "pid";
    auto c = rt({"create", "--bundle", b.path(), "--pid-file", pid_file.string(), id});
    REQUIRE_MESSAGE(c.code == 0, c.err);
    auto st = json::parse(rt({"state", id}).out);
    CHECK(st["status"] == "created");
    CHECK(st["id"] == id);
    CHECK(st["bundle"] == b.path());
    CHECK(st["ociVersion"].get<std::string>().rfind("1.", 0) == 0);
    REQUIRE(fs::exists(pid_file));
    CHECK(std::stoi(stack::test::read_text(pid_file)) == st["pid"].get<int>());
    CHECK(fs::exists("/proc/" + std::to_string(st["pid"].get<int>())));
    CHECK_FALSE(fs::exists(b.shared / "running"));  // nothing of the process runs yet

    auto s = rt({"start", id});
    REQUIRE_MESSAGE(s.code == 0, s.err);
    CHECK(status(rt, id) == "running");
    CHECK(rt({"start", id}).code != 0);  // a running container cannot be started again
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, id, "stopped"));
    CHECK(fs::exists(b.shared / "running"));
    auto d = rt({"delete", id});
    CHECK_MESSAGE(d.code == 0, d.err);
    CHECK(status(rt, id) == "absent");
    CHECK_FALSE(cgroup_exists(id));
  }
}

TEST_CASE("runtime kill of a created container") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("kill");
    b.write(config(kWaitForGo, b.shared, id));
    b.made.emplace_back(&rt, id);
    REQUIRE(rt({"create", "--bundle", b.path(), id}).code == 0);
    int pid = json::parse(rt({"state", id}).out)["pid"].get<int>();
    auto k = rt({"kill", id, "KILL"});
    CHECK_MESSAGE(k.code == 0, k.err);
    CHECK(wait_status(rt, id, "stopped"));
    CHECK(rt({"start", id}).code != 0);  // a stopped container cannot be started
    CHECK(rt({"delete", id}).code == 0);
    CHECK_FALSE(alive(pid));
    CHECK_FALSE(fs::exists(b.shared / "running"));
    CHECK_FALSE(cgroup_exists(id));
  }
}

TEST_CASE("runtime delete of a running container is refused without force") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("del");
    b.write(config(kWaitForGo, b.shared, id));
    b.made.emplace_back(&rt, id);
    REQUIRE(rt({"create", "--bundle", b.path(), id}).code == 0);
    REQUIRE(rt({"start", id}).code == 0);
    auto d = rt({"delete", id});
    CHECK(d.code != 0);
    CHECK(status(rt, id) == "running");
    auto f = rt({"delete", "-f", id});  // runc's short form, as crun takes it too
    CHECK_MESSAGE(f.code == 0, f.err);
    CHECK(status(rt, id) == "absent");
    CHECK_FALSE(cgroup_exists(id));
    CHECK(rt({"kill", id, "TERM"}).code != 0);  // gone: nothing to signal
  }
}

TEST_CASE("runtime pause and resume through the freezer") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("pause");
    b.write(config(kWaitForGo, b.shared, id));
    b.made.emplace_back(&rt, id);
    REQUIRE(rt({"create", "--bundle", b.path(), id}).code == 0);
    REQUIRE(rt({"start", id}).code == 0);
    auto p = rt({"pause", id});
    CHECK_MESSAGE(p.code == 0, p.err);
    CHECK(status(rt, id) == "paused");
    CHECK(stack::test::read_text("/sys/fs/cgroup/freezer/" + id + "/freezer.state") ==
          "FROZEN\n");
    auto r = rt({"resume", id});
    CHECK_MESSAGE(r.code == 0, r.err);
    CHECK(status(rt, id) == "running");
    CHECK(rt({"pause", id}).code == 0);
    auto d = rt({"delete", "--force", id});  // a frozen container is killed all the same
    CHECK_MESSAGE(d.code == 0, d.err);
    CHECK(status(rt, id) == "absent");
    CHECK_FALSE(cgroup_exists(id));
  }
}

TEST_CASE("runtime hooks run in order with the state on stdin") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("hooks");
    json c = config({"true"}, b.shared, id);
    auto hook = [&](const std::string& name) {
      // Each hook appends its name to "order" and keeps the state it read.
      std::string out = (b.dir / name).string();
      return json{{"path", "/bin/sh"},
                  {"args", {"/bin/sh", "-c", "cat > " + out + ".json && echo " + name + " >> " +
                                            (b.dir / "order").string()}}};
    };
    for (const char* k : {"prestart", "createRuntime", "poststart", "poststop"})
      c["hooks"][k] = json::array({hook(k)});
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto cr = rt({"create", "--bundle", b.path(), id});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    CHECK(stack::test::read_text(b.dir / "order") == "prestart\ncreateRuntime\n");
    auto st = json::parse(stack::test::read_text(b.dir / "prestart.json"));
    CHECK(st["id"] == id);
    CHECK(st["bundle"] == b.path());
    CHECK(st["pid"].get<int>() == json::parse(rt({"state", id}).out)["pid"].get<int>());
    REQUIRE(rt({"start", id}).code == 0);
    CHECK(wait_status(rt, id, "stopped"));
    REQUIRE(rt({"delete", id}).code == 0);
    CHECK(stack::test::read_text(b.dir / "order") ==
          "prestart\ncreateRuntime\npoststart\npoststop\n");
    CHECK(json::parse(stack::test::read_text(b.dir / "poststart.json"))["id"] == id);
    CHECK(json::parse(stack::test::read_text(b.dir / "poststop.json"))["id"] == id);
    // The status each hook reads, as runtime-tools' hooks_stdin checks it.
    CHECK(st["status"] == "created");
    CHECK(json::parse(stack::test::read_text(b.dir / "poststart.json"))["status"] == "running");
    CHECK(json::parse(stack::test::read_text(b.dir / "poststop.json"))["status"] == "stopped");
  }
}

TEST_CASE("runtime failing poststart and poststop hooks warn, and the hooks after them run") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("postfail");
    json c = config({"true"}, b.shared, id);
    auto mark = [&](const std::string& name) {
      return json{{"path", "/bin/sh"},
                  {"args", {"/bin/sh", "-c",
                            "cat >/dev/null; echo " + name + " >> " + (b.dir / "order").string()}}};
    };
    // runtime spec: "the runtime MUST log a warning, but the remaining hooks and lifecycle
    // continue as if the hook had succeeded".
    // Every hook reads its stdin: crun dies of SIGPIPE writing the state to a hook that exited
    // before reading it.
    json failing = {{"path", "/bin/sh"}, {"args", {"/bin/sh", "-c", "cat >/dev/null; exit 1"}}};
    for (const char* k : {"poststart", "poststop"})
      c["hooks"][k] = json::array({failing, mark(k)});
    b.write(c);
    b.made.emplace_back(&rt, id);
    REQUIRE(rt({"create", "--bundle", b.path(), id}).code == 0);
    auto started = rt({"start", id});
    CHECK_MESSAGE(started.code == 0, started.err);
    CHECK(wait_status(rt, id, "stopped"));
    auto deleted = rt({"delete", id});
    CHECK_MESSAGE(deleted.code == 0, deleted.err);
    CHECK(status(rt, id) == "absent");
    CHECK(stack::test::read_text(b.dir / "order") == "poststart\npoststop\n");
  }
}

TEST_CASE("runtime failing prestart hook stops the create") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("prefail");
    json c = config({"sh", "-c", "touch /tmp/ran"}, b.shared, id);
    c["hooks"]["prestart"] = json::array({json{{"path", "/bin/false"}}});
    b.write(c);
    b.made.emplace_back(&rt, id);
    auto cr = rt({"create", "--bundle", b.path(), id});
    CHECK(cr.code != 0);
    CHECK(status(rt, id) == "absent");
    CHECK(rt({"start", id}).code != 0);
    CHECK_FALSE(fs::exists(b.shared / "ran"));
    CHECK_FALSE(cgroup_exists(id));
  }
}

TEST_CASE("stack-runtime run passes the exit code and the output, and refuses unknown fields") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("run");
    b.write(config({"sh", "-c", "echo out-$(hostname); exit 7"}, b.shared, id));
    b.made.emplace_back(&rt, id);
    auto r = rt({"run", "--bundle", b.path(), id});
    CHECK(r.code == 7);
    CHECK(r.out == "out-rt-test\n");
    CHECK(status(rt, id) == "absent");
    CHECK_FALSE(cgroup_exists(id));
  }
  // What the engine cannot do is refused by the field's name, with nothing left behind.
  auto rt = runtimes(roots.path()).front();
  Bundle b;
  std::string id = unique("refuse");
  json c = config({"true"}, b.shared, id);
  c["linux"]["resources"]["hugepageLimits"] = {{{"pageSize", "2MB"}, {"limit", 2097152}}};
  b.write(c);
  b.made.emplace_back(&rt, id);
  auto log = b.dir / "log.json";
  auto r = stack::test::run({std::string(STACK_BUILD_DIR) + "/stack-runtime", "--root",
                             (roots / "stack-root").string(), "--log", log.string(),
                             "--log-format", "json", "create", "--bundle", b.path(), id});
  CHECK(r.code != 0);
  CHECK(r.err.find("linux.resources.hugepageLimits") != std::string::npos);
  auto line = json::parse(stack::test::read_text(log));
  CHECK(line["level"] == "error");
  CHECK(line["msg"].get<std::string>().find("linux.resources.hugepageLimits") !=
        std::string::npos);
  CHECK(status(rt, id) == "absent");
  CHECK_FALSE(cgroup_exists(id));
}


TEST_CASE("podman runs containers with stack-runtime: run --rm, -d and stop, exec, rm -f") {
  STACK_REQUIRE_ROOT();
  if (!fs::exists("/usr/bin/podman") || !fs::exists("/usr/bin/conmon")) {
    stack::test::report_skip("podman or conmon not installed");
    return;
  }
  TempDir dir("stack-rt-podman");
  Podman podman(dir.path());
  std::string image = "localhost/stack-rt-bb-" + std::to_string(getpid()) + ":latest";
  podman.import_busybox(image);
  std::string name = "stack-rt-" + std::to_string(getpid());
  PodmanCgroups cgroups;
  struct Cleanup {
    const Podman& p;
    std::string name;
    ~Cleanup() { p({"rm", "-f", "-t", "0", name}); }
  } cleanup{podman, name};

  auto r = podman({"run", "--rm", "--network", "none", image, "sh", "-c", "echo hi; exit 5"});
  CHECK(r.code == 5);
  CHECK(r.out == "hi\n");
  CHECK(podman({"run", "--rm", "--network", "none", image, "true"}).code == 0);

  auto d = podman({"run", "-d", "--name", name, "--network", "none", image, "sleep", "1000"});
  REQUIRE_MESSAGE(d.code == 0, d.err);
  std::string id = d.out.substr(0, d.out.find('\n'));
  CHECK(fs::exists("/run/stack-runtime/" + id + "/state.json"));
  auto e = podman({"exec", name, "sh", "-c", "echo in-$(hostname); exit 4"});
  CHECK(e.code == 4);
  CHECK(e.out == "in-" + id.substr(0, 12) + "\n");
  auto s = podman({"stop", "-t", "5", name});
  CHECK_MESSAGE(s.code == 0, s.err);
  auto st = podman({"inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name});
  CHECK(st.out == "exited 143\n");
  CHECK(podman({"start", name}).code == 0);
  CHECK(podman({"inspect", "--format", "{{.State.Status}}", name}).out == "running\n");
  auto rm = podman({"rm", "-f", "-t", "0", name});
  CHECK_MESSAGE(rm.code == 0, rm.err);
  CHECK(podman({"ps", "-a", "--format", "{{.Names}}"}).out.find(name) == std::string::npos);
  CHECK_FALSE(fs::exists("/run/stack-runtime/" + id));
  CHECK_FALSE(fs::exists("/sys/fs/cgroup/memory/libpod_parent/libpod-" + id));
  podman({"rmi", "-f", image});
}

TEST_CASE("stack-runtime works where its caller hid the cgroup2 tree under a tmpfs") {
  // podman and crun need the hybrid layout's unified/ hidden here, and a runtime they start
  // inherits that view. The v1 driver once treated the tmpfs as a hierarchy: it wrote
  // cgroup.procs there as a plain file, then spun on an rmdir that could never succeed.
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  // sh -c SCRIPT BINARY ROOT ARGS...: $0 is the binary, $1 the state root, the rest ours.
  Oci hidden{"stack-runtime (unified hidden)",
             {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
              "umount -l /sys/fs/cgroup/unified 2>/dev/null; "
              "mount -t tmpfs -o size=1m stack-rt-hide /sys/fs/cgroup/unified && "
              "r=$1; shift; exec \"$0\" --root \"$r\" \"$@\"",
              std::string(STACK_BUILD_DIR) + "/stack-runtime", (roots / "stack-root").string()}};
  Bundle b;
  std::string id = unique("hidden");
  b.write(config({"sh", "-c", "exit 6"}, b.shared, id));
  b.made.emplace_back(&hidden, id);
  auto start = std::chrono::steady_clock::now();
  auto r = hidden({"run", "--bundle", b.path(), id});
  CHECK_MESSAGE(r.code == 6, r.err);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(status(hidden, id) == "absent");
  CHECK_FALSE(cgroup_exists(id));
}
