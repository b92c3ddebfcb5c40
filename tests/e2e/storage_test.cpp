// Storage through the stack binary (issue 13): named volumes kept by down and gone after
// down -v, seeded from the image, tmpfs, a read-only root, /dev/shm, secrets and configs with
// their owner and mode — each proven from inside the container.
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <fstream>
#include <iterator>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The line of /proc/mounts in service SVC for TARGET.
std::string mount_line(StackEnv& env, const std::string& svc, const std::string& target) {
  auto r = env.stack({"exec", svc, "cat", "/proc/mounts"});
  size_t at = r.out.find(" " + target + " ");
  if (at == std::string::npos) return "";
  size_t start = r.out.rfind('\n', at);
  start = start == std::string::npos ? 0 : start + 1;
  return r.out.substr(start, r.out.find('\n', at) - start);
}

}  // namespace

TEST_CASE("data in a named volume survives down, up and recreation, and down -v removes it") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("vol");
  env.uses(p);
  auto file = [&](const std::string& marker) {
    env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    environment: {MARKER: )" +
              marker + R"(}
    volumes: [data:/data]
volumes:
  data: {}
)");
  };
  file("one");
  auto plan = env.stack({"plan"});
  CHECK(plan.out.find("+ volume " + p + "_data (new)") != std::string::npos);
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  REQUIRE(env.stack({"exec", "app", "sh", "-c", "echo kept > /data/f"}).code == 0);
  fs::path dir = env.root() / "volumes" / (p + "_data");
  CHECK(slurp(dir / "f") == "kept\n");
  struct stat st {};
  REQUIRE(::stat((env.root() / "volumes").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);  // no host user reaches a volume's data

  REQUIRE(env.stack({"down"}).code == 0);
  CHECK(fs::exists(dir / "f"));
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  CHECK(env.stack({"exec", "app", "cat", "/data/f"}).out == "kept\n");

  file("two");  // recreated: a new container, the same volume
  auto again = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(env.stack({"exec", "app", "sh", "-c", "echo $MARKER; cat /data/f"}).out == "two\nkept\n");

  REQUIRE(env.stack({"down", "-v"}).code == 0);
  CHECK(!fs::exists(dir));
  CHECK(env.leftovers(p).empty());
}

TEST_CASE(
    "a new volume is seeded from the image unless nocopy, and an anonymous one goes with its "
    "container") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("seed");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes:
      - etc:/etc
      - type: volume
        source: empty
        target: /bin-copy
        volume: {nocopy: true}
      - /scratch
volumes:
  etc: {}
  empty: {}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  // The image's /etc was copied into the new volume, and the container reads it there.
  CHECK(fs::exists(env.root() / "volumes" / (p + "_etc") / "passwd"));
  CHECK(env.stack({"exec", "app", "grep", "-c", "root", "/etc/passwd"}).code == 0);
  CHECK(fs::is_empty(env.root() / "volumes" / (p + "_empty")));
  CHECK(mount_line(env, "app", "/scratch") != "");
  fs::path anon = env.root() / "containers" / (p + "-app-1") / "volumes";
  CHECK(fs::exists(anon));
  REQUIRE(env.stack({"down"}).code == 0);
  CHECK(!fs::exists(anon));
  CHECK(fs::exists(env.root() / "volumes" / (p + "_etc")));
  REQUIRE(env.stack({"down", "-v"}).code == 0);
  CHECK(!fs::exists(env.root() / "volumes" / (p + "_etc")));
}

