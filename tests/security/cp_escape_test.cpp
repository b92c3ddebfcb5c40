// `stack cp` as a container's root user would attack it: symlinks planted in the container
// (`/x -> /tmp/<host dir>`, `../../../..` up and out) must not make the daemon, which runs as
// root on the host, write into or read from a host path. A naive join of the container's
// root and the path (or /proc/PID/root followed by ordinary lookups) follows them to the
// host. Root; every host object has a unique name and goes with the test.
#include <doctest/doctest.h>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

TEST_CASE("cp resolves the container's symlinks inside the container, never on the host") {
  STACK_REQUIRE_ROOT();
  TempDir target("stack-cp-target"), secret("stack-cp-secret");
  write_text(secret / "secret.txt", "host secret");
  const std::string t = target.path().string(), s = secret.path().string();
  StackEnv env;
  auto p = unique_project("cpesc");
  env.uses(p);
  // The links point at the host's directories by their host paths, absolute and relative.
  env.write("name: " + p + "\nservices:\n  app:\n    image: busybox\n"
            "    command: [sh, -c, 'ln -s " + t + " /w && ln -s ../../../../../../../.." + t +
            " /w2 && ln -s " + s + " /r && ln -s ../../../../../../../.." + s +
            " /r2 && mkdir /in && ln -s " + t + " /in/sub && touch /ready && sleep 300']\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  REQUIRE(env.wait_for(p, p + "-app-1", [&](const nlohmann::json&) {
    return env.stack({"exec", "-T", "app", "test", "-e", "/ready"}).code == 0;
  }).is_object());
  write_text(env.project_dir() / "payload.txt", "from the container's user");
  fs::create_directories(env.project_dir() / "tree/sub");
  write_text(env.project_dir() / "tree/sub/deep.txt", "deep");

  // Writes: into the link, through it, into a directory under it, and a tree whose directory
  // lands on a planted link.
  for (const char* dest : {"app:/w/", "app:/w/payload.txt", "app:/w2/payload.txt", "app:/w2/"})
    (void)env.stack({"cp", "payload.txt", dest});
  (void)env.stack({"cp", "tree/.", "app:/in"});
  CHECK_MESSAGE(fs::is_empty(target.path()), ("stack cp wrote into the host's " + t));

  // Reads: nothing of the host's secret comes out.
  for (const char* src : {"app:/r/secret.txt", "app:/r2/secret.txt", "app:/r/.", "app:/r2/."}) {
    auto out = env.stack({"cp", src, "-"});
    CHECK_MESSAGE(out.out.find("host secret") == std::string::npos, src);
  }
  // What the links name inside the container is what cp reaches: a file made there is found.
  REQUIRE(env.stack({"exec", "-T", "app", "mkdir", "-p", s}).code == 0);
  REQUIRE(env.stack({"exec", "-T", "app", "sh", "-c", "echo inside > " + s + "/secret.txt"})
              .code == 0);
  auto inside = env.stack({"cp", "app:/r2/secret.txt", "-"});
  CHECK(inside.code == 0);
  CHECK(inside.out.find("inside") != std::string::npos);
  CHECK(read_text(secret / "secret.txt") == "host secret");
}
