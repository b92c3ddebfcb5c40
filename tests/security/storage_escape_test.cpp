// Issue 13, storage: what a container writes into a volume (a symlink to /, or up and out)
// never makes stack mount a host path for another container through a volume subpath; and a
// secret's target with ".." stays inside the container's root.
#include <doctest/doctest.h>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

// A one-shot writer plants SYMLINK in volume `data`; the reader mounts its subpath LINK.
std::string escape_file(const std::string& project, const std::string& link) {
  return "name: " + project + R"(
services:
  writer:
    image: busybox
    command: [sh, -c, "ln -s / /data/root && ln -s ../../../../../../../../etc /data/up"]
    volumes: [data:/data]
  reader:
    image: busybox
    command: [sleep, "300"]
    depends_on: {writer: {condition: service_completed_successfully}}
    volumes:
      - type: volume
        source: data
        target: /mnt
        volume: {subpath: )" +
         link + R"(}
volumes:
  data: {}
)";
}

}  // namespace

TEST_CASE("a volume subpath that is a symlink to / stays inside the volume") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("subroot");
  env.uses(p);
  env.write(escape_file(p, "root"));
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  // /mnt is the volume itself (its own "/"), never the host's root: no /usr, no /proc there.
  auto ls = env.stack({"exec", "reader", "ls", "/mnt"});
  CHECK_MESSAGE(ls.out.find("usr") == std::string::npos, ls.out);
  CHECK_MESSAGE(ls.out.find("proc") == std::string::npos, ls.out);
  CHECK(ls.out.find("root") != std::string::npos);  // the volume's own content
  REQUIRE(env.stack({"down", "-v"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a volume subpath that climbs out with .. is resolved inside the volume") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("subup");
  env.uses(p);
  env.write(escape_file(p, "up"));
  auto up = env.stack({"up", "-d"});
  // ../../etc from the volume's root is the volume's /etc, which does not exist: the reader
  // does not start, and never sees the host's /etc.
  CHECK(up.code != 0);
  CHECK_MESSAGE(up.err.find("resolve up") != std::string::npos, up.err);
  auto cat = env.stack({"exec", "reader", "cat", "/mnt/hostname"});
  CHECK(cat.code != 0);
  // And a literal ".." in the file is refused before anything is made.
  env.write(escape_file(p, "../../etc"));
  auto bad = env.stack({"up", "-d"});
  CHECK(bad.code != 0);
  CHECK_MESSAGE(bad.err.find("must be a relative path without \"..\"") != std::string::npos,
                bad.err);
  REQUIRE(env.stack({"down", "-v"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