TEST_CASE("tmpfs mounts have their size and mode, the root is read-only, shm_size sizes /dev/shm") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("tmpfs");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    read_only: true
    shm_size: 8m
    tmpfs: ["/scratch:size=1m,mode=1770"]
    volumes:
      - type: tmpfs
        target: /cache
        tmpfs: {size: 2m, mode: 0700}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto scratch = mount_line(env, "app", "/scratch");
  CHECK_MESSAGE(scratch.find("size=1024k") != std::string::npos, scratch);
  CHECK_MESSAGE(scratch.find("mode=1770") != std::string::npos, scratch);
  auto cache = mount_line(env, "app", "/cache");
  CHECK_MESSAGE(cache.find("size=2048k") != std::string::npos, cache);
  CHECK_MESSAGE(cache.find("mode=700") != std::string::npos, cache);
  auto shm = mount_line(env, "app", "/dev/shm");
  CHECK_MESSAGE(shm.find("size=8192k") != std::string::npos, shm);
  auto root = mount_line(env, "app", "/");
  CHECK_MESSAGE(root.find(" ro,") != std::string::npos, root);
  auto w = env.stack({"exec", "app", "sh", "-c", "touch /x"});
  CHECK(w.code != 0);
  CHECK(w.err.find("Read-only file system") != std::string::npos);
  CHECK(env.stack({"exec", "app", "sh", "-c",
                   "touch /scratch/x /cache/x /tmp/x 2>&1; touch /scratch/x"})
            .code == 0);
  // A tmpfs holds no more than its size.
  auto full = env.stack({"exec", "app", "sh", "-c", "head -c 2097152 /dev/zero > /scratch/big"});
  CHECK(full.code != 0);
  REQUIRE(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a secret is readable only by its uid, read-only, and never in the state database") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("secret");
  env.uses(p);
  const std::string value = "s3cr3t-" + p;
  std::ofstream(env.project_dir() / "token.txt") << value;
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    secrets:
      - source: token
        uid: "1000"
        gid: "1000"
        mode: 0400
      - plain
    configs:
      - source: settings
        target: /etc/app.conf
        mode: 0440
      - greeting
secrets:
  token: {file: ./token.txt}
  plain: {environment: PLAIN_SECRET}
configs:
  settings: {content: "level=3"}
  greeting: {file: ./token.txt}
)");
  auto up = env.stack({"up", "-d"}, {"PLAIN_SECRET=from-env"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.stack({"exec", "app", "stat", "-c", "%u %g %a", "/run/secrets/token"}).out ==
        "1000 1000 400\n");
  CHECK(env.stack({"exec", "--user", "1000", "app", "cat", "/run/secrets/token"}).out == value);
  auto other = env.stack({"exec", "--user", "1001", "app", "cat", "/run/secrets/token"});
  CHECK(other.code != 0);
  CHECK(other.err.find("Permission denied") != std::string::npos);
  CHECK(env.stack({"exec", "app", "cat", "/run/secrets/plain"}).out == "from-env");
  CHECK(env.stack({"exec", "app", "cat", "/etc/app.conf"}).out == "level=3");
  CHECK(env.stack({"exec", "app", "stat", "-c", "%a", "/etc/app.conf"}).out == "440\n");
  CHECK(env.stack({"exec", "app", "cat", "/greeting"}).out == value);
  auto write = env.stack({"exec", "app", "sh", "-c", "echo x > /run/secrets/token"});
  CHECK(write.code != 0);
  CHECK(mount_line(env, "app", "/run/secrets/token").find(" ro,") != std::string::npos);
  // `stack config` names the source, never the content.
  auto config = env.stack({"config"}, {"PLAIN_SECRET=from-env"});
  CHECK(config.out.find("token.txt") != std::string::npos);
  CHECK(config.out.find(value) == std::string::npos);
  CHECK(config.out.find("from-env") == std::string::npos);
  // Neither the state database nor its WAL holds a secret's bytes.
  for (const auto& e : fs::directory_iterator(env.root()))
    if (e.path().filename().string().rfind("state.db", 0) == 0) {
      auto bytes = slurp(e.path());
      CHECK_MESSAGE(bytes.find(value) == std::string::npos, e.path());
      CHECK_MESSAGE(bytes.find("level=3") == std::string::npos, e.path());
    }

  // A changed secret recreates the container, which then reads the new content.
  std::ofstream(env.project_dir() / "token.txt") << value << "-2";
  auto plan = env.stack({"plan"}, {"PLAIN_SECRET=from-env"});
  CHECK_MESSAGE(plan.out.find("secret content") != std::string::npos, plan.out);
  REQUIRE(env.stack({"up", "-d"}, {"PLAIN_SECRET=from-env"}).code == 0);
  CHECK(env.stack({"exec", "app", "cat", "/run/secrets/token"}).out == value + "-2");
  REQUIRE(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a named volume with driver_opts: tmpfs, and a bind of a host directory") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("volopts");
  env.uses(p);
  fs::create_directories(env.project_dir() / "hostdir");
  std::ofstream(env.project_dir() / "hostdir" / "hello") << "from the host";
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes: [mem:/mem, host:/host]
volumes:
  mem:
    driver: local
    driver_opts: {type: tmpfs, device: tmpfs, o: "size=3m,mode=0750"}
  host:
    driver_opts: {type: none, o: bind, device: )" +
            (env.project_dir() / "hostdir").string() + R"(}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto mem = mount_line(env, "app", "/mem");
  CHECK_MESSAGE(mem.find("tmpfs") != std::string::npos, mem);
  CHECK_MESSAGE(mem.find("size=3072k") != std::string::npos, mem);
  CHECK(env.stack({"exec", "app", "cat", "/host/hello"}).out == "from the host");
  REQUIRE(env.stack({"down", "-v"}).code == 0);
  CHECK(env.leftovers(p).empty());                             // no mount left under the root
  CHECK(fs::exists(env.project_dir() / "hostdir" / "hello"));  // a bound directory is the user's
}

TEST_CASE("refused before anything is made: another volume driver, storage_opt, an external secret") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("volerr");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    storage_opt: {size: 1G}
    volumes: [data:/data]
    secrets: [ext]
volumes:
  data: {driver: rexray}
secrets:
  ext: {external: true}
)");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(up.err.find("volumes.data.driver rexray (only local)") != std::string::npos,
                up.err);
  CHECK_MESSAGE(up.err.find("storage_opt") != std::string::npos, up.err);
  CHECK_MESSAGE(up.err.find("secrets.ext.external") != std::string::npos, up.err);
  CHECK(!fs::exists(env.root() / "volumes" / (p + "_data")));
}

