// `type: image` volumes through the stack binary (issue 13): an image of the store shown
// read-only at a target, or one path of it (subpath), resolved inside the image; the image kept
// from `stack image rm` while mounted; nothing left after down. Root.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

std::string host_mountinfo() {
  std::ifstream in("/proc/self/mountinfo");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// An image whose /data holds a file and symlinks aiming out of it: to the root, above it
// ("../../.."), and at the host's own path of the store, which must never be reached.
const char* kDockerfile =
    "FROM busybox:latest\n"
    "RUN mkdir -p /data && echo inside > /data/f && ln -s / /data/up && "
    "ln -s ../../../../.. /data/dots\n";

}  // namespace

TEST_CASE("a type image volume is the image read-only, its subpath stays inside it, down leaves nothing") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("imgmount");
  env.uses(p);
  std::string escape_image = "local/" + p + "-esc:v1";
  fs::create_directories(env.project_dir() / "esc");
  write_text(env.project_dir() / "esc/Dockerfile", kDockerfile);
  env.write("name: " + p + R"(
services:
  maker:
    build: ./esc
    image: )" + escape_image + R"(
)");
  auto built = env.stack({"build"});
  REQUIRE_MESSAGE(built.code == 0, built.err);

  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes:
      - type: image
        source: busybox
        target: /img
      - type: image
        source: busybox
        target: /bin2
        image: {subpath: bin}
      - type: image
        source: )" + escape_image + R"(
        target: /up
        image: {subpath: data/up}
      - type: image
        source: )" + escape_image + R"(
        target: /dots
        image: {subpath: data/dots}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);

  CHECK(env.stack({"exec", "app", "ls", "/img/bin/busybox"}).code == 0);
  auto write = env.stack({"exec", "app", "sh", "-c", "echo x > /img/new"});
  CHECK(write.code != 0);
  CHECK_MESSAGE(write.err.find("Read-only file system") != std::string::npos, write.err);
  CHECK(env.stack({"exec", "app", "ls", "/bin2/busybox"}).code == 0);

  // Symlinks of the image aiming at / and above it lead to the image's own root (its /data/f),
  // never the host's: the store's host path does not exist there.
  for (std::string at : {"/up", "/dots"}) {
    CHECK(env.stack({"exec", "app", "cat", at + "/data/f"}).out == "inside\n");
    CHECK(env.stack({"exec", "app", "ls", at + env.root().string()}).code != 0);
    auto w = env.stack({"exec", "app", "sh", "-c", "echo x > " + at + "/new"});
    CHECK(w.code != 0);
  }

  // Mounted, the image stays: `image rm` refuses as for a service's own image.
  auto rm = env.stack({"image", "rm", escape_image});
  CHECK(rm.code != 0);
  CHECK_MESSAGE(rm.err.find("is used by container") != std::string::npos, rm.err);

  REQUIRE(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
  CHECK(host_mountinfo().find(env.root().string()) == std::string::npos);
  auto gone = env.stack({"image", "rm", escape_image});
  CHECK_MESSAGE(gone.code == 0, gone.err);
}

TEST_CASE("a type image subpath with .. is refused before anything is made") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("imgbad");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  app:
    image: busybox
    command: [sleep, "300"]
    volumes:
      - type: image
        source: busybox
        target: /img
        image: {subpath: ../etc}
)");
  auto bad = env.stack({"up", "-d"});
  CHECK(bad.code != 0);
  CHECK_MESSAGE(bad.err.find("must be a relative path without \"..\"") != std::string::npos,
                bad.err);
  CHECK(env.leftovers(p).empty());
}
