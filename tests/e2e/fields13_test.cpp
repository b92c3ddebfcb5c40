// The last of issue 13's fields through the stack binary, each proven where a user would look:
// bind.recursive from the container's mount table (a tmpfs the test mounts under a bind
// source, unmounted pass or fail), a mount's volume.labels in `stack volume inspect`,
// aux_addresses kept from every container of a pool they help exhaust, annotations in `ps`.
#include <doctest/doctest.h>
#include <sys/mount.h>

#include <fstream>
#include <set>

#include "e2e/network_support.h"

using namespace stack::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A tmpfs mounted at DIR on the host (made here), holding a file "marker"; unmounted however
// the test ends.
struct HostTmpfs {
  fs::path dir;
  explicit HostTmpfs(fs::path d) : dir(std::move(d)) {
    fs::create_directories(dir);
    REQUIRE(::mount("stack-f13-test", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") == 0);
    std::ofstream(dir / "marker") << "below\n";
  }
  ~HostTmpfs() { ::umount2(dir.c_str(), MNT_DETACH); }
};

}  // namespace

TEST_CASE("bind.recursive: disabled leaves the mounts below out, writable keeps them writable") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("bindrec");
  env.uses(p);
  fs::create_directories(env.project_dir() / "src");
  std::ofstream(env.project_dir() / "src" / "top") << "top\n";
  HostTmpfs below(env.project_dir() / "src" / "below");
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes:
      - {type: bind, source: ./src, target: /off, bind: {recursive: disabled}}
      - {type: bind, source: ./src, target: /wr, read_only: true, bind: {recursive: writable}}
      - {type: bind, source: ./src, target: /on, read_only: true}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto mounts = env.stack({"exec", "app", "cat", "/proc/mounts"}).out;
  // disabled: the source's own mount only; the tmpfs below is not there, its directory empty.
  CHECK(env.stack({"exec", "app", "cat", "/off/top"}).out == "top\n");
  CHECK_MESSAGE(!has(mounts, " /off/below "), mounts);
  CHECK(env.stack({"exec", "app", "test", "-e", "/off/below/marker"}).code != 0);
  // writable + read_only: the top is read-only, the tmpfs below it writable.
  CHECK_MESSAGE(has(mounts, " /wr/below tmpfs rw,"), mounts);
  auto top = env.stack({"exec", "app", "touch", "/wr/new"});
  CHECK(top.code != 0);
  CHECK_MESSAGE(has(top.err, "Read-only file system"), top.err);
  REQUIRE(env.stack({"exec", "app", "sh", "-c", "echo w > /wr/below/written"}).code == 0);
  CHECK(fs::exists(below.dir / "written"));
  // enabled (the default) with read_only: read-only all the way down, as on main.
  CHECK_MESSAGE(has(mounts, " /on/below tmpfs ro,"), mounts);
  CHECK(env.stack({"exec", "app", "touch", "/on/below/x"}).code != 0);
  REQUIRE(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("volume.labels label the volume the mount makes, shown by stack volume inspect") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("vollabels");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes:
      - {type: volume, target: /scratch, volume: {labels: {purpose: scratch}}}
      - {type: volume, source: data, target: /data, volume: {labels: {backup: daily, team: m}}}
volumes:
  data:
    labels: {team: top}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto named = nlohmann::json::parse(env.stack({"volume", "inspect", p + "_data"}).out);
  CHECK(named[0]["labels"]["backup"] == "daily");
  CHECK(named[0]["labels"]["team"] == "top");  // the top-level volume's own label wins
  auto list = nlohmann::json::parse(env.stack({"volume", "ls", "--format", "json"}).out);
  std::string anon;
  for (const auto& v : list)
    if (v["anonymous"] == true && v["project"] == p) anon = v["name"];
  REQUIRE_MESSAGE(anon.size() == 64, list.dump());
  auto inspect = env.stack({"volume", "inspect", anon});
  REQUIRE_MESSAGE(inspect.code == 0, inspect.err);
  auto a = nlohmann::json::parse(inspect.out)[0];
  CHECK(a["labels"]["purpose"] == "scratch");
  CHECK(a["labels"].contains("com.docker.volume.anonymous"));
  CHECK(a["used_by"] == nlohmann::json::array({p + "-app-1"}));
  // Its data is the container's /scratch.
  REQUIRE(env.stack({"exec", "app", "sh", "-c", "echo s > /scratch/f"}).code == 0);
  CHECK(fs::exists(fs::path(a["mountpoint"].get<std::string>()) / "f"));
  auto rm = env.stack({"volume", "rm", anon});
  CHECK(rm.code != 0);
  CHECK_MESSAGE(has(rm.err, "an anonymous volume goes with its container"), rm.err);
  REQUIRE(env.stack({"down", "-v"}).code == 0);
  CHECK(env.stack({"volume", "inspect", anon}).code != 0);  // gone with its container
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("aux_addresses are never given to a container, even when the pool runs out") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("auxaddr");
  env.uses(p);
  auto before = stack_links();
  // /29: .0 the network, .1 the gateway, .7 broadcast; .2 and .5 kept: .3, .4, .6 are free.
  auto file = [&](int replicas) {
    env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    deploy: {replicas: )" + std::to_string(replicas) + R"(}
    networks: [lan]
networks:
  lan:
    ipam:
      config:
        - subnet: 10.231.13.0/29
          aux_addresses: {router: 10.231.13.2, printer: 10.231.13.5}
)");
  };
  file(3);
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::set<std::string> held;
  for (int i = 1; i <= 3; i++) {
    auto a = env.stack({"exec", "--index", std::to_string(i), "app", "ip", "-4", "-o", "addr",
                        "show", "eth0"});
    REQUIRE_MESSAGE(a.code == 0, a.err);
    auto at = a.out.find("inet ");
    REQUIRE(at != std::string::npos);
    held.insert(a.out.substr(at + 5, a.out.find('/', at) - at - 5));
  }
  CHECK(held == std::set<std::string>{"10.231.13.3", "10.231.13.4", "10.231.13.6"});
  file(4);
  auto more = env.stack({"up", "-d"});
  CHECK(more.code != 0);
  CHECK_MESSAGE(has(more.err, "no free address left in 10.231.13.0/29"), more.err);
  auto fourth = env.stack({"exec", "--index", "4", "app", "ip", "-4", "-o", "addr", "show"});
  CHECK_MESSAGE((!has(fourth.out, "10.231.13.2/") && !has(fourth.out, "10.231.13.5/")), fourth.out);
  check_clean(env, p, before);
}