TEST_CASE("stack volume create, ls, inspect, rm and prune, and a volume in use is kept") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("volcli");
  env.uses(p);
  std::string shared = p + "-shared";
  auto made = env.stack({"volume", "create", shared, "--label", "team=a"});
  REQUIRE_MESSAGE(made.code == 0, made.err);
  CHECK(env.stack({"volume", "create", shared}).code != 0);  // exists already
  CHECK(env.stack({"volume", "create", "../escape"}).code != 0);
  CHECK(!fs::exists(env.root() / "escape"));
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes: [shared:/shared]
volumes:
  shared: {external: true, name: )" +
            shared + R"(}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto list = nlohmann::json::parse(env.stack({"volume", "ls", "--format", "json"}).out);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["name"] == shared);
  CHECK(list[0]["labels"]["team"] == "a");
  CHECK(list[0]["used_by"] == nlohmann::json::array({p + "-app-1"}));
  auto inspect = nlohmann::json::parse(env.stack({"volume", "inspect", shared}).out);
  CHECK(inspect[0]["mountpoint"] == (env.root() / "volumes" / shared).string());
  auto rm = env.stack({"volume", "rm", shared});
  CHECK(rm.code != 0);
  CHECK_MESSAGE(rm.err.find("in use by container " + p + "-app-1") != std::string::npos, rm.err);
  CHECK(env.stack({"volume", "prune"}).out.find(shared) == std::string::npos);
  // down -v leaves an external volume alone: it is not the project's.
  REQUIRE(env.stack({"down", "-v"}).code == 0);
  CHECK(fs::exists(env.root() / "volumes" / shared));
  auto pruned = env.stack({"volume", "prune", "--format", "json"});
  CHECK(nlohmann::json::parse(pruned.out)["removed"] == nlohmann::json::array({shared}));
  CHECK(!fs::exists(env.root() / "volumes" / shared));
  CHECK(env.stack({"volume", "rm", shared}).code != 0);  // gone
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("secrets live on a tmpfs, and a daemon restart that finds them gone writes them again") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("secrestart");
  env.uses(p);
  std::ofstream(env.project_dir() / "pw.txt") << "pw-" << p;
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    secrets: [pw]
secrets:
  pw: {file: ./pw.txt}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  fs::path secrets = env.run_root() / "secrets";
  CHECK(slurp("/proc/self/mounts").find(secrets.string() + " tmpfs") != std::string::npos);
  struct stat st {};
  REQUIRE(::stat((secrets / (p + "-app-1")).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  // What a reboot does to the run root, with the daemon down.
  REQUIRE(env.stack({"daemon", "stop"}).code == 0);
  REQUIRE(::umount2(secrets.c_str(), MNT_DETACH) == 0);
  fs::remove_all(secrets);
  env.start_daemon({});
  CHECK(slurp(secrets / (p + "-app-1") / "0") == "pw-" + p);
  REQUIRE(env.stack({"restart", "app"}).code == 0);
  CHECK(env.stack({"exec", "app", "cat", "/run/secrets/pw"}).out == "pw-" + p);
  REQUIRE(env.stack({"down"}).code == 0);
  CHECK(!fs::exists(secrets));
  CHECK(slurp("/proc/self/mounts").find(secrets.string()) == std::string::npos);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("bind propagation, create_host_path false, and volumes_from another service") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("bindprop");
  env.uses(p);
  fs::create_directories(env.project_dir() / "shared");
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes:
      - type: bind
        source: ./shared
        target: /shared
        bind: {propagation: rshared, selinux: z}
        consistency: cached
      - data:/data
  side:
    image: busybox
    command: [sleep, "300"]
    volumes_from: ["app:ro"]
volumes:
  data: {}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto info = env.stack({"exec", "app", "cat", "/proc/self/mountinfo"}).out;
  auto at = info.find(" /shared ");
  REQUIRE(at != std::string::npos);
  auto line = info.substr(at, info.find('\n', at) - at);
  CHECK_MESSAGE(line.find("shared:") != std::string::npos, line);
  REQUIRE(env.stack({"exec", "app", "sh", "-c", "echo hi > /data/f"}).code == 0);
  CHECK(env.stack({"exec", "side", "cat", "/data/f"}).out == "hi\n");
  auto ro = env.stack({"exec", "side", "sh", "-c", "echo x > /data/g"});
  CHECK(ro.code != 0);
  CHECK(ro.err.find("Read-only file system") != std::string::npos);
  REQUIRE(env.stack({"down", "-v"}).code == 0);

  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes:
      - type: bind
        source: ./missing
        target: /missing
        bind: {create_host_path: false}
)");
  auto missing = env.stack({"up", "-d"});
  CHECK(missing.code != 0);
  CHECK_MESSAGE(missing.err.find("does not exist (create_host_path: false)") != std::string::npos,
                missing.err);
  CHECK(!fs::exists(env.project_dir() / "missing"));
  REQUIRE(env.stack({"down", "-v"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
