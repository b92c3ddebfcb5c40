// A container in a user namespace (issue 9: userns_mode, --userns-remap): its root is an
// unprivileged user of the host, from a subordinate range in /etc/subuid and /etc/subgid.
// Root only; each test makes its own host user and ranges, and removes them pass or fail.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "e2e/stack_env.h"
#include "security/engine_fixture.h"

using namespace stack;
using namespace stack::test;
namespace fs = std::filesystem;

namespace {

// A system user "stkns<pid>" with 65536 subordinate uids and gids far above any real ones.
class TestUser {
 public:
  TestUser() : name_("stkns" + std::to_string(::getpid() % 100000)) {
    base_ = 1500000000u + static_cast<uint32_t>(::getpid() % 10000) * 65536u;
    auto r = run({"/usr/sbin/useradd", "--system", "--no-create-home", "--shell",
                  "/usr/sbin/nologin", name_});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    for (const char* f : {"/etc/subuid", "/etc/subgid"})
      std::ofstream(f, std::ios::app) << name_ << ":" << base_ << ":65536\n";
  }
  ~TestUser() {
    for (const char* f : {"/etc/subuid", "/etc/subgid"}) {
      std::ifstream in(f);
      std::stringstream kept;
      for (std::string line; std::getline(in, line);)
        if (line.rfind(name_ + ":", 0) != 0) kept << line << "\n";
      in.close();
      std::ofstream(f, std::ios::trunc) << kept.str();
    }
    run({"/usr/sbin/userdel", name_});
  }
  const std::string& name() const { return name_; }
  uint32_t base() const { return base_; }

 private:
  std::string name_;
  uint32_t base_;
};

uint32_t owner(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 ? st.st_uid : ~0u;
}

}  // namespace

TEST_CASE("a user-namespaced container's root is a subordinate uid of the host" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  TestUser user;
  auto map = engine::subordinate_ids(user.name());
  REQUIRE_MESSAGE(map, (map ? "" : map.error().message));
  CHECK(map->uid_base == user.base());
  CHECK(map->count == 65536);

  EngineFixture f;
  TempDir data("stack-sec-userns-data");
  REQUIRE(::chown(data.path().c_str(), map->uid_base, map->gid_base) == 0);
  auto s = f.spec("userns", {"sh", "-c", "echo hello from root; exec sleep 300"});
  s.userns = *map;
  s.mounts.push_back({data.path(), "/data", false});
  auto p = f.start(s);

  // Inside: root, of a namespace that maps it to the subordinate range.
  CHECK(f.exec(p, s, {"id", "-u"}).out == "0\n");
  std::istringstream uid_map(f.exec(p, s, {"cat", "/proc/self/uid_map"}).out);
  uint64_t inside = 1, outside = 0, count = 0;
  uid_map >> inside >> outside >> count;
  CHECK(inside == 0);
  CHECK(outside == user.base());
  CHECK(count == 65536);
  // The image's files are root's inside (idmapped layers), and root may change them.
  CHECK(f.exec(p, s, {"stat", "-c", "%u:%g", "/bin/busybox"}).out == "0:0\n");
  CHECK(f.exec(p, s, {"sh", "-c", "echo extra:x:7:7::/:/bin/sh >> /etc/passwd"}).code == 0);
  CHECK(owner(s.dir / "upper/etc/passwd") == user.base());

  // On the host: the service runs as the subordinate uid, and what it makes is that uid's.
  std::ifstream children("/proc/" + std::to_string(p.pid) + "/task/" + std::to_string(p.pid) +
                         "/children");
  pid_t service = 0;
  children >> service;
  REQUIRE(service > 0);
  auto status = read_text("/proc/" + std::to_string(service) + "/status");
  CHECK(status_field(status, "Uid").rfind(std::to_string(user.base()) + "\t", 0) == 0);
  CHECK(owner("/proc/" + std::to_string(p.pid)) == user.base());  // the init too
  CHECK(f.exec(p, s, {"touch", "/data/made-inside"}).code == 0);
  CHECK(owner(data / "made-inside") == user.base());

  // Still Docker's defaults inside: the seccomp filter refuses another user namespace.
  auto nested = f.exec(p, s, {"unshare", "-U", "true"});
  CHECK(nested.code != 0);
  CHECK(nested.err.find("Operation not permitted") != std::string::npos);
  // Its own network namespace, administered by nobody on the host: lo is up.
  CHECK(f.exec(p, s, {"cat", "/sys/class/net/lo/operstate"}).out != "");
  CHECK(f.exec(p, s, {"hostname"}).out == "userns\n");

  // Logs and the exit record, written by the init as the mapped root.
  REQUIRE(f.engine().stop(p, SIGTERM, std::chrono::seconds(5)));
  auto info = f.engine().exit_info(s);
  REQUIRE(info);
  CHECK(info->code == 128 + SIGTERM);
  CHECK(read_text(s.dir / "container.log").find("hello from root") != std::string::npos);
}