TEST_CASE("an IPv6 aux address is given to no container, nor is the IPv4 address it mirrors") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("auxaddr6");
  env.uses(p);
  auto before = stack_links();
  // /29: .2 would be the first container's, and fd00:a13::2 its IPv6 image: both stay free.
  auto file = [&](const std::string& asked) {
    env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    deploy: {replicas: 2}
    networks: [lan]
)" + asked + R"(
networks:
  lan:
    enable_ipv6: true
    ipam:
      config:
        - subnet: 10.231.16.0/29
        - subnet: fd00:a13::/64
          aux_addresses: {router6: "fd00:a13::2"}
)");
  };
  file("");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::string seen;
  for (int i = 1; i <= 2; i++)
    seen += env.stack({"exec", "--index", std::to_string(i), "app", "ip", "-o", "addr", "show",
                       "eth0"}).out;
  CHECK_MESSAGE((has(seen, "inet 10.231.16.3/") && has(seen, "inet 10.231.16.4/")), seen);
  CHECK_MESSAGE((has(seen, "inet6 fd00:a13::3/") && has(seen, "inet6 fd00:a13::4/")), seen);
  CHECK_MESSAGE((!has(seen, "10.231.16.2/") && !has(seen, "fd00:a13::2/")), seen);
  // Asked for by ipv6_address, it is refused naming it.
  file(R"(  pinned:
    image: busybox
    command: [sleep, "300"]
    networks:
      lan: {ipv6_address: "fd00:a13::2"})");
  auto pinned = env.stack({"up", "-d"});
  CHECK(pinned.code != 0);
  CHECK_MESSAGE(has(pinned.err, "fd00:a13::2 is kept out of the pool (aux_addresses router6)"),
                pinned.err);
  check_clean(env, p, before);
}

TEST_CASE("an aux address outside its subnet is refused at its line before anything is made") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("auxbad");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  app: {image: busybox, command: [sleep, "300"], networks: [lan]}
networks:
  lan:
    ipam:
      config:
        - subnet: 10.231.14.0/29
          aux_addresses: {far: 10.231.15.1}
)");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(has(up.err, "stack.yaml:9:32"), up.err);
  CHECK_MESSAGE(has(up.err, "aux address far \"10.231.15.1\" is not in subnet 10.231.14.0/29"),
                up.err);
  CHECK(env.ps(p).empty());
}

TEST_CASE("annotations are shown by ps --format json, apart from the labels") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("annot");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    labels: {team: a}
    annotations: {org.example.note: hello, com.example.empty: ""}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto c = env.container(p, p + "-app-1");
  REQUIRE(!c.is_null());
  CHECK(c["annotations"]["org.example.note"] == "hello");
  CHECK(c["annotations"]["com.example.empty"] == "");
  CHECK(!c["labels"].contains("org.example.note"));
  CHECK(c["labels"]["team"] == "a");
  REQUIRE(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
