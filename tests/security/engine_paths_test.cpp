// A malicious image cannot make stack write on the host (finding 5 of issue 9): every path
// inside the container is resolved inside its root, whatever symlinks the image holds, and the
// host-side read of the image's /etc/passwd stays inside the layer. Root only.
#include <doctest/doctest.h>
#include <unistd.h>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

// A host path no one else uses, that must never come to exist.
fs::path unique_tmp(const std::string& what) {
  return fs::path("/tmp") / ("stack-sec-" + what + "-" + std::to_string(::getpid()));
}

}  // namespace

TEST_CASE("an image's symlinks to host paths are followed inside the container, never on the host" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("evilimg");
  env.uses(p);
  fs::path hosts = unique_tmp("hosts"), hostname = unique_tmp("hostname"),
           data = unique_tmp("data"), resolv = unique_tmp("resolv");
  struct Cleanup {
    std::vector<fs::path> paths;
    ~Cleanup() {
      std::error_code ec;
      for (auto& p : paths) fs::remove_all(p, ec);
    }
  } cleanup{{hosts, hostname, data, resolv}};
  for (auto& path : cleanup.paths) REQUIRE(!fs::exists(path));

  // The image: BusyBox with hostile links.
  TempDir layer("stack-sec-evil-layer");
  REQUIRE(run({"/bin/cp", "-a", busybox_rootfs().string() + "/.", layer.path().string()}).code ==
          0);
  fs::remove(layer / "etc/hosts");
  fs::remove(layer / "etc/hostname");
  fs::remove(layer / "etc/passwd");
  fs::create_symlink(hosts, layer / "etc/hosts");
  fs::create_symlink("../../../../../../../../../.." + hostname.string(), layer / "etc/hostname");
  fs::create_symlink(resolv, layer / "etc/resolv.conf");
  fs::create_symlink(data, layer / "data");
  // /etc/passwd -> /etc/shadow: read on the host, this would be the host's shadow file. The
  // image's own shadow (in passwd format here) is the only one stack may read.
  fs::create_symlink("/etc/shadow", layer / "etc/passwd");
  write_text(layer / "etc/shadow", "root:x:0:0:root:/root:/bin/sh\nsym:x:4242:4242::/:/bin/sh\n");
  auto imp = env.stack({"image", "import", "evil:latest", layer.path().string()});
  REQUIRE_MESSAGE(imp.code == 0, imp.err);

  fs::create_directories(env.project_dir() / "vol");
  write_text(env.project_dir() / "vol/file", "from the host\n");
  std::string shadow_before = read_text("/etc/shadow");
  env.write("name: " + p + R"(
services:
  s:
    image: evil
    user: sym
    command: [sleep, "300"]
    volumes: ["./vol:/data"]
)");
  auto up = env.stack({"up", "-d"});
  // Nothing of the image's links reached the host, whether or not it started.
  CHECK(!fs::exists(fs::symlink_status(hosts)));
  CHECK(!fs::exists(fs::symlink_status(hostname)));
  CHECK(!fs::exists(fs::symlink_status(data)));
  CHECK(read_text("/etc/shadow") == shadow_before);
  REQUIRE_MESSAGE(up.code == 0, up.err);

  // Inside, the links lead to the files stack mounted, where the image pointed them.
  CHECK(env.stack({"exec", "s", "id", "-u"}).out == "4242\n");
  auto h = env.stack({"exec", "s", "cat", "/etc/hosts"});
  CHECK(h.out.find("localhost") != std::string::npos);
  CHECK(env.stack({"exec", "s", "cat", "/etc/hostname"}).out == p + "-s-1\n");
  CHECK(env.stack({"exec", "s", "cat", "/data/file"}).out == "from the host\n");
  CHECK(env.stack({"exec", "s", "cat", hosts.string()}).out == h.out);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(!fs::exists(fs::symlink_status(hosts)));
  CHECK(!fs::exists(fs::symlink_status(data)));
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("kernel filesystems are mounted inside even when the image links /proc or /dev out" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("evildirs");
  env.uses(p);
  fs::path proc = unique_tmp("proc"), dev = unique_tmp("dev"), mnt = unique_tmp("mnt");
  TempDir layer("stack-sec-evil-layer2");
  REQUIRE(run({"/bin/cp", "-a", busybox_rootfs().string() + "/.", layer.path().string()}).code ==
          0);
  fs::remove_all(layer / "proc");
  fs::remove_all(layer / "dev");
  fs::create_symlink(proc, layer / "proc");
  fs::create_symlink("../../../../../../.." + dev.string(), layer / "dev");
  fs::create_symlink(mnt, layer / "mnt");
  REQUIRE(env.stack({"image", "import", "evil2:latest", layer.path().string()}).code == 0);
  fs::create_directories(env.project_dir() / "vol");
  env.write("name: " + p + R"(
services:
  s:
    image: evil2
    command: [sleep, "300"]
    volumes: ["./vol:/mnt/sub/deeper"]
)");
  auto up = env.stack({"up", "-d"});
  CHECK(!fs::exists(fs::symlink_status(proc)));
  CHECK(!fs::exists(fs::symlink_status(dev)));
  CHECK(!fs::exists(fs::symlink_status(mnt)));
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.stack({"exec", "s", "test", "-c", "/dev/null"}).code == 0);
  CHECK(env.stack({"exec", "s", "cat", "/proc/1/comm"}).out == "stack-init\n");
  CHECK(env.stack({"exec", "s", "touch", mnt.string() + "/sub/deeper/x"}).code == 0);
  CHECK(fs::exists(env.project_dir() / "vol/x"));
  CHECK(env.stack({"down"}).code == 0);
  std::error_code ec;
  fs::remove_all(proc, ec);
  fs::remove_all(dev, ec);
  fs::remove_all(mnt, ec);
}