TEST_CASE("without idmapped mounts, layers are copied once per mapping with shifted owners" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  TestUser user;
  auto map = engine::subordinate_ids(user.name());
  REQUIRE(map);
  EngineFixture f;
  TempDir cache("stack-sec-userns-cache");
  auto spec = [&](const std::string& name) {
    auto s = f.spec(name, {"sleep", "300"});
    s.userns = *map;
    // What a filesystem without idmapped mounts gets (auto chooses it there by itself).
    s.userns_layers = engine::ContainerSpec::LayerOwnership::kCopy;
    s.userns_layer_cache = cache.path();
    return s;
  };
  auto s1 = spec("copied1");
  auto p1 = f.start(s1);
  CHECK(f.exec(p1, s1, {"id", "-u"}).out == "0\n");
  CHECK(f.exec(p1, s1, {"stat", "-c", "%u:%g %a", "/bin/busybox"}).out == "0:0 755\n");
  CHECK(f.exec(p1, s1, {"sh", "-c", "echo extra:x:7:7::/:/bin/sh >> /etc/passwd"}).code == 0);
  // On the host: one copy for this mapping, the mapped root's; the image's own layer untouched.
  fs::path copies = cache / (std::to_string(map->uid_base) + "-" + std::to_string(map->gid_base) +
                             "-65536");
  fs::path copy = copies / busybox_rootfs().filename();
  CHECK(owner(copy / "bin/busybox") == map->uid_base);
  CHECK(owner(busybox_rootfs() / "bin/busybox") == 0);
  struct stat first {};
  REQUIRE(::stat(copy.c_str(), &first) == 0);
  // A second container of the same mapping shares it: not copied again.
  auto s2 = spec("copied2");
  auto p2 = f.start(s2);
  CHECK(f.exec(p2, s2, {"id", "-u"}).out == "0\n");
  struct stat again {};
  REQUIRE(::stat(copy.c_str(), &again) == 0);
  CHECK(again.st_ino == first.st_ino);
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(copies)) entries++;
  CHECK(entries == 1);  // no temporary copy left behind
}

TEST_CASE("subordinate ids: a missing or short range is a clear error" *
          doctest::test_suite("security")) {
  TempDir dir("stack-subids");
  write_text(dir / "subuid", "alice:100000:65536\nbob:200000:1000\n");
  write_text(dir / "subgid", "alice:300000:65536\n");
  auto a = engine::subordinate_ids("alice", dir / "subuid", dir / "subgid");
  REQUIRE(a);
  CHECK(*a == engine::IdMapping{100000, 300000, 65536});
  auto b = engine::subordinate_ids("bob", dir / "subuid", dir / "subgid");
  REQUIRE(!b);
  CHECK(b.error().message.find("no range of 65536 ids for bob") != std::string::npos);
  CHECK(!engine::subordinate_ids("carol", dir / "subuid", dir / "subgid"));
}

