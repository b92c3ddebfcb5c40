// stack-runtime against the runtime spec's lifecycle, with the very same assertions run against
// crun where it is installed, so the test itself is checked against a trusted runtime. Root:
// containers, cgroups (stack-rt-<pid>-<n>), state roots in a temp dir; all removed pass or fail.
// crun here needs the hybrid layout's cgroup2 tree hidden: each crun call runs in a private
// mount namespace with a tmpfs over /sys/fs/cgroup/unified (as bench/bench_start.cpp does).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using stack::test::RunResult;
using stack::test::TempDir;

namespace {

struct Oci {
  std::string name;
  std::vector<std::string> prefix;
  RunResult operator()(const std::vector<std::string>& args) const {
    auto argv = prefix;
    argv.insert(argv.end(), args.begin(), args.end());
    if (args.empty() || args[0] != "create") return stack::test::run(argv);
    // A created container keeps its creator's stdio (conmon's pipes, as with runc): never
    // the pipes this test reads to their end.
    auto err = fs::temp_directory_path() / ("stack-rt-err-" + std::to_string(getpid()));
    argv.insert(argv.begin(), {"/bin/sh", "-c", "exec \"$@\" </dev/null >/dev/null 2>" + err.string(),
                               "sh"});
    auto r = stack::test::run(argv);
    std::error_code ec;
    if (fs::exists(err, ec)) r.err = stack::test::read_text(err);
    fs::remove(err, ec);
    return r;
  }
};


// stack-runtime, and crun when installed, each with its own state root under DIR.
std::vector<Oci> runtimes(const fs::path& dir) {
  std::vector<Oci> out;
  out.push_back({"stack-runtime",
                 {std::string(STACK_BUILD_DIR) + "/stack-runtime", "--root",
                  (dir / "stack-root").string()}});
  if (fs::exists("/usr/bin/crun")) {
    out.push_back({"crun",
                   {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                    "umount -l /sys/fs/cgroup/unified 2>/dev/null; "
                    "mount -t tmpfs -o size=1m stack-rt-hide /sys/fs/cgroup/unified && "
                    "exec /usr/bin/crun --root \"$0\" \"$@\"",
                    (dir / "crun-root").string()}});
  } else {
    MESSAGE("crun not installed: these assertions are checked against stack-runtime only");
  }
  return out;
}

std::string unique(const std::string& what) {
  static int n = 0;
  return "stack-rt-" + std::to_string(getpid()) + "-" + what + "-" + std::to_string(n++);
}

// A bundle running ARGS in BusyBox, with the host directory SHARED at /tmp and its own cgroup
// named like the container.
json config(const std::vector<std::string>& args, const fs::path& shared, const std::string& id) {
  json caps = {"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"};
  return {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", args},
        {"env", {"PATH=/bin:/sbin:/usr/bin"}},
        {"cwd", "/"},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", stack::test::busybox_rootfs().string()}, {"readonly", true}}},
      {"hostname", "rt-test"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
         {"options", {"nosuid", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
        {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "shm"},
         {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
        {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"},
         {"options", {"nosuid", "noexec", "nodev", "ro"}}},
        {{"destination", "/tmp"}, {"type", "bind"}, {"source", shared.string()},
         {"options", {"rbind", "rw"}}}}},
      {"linux",
       {{"namespaces",
         {{{"type", "pid"}}, {{"type", "network"}}, {{"type", "ipc"}}, {{"type", "uts"}},
          {{"type", "mount"}}}},
        {"cgroupsPath", "/" + id},
        {"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
        {"maskedPaths", {"/proc/kcore", "/sys/firmware"}},
        {"readonlyPaths", {"/proc/sys"}}}}};
}

// A bundle directory holding CONFIG; its containers deleted (--force) when the test ends.
struct Bundle {
  TempDir dir{"stack-rt"};
  fs::path shared = dir / "shared";
  std::vector<std::pair<const Oci*, std::string>> made;
  Bundle() { fs::create_directories(shared); }
  ~Bundle() {
    for (auto& [rt, id] : made) (*rt)({"delete", "--force", id});
  }
  void write(const json& c) { stack::test::write_text(dir / "config.json", c.dump(1)); }
  std::string path() const { return dir.path().string(); }
};

std::string status(const Oci& rt, const std::string& id) {
  auto r = rt({"state", id});
  if (r.code != 0) return "absent";
  return json::parse(r.out).value("status", "");
}

// Polls `state` until it reads WANT (the container's own pace, bounded).
bool wait_status(const Oci& rt, const std::string& id, const std::string& want) {
  for (auto until = std::chrono::steady_clock::now() + 20s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(10ms))
    if (status(rt, id) == want) return true;
  return false;
}

// PID runs (a zombie does not: this machine's PID 1 may never reap what is reparented to it).
bool alive(int pid) {
  std::error_code ec;
  auto stat = fs::path("/proc") / std::to_string(pid) / "stat";
  if (!fs::exists(stat, ec)) return false;
  auto text = stack::test::read_text(stat);
  auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

bool cgroup_exists(const std::string& id) { return fs::exists("/sys/fs/cgroup/memory/" + id); }

// The container waits for the test's go file in the shared directory, then exits 3.
const std::vector<std::string> kWaitForGo = {
    "sh", "-c", "echo $$ > /tmp/running; while [ ! -e /tmp/go ]; do sleep 0.02; done; exit 3"};

}  // namespace

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
    auto f = rt({"delete", "--force", id});
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
  c["linux"]["resources"]["blockIO"] = {{"weight", 500}};
  b.write(c);
  b.made.emplace_back(&rt, id);
  auto log = b.dir / "log.json";
  auto r = stack::test::run({std::string(STACK_BUILD_DIR) + "/stack-runtime", "--root",
                             (roots / "stack-root").string(), "--log", log.string(),
                             "--log-format", "json", "create", "--bundle", b.path(), id});
  CHECK(r.code != 0);
  CHECK(r.err.find("linux.resources.blockIO") != std::string::npos);
  auto line = json::parse(stack::test::read_text(log));
  CHECK(line["level"] == "error");
  CHECK(line["msg"].get<std::string>().find("linux.resources.blockIO") != std::string::npos);
  CHECK(status(rt, id) == "absent");
  CHECK_FALSE(cgroup_exists(id));
}

namespace {

// podman from Debian with stack-runtime as its runtime: its own storage under DIR, the cgroupfs
// manager, and (as crun needs here) the hybrid layout's cgroup2 tree hidden in a private mount
// namespace. default_ulimits = []: this VM lacks CAP_SYS_RESOURCE for podman's default nofile.
struct Podman {
  fs::path dir;
  std::string runtime = std::string(STACK_BUILD_DIR) + "/stack-runtime";
  explicit Podman(const fs::path& d) : dir(d) {
    stack::test::write_text(dir / "containers.conf",
                            "[containers]\ndefault_ulimits = []\n"
                            "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n");
  }
  RunResult operator()(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {
        "/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
        "umount -l /sys/fs/cgroup/unified 2>/dev/null; "
        "mount -t tmpfs -o size=1m stack-rt-hide /sys/fs/cgroup/unified && "
        "CONTAINERS_CONF=\"$0/containers.conf\" exec /usr/bin/podman --root \"$0/storage\" "
        "--runroot \"$0/run\" --tmpdir \"$0/tmp\" --runtime " + runtime + " \"$@\"",
        dir.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return stack::test::run(argv);
  }
};

}  // namespace

TEST_CASE("podman runs containers with stack-runtime: run --rm, -d and stop, exec, rm -f") {
  STACK_REQUIRE_ROOT();
  if (!fs::exists("/usr/bin/podman") || !fs::exists("/usr/bin/conmon")) {
    stack::test::report_skip("podman or conmon not installed");
    return;
  }
  TempDir dir("stack-rt-podman");
  Podman podman(dir.path());
  std::string image = "localhost/stack-rt-bb-" + std::to_string(getpid()) + ":latest";
  // The image: the BusyBox fixture, imported.
  auto tar = dir / "bb.tar";
  REQUIRE(stack::test::run({"/bin/tar", "-C", stack::test::busybox_rootfs().string(), "-cf",
                            tar.string(), "."})
              .code == 0);
  auto imp = podman({"import", tar.string(), image});
  REQUIRE_MESSAGE(imp.code == 0, imp.err);
  std::string name = "stack-rt-" + std::to_string(getpid());
  struct Cleanup {
    const Podman& p;
    std::string name;
    // conmon's cgroups, made by podman's cgroupfs manager in each hierarchy: removed when this
    // test made them, once the last conmon has left them (it exits after `rm`).
    bool made_parent = !fs::exists("/sys/fs/cgroup/memory/libpod_parent");
    ~Cleanup() {
      p({"rm", "-f", "-t", "0", name});
      if (!made_parent) return;
      for (auto until = std::chrono::steady_clock::now() + 10s;
           std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(10ms)) {
        bool left = false;
        for (const auto& h : fs::directory_iterator("/sys/fs/cgroup")) {
          auto parent = h.path() / "libpod_parent";
          ::rmdir((parent / "conmon").c_str());
          left |= ::rmdir(parent.c_str()) != 0 && errno != ENOENT;
        }
        if (!left) break;
      }
    }
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
