// Issue 13's audit of the Compose fields through the stack binary: a field that loads has its
// effect inside the container. bind.recursive: enabled, readonly and disabled seen from inside
// through a host directory with a tmpfs mounted below it (writable: e2e/fields13_test.cpp).
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>

#include "e2e/stack_env.h"

using namespace stack::test;

namespace {

// What `stack exec SERVICE sh -c SCRIPT` prints (stdout and stderr).
std::string sh(StackEnv& env, const std::string& service, const std::string& script) {
  auto r = env.stack({"exec", service, "sh", "-c", script});
  return r.out + r.err;
}

// A host directory with a tmpfs mounted at its sub/, holding sub/inner; unmounted and removed
// pass or fail.
struct Submounted {
  std::filesystem::path dir;
  explicit Submounted(const std::string& name) : dir("/tmp/" + name) {
    std::filesystem::create_directories(dir / "sub");
    std::ofstream(dir / "top") << "top\n";
    REQUIRE(::mount("stk-audit", (dir / "sub").c_str(), "tmpfs", 0, "size=1m") == 0);
    std::ofstream(dir / "sub" / "inner") << "inner\n";
  }
  ~Submounted() {
    ::umount2((dir / "sub").c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace

TEST_CASE("bind.recursive: the mounts below come along read-only, or stay out with disabled") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("bindrec");
  env.uses(p);
  Submounted src("stk-" + p);
  auto bind = [&](const std::string& name, const std::string& extra) {
    return "  " + name + ":\n    image: busybox\n    command: [sleep, \"300\"]\n    volumes:\n" +
           "      - type: bind\n        source: " + src.dir.string() + "\n        target: /d\n" +
           "        read_only: true\n" + extra;
  };
  env.write("name: " + p + "\nservices:\n" + bind("def", "") +
            bind("ro", "        bind: {recursive: readonly}\n") +
            bind("off", "        bind: {recursive: disabled}\n"));
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  const std::string probe =
      "cat /d/top; cat /d/sub/inner 2>/dev/null || echo no-inner; "
      "touch /d/sub/w 2>/dev/null && echo sub-rw || echo sub-ro; "
      "touch /d/w 2>/dev/null && echo top-rw || echo top-ro";
  CHECK(sh(env, "def", probe) == "top\ninner\nsub-ro\ntop-ro\n");
  CHECK(sh(env, "ro", probe) == "top\ninner\nsub-ro\ntop-ro\n");
  // disabled: the source's own mount only; below it, the empty directory the tmpfs covers.
  CHECK(sh(env, "off", probe) == "top\nno-inner\nsub-ro\ntop-ro\n");
  CHECK(env.stack({"down", "-t", "1"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