TEST_CASE("stack daemon --userns-remap maps every container's root, userns_mode host opts out" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  TestUser user;
  StackEnv env;
  REQUIRE(env.stack({"daemon", "stop"}).code == 0);      // the one image import started
  fs::path run_root = env.root().parent_path() / "run";  // StackEnv's --run-root
  fs::remove(run_root / "stack.sock");
  pid_t daemon = ::fork();
  if (daemon == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::string bin = std::string(STACK_BUILD_DIR) + "/stack";
    ::execl(bin.c_str(), bin.c_str(), "--root", env.root().c_str(), "--run-root", run_root.c_str(),
            "daemon", "--userns-remap", user.name().c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct Reap {  // destroyed before the StackEnv: it stops the daemon itself
    StackEnv& env;
    pid_t pid;
    ~Reap() {
      env.stack({"daemon", "stop"});
      ::waitpid(pid, nullptr, 0);
    }
  } reap{env, daemon};
  // Until it listens: any command before that would start a daemon of its own.
  for (int i = 0; i < 500 && !fs::exists(run_root / "stack.sock"); i++) ::usleep(10000);
  REQUIRE(fs::exists(run_root / "stack.sock"));

  auto p = unique_project("remap");
  env.uses(p);
  fs::create_directories(env.project_dir() / "data");
  REQUIRE(::chown((env.project_dir() / "data").c_str(), user.base(), user.base()) == 0);
  env.write("name: " + p + R"(
services:
  mapped:
    image: busybox
    command: [sleep, "300"]
    volumes: ["./data:/data"]
  unmapped:
    image: busybox
    command: [sleep, "300"]
    userns_mode: host
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto host_uid = [&](const std::string& name) {
    int pid = env.container(p, p + "-" + name + "-1")["pid"].get<int>();
    auto status = read_text("/proc/" + std::to_string(pid) + "/status");
    auto uid = status_field(status, "Uid");
    return uid.substr(0, uid.find('\t'));
  };
  CHECK(host_uid("mapped") == std::to_string(user.base()));
  CHECK(host_uid("unmapped") == "0");
  CHECK(env.stack({"exec", "mapped", "id", "-u"}).out == "0\n");
  CHECK(env.stack({"exec", "mapped", "touch", "/data/from-mapped"}).code == 0);
  CHECK(owner(env.project_dir() / "data/from-mapped") == user.base());
  auto nested = env.stack({"exec", "mapped", "unshare", "-U", "true"});
  CHECK(nested.code != 0);
  CHECK(nested.err.find("Operation not permitted") != std::string::npos);
  auto down = env.stack({"down"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("with --userns-remap the container's root owns its named and anonymous volumes" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  TestUser user;
  StackEnv env;
  REQUIRE(env.stack({"daemon", "stop"}).code == 0);      // the one image import started
  fs::path run_root = env.root().parent_path() / "run";  // StackEnv's --run-root
  fs::remove(run_root / "stack.sock");
  pid_t daemon = ::fork();
  if (daemon == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::string bin = std::string(STACK_BUILD_DIR) + "/stack";
    ::execl(bin.c_str(), bin.c_str(), "--root", env.root().c_str(), "--run-root", run_root.c_str(),
            "daemon", "--userns-remap", user.name().c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct Reap {
    StackEnv& env;
    pid_t pid;
    ~Reap() {
      env.stack({"daemon", "stop"});
      ::waitpid(pid, nullptr, 0);
    }
  } reap{env, daemon};
  for (int i = 0; i < 500 && !fs::exists(run_root / "stack.sock"); i++) ::usleep(10000);
  REQUIRE(fs::exists(run_root / "stack.sock"));

  auto p = unique_project("rmvol");
  env.uses(p);
  env.write("name: " + p + R"(
volumes:
  data: {}
services:
  mapped:
    image: busybox
    command: [sleep, "300"]
    volumes: ["data:/named", "/anon"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  // The container's root writes into both; on the host the files are the mapped root's.
  auto w = env.stack({"exec", "mapped", "sh", "-c", "touch /named/n /anon/a && stat -c %u /named"});
  CHECK_MESSAGE(w.code == 0, w.err);
  CHECK(w.out == "0\n");
  CHECK(owner(env.root() / "volumes" / (p + "_data") / "n") == user.base());
  CHECK(owner(env.root() / "volumes" / (p + "_data")) == user.base());
  CHECK(env.stack({"down", "-v"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
