// What the stack-runtime integration tests share: the runtimes under test (stack-runtime, and
// crun where installed, in a private mount namespace hiding the hybrid cgroup2 tree), bundles
// of the BusyBox fixture, state polling, podman with stack-runtime as its runtime. Test-only.
#pragma once

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

namespace stack::test::rt {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using stack::test::RunResult;
using stack::test::TempDir;



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
inline std::vector<Oci> runtimes(const fs::path& dir) {
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

inline std::string unique(const std::string& what) {
  static int n = 0;
  return "stack-rt-" + std::to_string(getpid()) + "-" + what + "-" + std::to_string(n++);
}

// A bundle running ARGS in BusyBox, with the host directory SHARED at /tmp and its own cgroup
// named like the container.
inline json config(const std::vector<std::string>& args, const fs::path& shared, const std::string& id) {
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

inline std::string status(const Oci& rt, const std::string& id) {
  auto r = rt({"state", id});
  if (r.code != 0) return "absent";
  return json::parse(r.out).value("status", "");
}

// Polls `state` until it reads WANT (the container's own pace, bounded).
inline bool wait_status(const Oci& rt, const std::string& id, const std::string& want) {
  for (auto until = std::chrono::steady_clock::now() + 20s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(10ms))
    if (status(rt, id) == want) return true;
  return false;
}

// PID runs (a zombie does not: this machine's PID 1 may never reap what is reparented to it).
inline bool alive(int pid) {
  std::error_code ec;
  auto stat = fs::path("/proc") / std::to_string(pid) / "stat";
  if (!fs::exists(stat, ec)) return false;
  auto text = stack::test::read_text(stat);
  auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

inline bool cgroup_exists(const std::string& id) { return fs::exists("/sys/fs/cgroup/memory/" + id); }

// The container waits for the test's go file in the shared directory, then exits 3.
inline const std::vector<std::string> kWaitForGo = {
    "sh", "-c", "echo $$ > /tmp/running; while [ ! -e /tmp/go ]; do sleep 0.02; done; exit 3"};


// podman from Debian with stack-runtime as its runtime: its own storage and network
// definitions under DIR, the cgroupfs manager, and (as crun needs here) the hybrid layout's
// cgroup2 tree hidden in a private mount namespace. default_ulimits = []: this VM lacks
// CAP_SYS_RESOURCE for podman's default nofile.
struct Podman {
  fs::path dir;
  std::string runtime = std::string(STACK_BUILD_DIR) + "/stack-runtime";
  explicit Podman(const fs::path& d) : dir(d) {
    fs::create_directories(dir / "networks");
    stack::test::write_text(dir / "containers.conf",
                            "[containers]\ndefault_ulimits = []\n"
                            "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
                            "[network]\nnetwork_config_dir = \"" + (dir / "networks").string() +
                            "\"\n");
  }
  // The BusyBox fixture imported as IMAGE.
  void import_busybox(const std::string& image) const {
    auto tar = dir / "bb.tar";
    REQUIRE(stack::test::run({"/bin/tar", "-C", stack::test::busybox_rootfs().string(), "-cf",
                              tar.string(), "."})
                .code == 0);
    auto imp = (*this)({"import", tar.string(), image});
    REQUIRE_MESSAGE(imp.code == 0, imp.err);
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

// conmon's cgroups, made by podman's cgroupfs manager in each hierarchy: removed when the test
// made them, once the last conmon has left them (it exits after `rm`). Declared before what
// removes the containers, so it runs after that.
struct PodmanCgroups {
  bool made_parent = !fs::exists("/sys/fs/cgroup/memory/libpod_parent");
  ~PodmanCgroups() {
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
};

}  // namespace stack::test::rt
