// Finding 1 and 6 of issue 9, as a host user would try them: nothing under the state root (the
// database and its WAL, image layers and the device nodes in them, containers' writable layers
// with a setuid file a container's root left there, logs) is reachable by anyone but root, and
// the API socket only by root and the group `stack`. The test's temporary parent directory is
// opened to 0755 first, as /var/lib is, so only stack's own modes protect the root.
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#include <cstring>
#include <fstream>

#include "common/scope_guard.h"
#include "e2e/stack_env.h"
#include "security/host_probe.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

bool can_open(const fs::path& p, int flags = O_RDONLY) {
  int fd = ::open(p.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool can_list(const fs::path& p) {
  DIR* d = ::opendir(p.c_str());
  if (d == nullptr) return false;
  ::closedir(d);
  return true;
}

fs::path only_entry(const fs::path& dir, const std::string& containing = "") {
  for (const auto& e : fs::directory_iterator(dir))
    if (containing.empty() || fs::exists(e.path() / containing)) return e.path();
  return {};
}

// An image whose only layer holds world-usable device nodes: the host's root disk (block) and
// /dev/null (char; some kernels refuse block nodes outside /dev, every one opens this). Inside a
// container they are as harmless as the device cgroup makes them; on the host the first is the
// raw disk for anyone who can reach it.
void import_device_image(StackEnv& env) {
  TempDir dir("stack-sec-devimg");
  struct stat root_st {};
  REQUIRE(::stat("/", &root_st) == 0);
  fs::create_directories(dir / "rootfs/dev");
  REQUIRE(::mknod((dir / "rootfs/dev/disk").c_str(), S_IFBLK | 0666, root_st.st_dev) == 0);
  REQUIRE(::mknod((dir / "rootfs/dev/null0").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  ::chmod((dir / "rootfs/dev/disk").c_str(), 0666);
  ::chmod((dir / "rootfs/dev/null0").c_str(), 0666);
  auto tar = run(
      {"/usr/bin/tar", "-C", (dir / "rootfs").string(), "-cf", (dir / "dev.tar").string(), "."});
  REQUIRE_MESSAGE(tar.code == 0, tar.err);
  auto r = env.stack({"image", "import", "devimg:latest", (dir / "dev.tar").string()});
  REQUIRE_MESSAGE(r.code == 0, r.err);
}

}  // namespace

TEST_CASE(
    "a host user reaches nothing under the state root: state, layers, devices, setuid files, "
    "logs") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  ::chmod(env.root().parent_path().c_str(), 0755);  // as /var/lib: only stack's modes protect
  auto p = unique_project("secroot");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  a:
    image: busybox
    command: [sleep, "300"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  import_device_image(env);

  // The reproduction of issue 9: the container's root leaves a setuid copy of id(1).
  std::ifstream id_bin("/usr/bin/id", std::ios::binary);
  std::string id_bytes((std::istreambuf_iterator<char>(id_bin)), std::istreambuf_iterator<char>());
  auto ex = run({std::string(STACK_BUILD_DIR) + "/stack", "--root", env.root().string(),
                 "--run-root", (env.root().parent_path() / "run").string(), "exec", "-T", "-p", p,
                 "a", "sh", "-c", "cat >/tmp/p; chmod 4755 /tmp/p"},
                {}, id_bytes);
  REQUIRE_MESSAGE(ex.code == 0, ex.err);

  const fs::path root = env.root();
  const fs::path container = root / "containers" / (p + "-a-1");
  const fs::path setuid_file = container / "upper/tmp/p";
  REQUIRE(mode_of(setuid_file) == 04755);
  const fs::path layers = root / "images/layers";
  const fs::path busybox_layer = only_entry(layers, "bin/busybox");
  const fs::path device_layer = only_entry(layers, "dev/disk");
  REQUIRE(!busybox_layer.empty());
  REQUIRE(!device_layer.empty());
  const fs::path a_blob = only_entry(root / "images/blobs/sha256");

  CHECK_FALSE(nobody_can([&] { return can_open(root / "state.db"); }));
  CHECK_FALSE(nobody_can([&] { return can_open(root / "state.db-wal"); }));
  CHECK_FALSE(nobody_can([&] { return can_list(layers); }));
  CHECK_FALSE(nobody_can([&] { return can_open(busybox_layer / "bin/busybox"); }));
  CHECK_FALSE(nobody_can([&] { return can_open(a_blob); }));
  // Finding 6: device nodes in a layer.
  CHECK_FALSE(nobody_can([&] { return can_open(device_layer / "dev/disk"); }));
  CHECK_FALSE(nobody_can([&] { return can_open(device_layer / "dev/null0", O_WRONLY); }));
  // The image's /tmp is 1777: writing there would put a file into every container of it.
  CHECK_FALSE(
      nobody_can([&] { return can_open(busybox_layer / "tmp/planted", O_WRONLY | O_CREAT); }));
  CHECK_FALSE(nobody_can([&] { return can_open(container / "container.log"); }));
  CHECK_FALSE(nobody_can([&] { return can_list(container / "upper"); }));
  auto euid = nobody_exec({setuid_file.string(), "-u"});
  CHECK_MESSAGE(euid.out != "0\n", "a host user ran the container's setuid file as root");
  CHECK_MESSAGE(euid.code == 126, euid.out);  // execv failed: EACCES on the way

  // What DESIGN.md promises, as modes.
  CHECK(mode_of(root) == 0700);
  for (const char* f : {"state.db", "state.db-wal", "state.db-shm"})
    CHECK_MESSAGE(mode_of(root / f) == 0600, f);
  CHECK(mode_of(root / "containers") == 0700);
  CHECK(mode_of(root / "images") == 0700);
  CHECK(mode_of(layers) == 0700);
  CHECK(mode_of(a_blob) == 0600);
  CHECK(mode_of(container / "upper") == 0755);  // the container's "/" for its non-root users

  auto down = env.stack({"down", "-p", p});
  CHECK_MESSAGE(down.code == 0, down.err);
}

TEST_CASE("a state root left open by an older version is tightened when the daemon opens it") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  ::chmod(env.root().parent_path().c_str(), 0755);
  auto p = unique_project("secold");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  a:\n    image: busybox\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  REQUIRE(env.stack({"daemon", "stop"}).code == 0);
  const fs::path root = env.root();
  const fs::path container = root / "containers" / (p + "-a-1");
  // What the versions before this one made.
  for (const fs::path& d : {root, root / "containers", root / "images"}) ::chmod(d.c_str(), 0711);
  for (const fs::path& d :
       {container, root / "images/layers", root / "images/blobs", root / "images/blobs/sha256"})
    ::chmod(d.c_str(), 0755);
  for (const char* f : {"state.db", "state.db-wal", "state.db-shm", "images/index.json"})
    ::chmod((root / f).c_str(), 0644);
  ::chmod((container / "container.log").c_str(), 0644);
  const fs::path a_blob = only_entry(root / "images/blobs/sha256");
  ::chmod(a_blob.c_str(), 0644);

  auto ps = env.stack({"ps", "-p", p});  // starts the daemon again
  REQUIRE_MESSAGE(ps.code == 0, ps.err);
  CHECK(mode_of(root) == 0700);
  CHECK(mode_of(root / "containers") == 0700);
  CHECK(mode_of(root / "images") == 0700);
  CHECK(mode_of(container) == 0700);
  CHECK(mode_of(root / "images/layers") == 0700);
  CHECK(mode_of(root / "images/blobs/sha256") == 0700);
  CHECK(mode_of(root / "state.db") == 0600);
  CHECK(mode_of(root / "images/index.json") == 0600);
  CHECK(mode_of(container / "container.log") == 0600);
  CHECK(mode_of(a_blob) == 0600);
  CHECK(mode_of(container / "upper") == 0755);
  // Files the container's own users read through bind mounts keep their mode.
  CHECK(mode_of(container / "hosts") == 0644);

  CHECK(env.stack({"down", "-p", p}).code == 0);
}

TEST_CASE("the API socket admits root and the group stack, no other host user") {
  STACK_REQUIRE_ROOT();
  // The group the daemon gives its socket to; made for this test when the host lacks it.
  bool made_group = false;
  if (::getgrnam("stack") == nullptr) {
    auto g = run({"/usr/sbin/groupadd", "--system", "stack"});
    REQUIRE_MESSAGE(g.code == 0, g.err);
    made_group = true;
  }
  stack::ScopeGuard drop_group([&] {
    if (made_group) (void)run({"/usr/sbin/groupdel", "stack"});
  });
  struct group* grp = ::getgrnam("stack");
  REQUIRE(grp != nullptr);
  const gid_t stack_gid = grp->gr_gid;

  StackEnv env;
  ::chmod(env.root().parent_path().c_str(), 0755);
  const fs::path sock = env.root().parent_path() / "run/stack.sock";
  REQUIRE(env.stack({"image", "ls"}).code == 0);  // the daemon is up
  struct stat st {};
  REQUIRE(::stat(sock.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0660);
  CHECK(st.st_uid == 0);
  CHECK(st.st_gid == stack_gid);

  auto can_connect = [&] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  };
  CHECK_FALSE(nobody_can(can_connect));
  CHECK(nobody_can(can_connect, {stack_gid}));
  // Nothing else in the run root is readable by that group or anyone else.
  for (const auto& e : fs::directory_iterator(env.root().parent_path() / "run"))
    if (e.path() != sock)
      CHECK_FALSE_MESSAGE(nobody_can([&] { return can_open(e.path()); }, {stack_gid}),
                          e.path().string());
}
