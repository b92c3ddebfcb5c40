// The engine's message to stack-init and its replies, attacked through the values a user
// controls (finding 2 of issue 9): a NUL in an environment value must not inject
// configuration, and no byte in an error text may be read as a second reply. Root only.
#include <doctest/doctest.h>

#include <fstream>

#include "security/engine_fixture.h"

using namespace stack;
using namespace stack::test;

namespace {

bool mounted_anywhere(const std::string& needle) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a NUL in an environment value cannot inject a bind mount of a host directory" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  // A host directory the attacker wants writable inside the container.
  TempDir host("stack-sec-inject");
  write_text(host / "marker", "host secret\n");
  auto s = f.spec("nulenv", {"sleep", "60"});
  std::string value =
      std::string("a\0bind\0", 7) + host.path().string() + std::string("\0bind_dst\0/injected", 19);
  s.process.env.push_back("X=" + value);
  auto p = f.try_start(s);
  if (p) {
    // Had it started, the variable must be whole and nothing must be mounted at /injected.
    auto mounts = f.exec(*p, s, {"cat", "/proc/mounts"});
    CHECK(mounts.out.find("/injected") == std::string::npos);
    CHECK(f.exec(*p, s, {"cat", "/injected/marker"}).code != 0);
    FAIL("the start must be refused: execve(2) cannot carry a NUL in an environment value");
  } else {
    // Decided: refused before anything is made, with the variable named and the reason.
    CHECK(p.error().message.find("environment variable X") != std::string::npos);
    CHECK(p.error().message.find("NUL") != std::string::npos);
    CHECK(!mounted_anywhere(host.path().string()));
    CHECK(!std::filesystem::exists("/sys/fs/cgroup/memory/" + s.cgroup));
  }
  CHECK(read_text(host / "marker") == "host secret\n");
}

TEST_CASE("every byte but NUL in an environment value reaches the service intact" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  std::string value;
  for (int c = 1; c < 256; c++) value.push_back(static_cast<char>(c));
  value += "\nbind\n/tmp\nbind_dst\n/x";  // the old format's keys, for good measure
  auto s = f.spec("allbytes", {"sh", "-c", "printf %s \"$V\" > /tmp/v; exec sleep 60"});
  s.process.env.push_back("V=" + value);
  auto p = f.start(s);
  auto got = f.exec(p, s, {"sh", "-c", "while [ ! -e /tmp/v ]; do sleep 0.05; done; cat /tmp/v"});
  CHECK(got.code == 0);
  CHECK(got.out == value);
  CHECK(f.exec(p, s, {"cat", "/proc/mounts"}).out.find(" /x ") == std::string::npos);
}

TEST_CASE("an error text with newlines comes back whole, never as a second reply" *
          doctest::test_suite("security")) {
  STACK_REQUIRE_ROOT();
  EngineFixture f;
  // The init reports a failed chdir with the directory's name, and a failed exec with the
  // command's: both are the user's bytes.
  auto s = f.spec("nlcwd", {"sleep", "60"});
  s.process.cwd = "/no\nS1\nR\nsuch";
  auto p = f.try_start(s);
  REQUIRE(!p);
  CHECK(p.error().message.find("chdir /no\nS1\nR\nsuch: No such file or directory") !=
        std::string::npos);

  auto s2 = f.spec("nlcmd", {"bad\nS1\ncommand"});
  auto p2 = f.try_start(s2);
  REQUIRE(!p2);
  CHECK(p2.error().message.find("exec \"bad\nS1\ncommand\": No such file or directory") !=
        std::string::npos);

  // The same through the exec helper of a running container.
  auto s3 = f.spec("nlexec", {"sleep", "60"});
  auto p3 = f.start(s3);
  auto r = f.exec(p3, s3, {"nope\nS1\nx"});
  CHECK(r.code == -1);
  CHECK(r.err.find("exec \"nope\nS1\nx\": No such file or directory") != std::string::npos);
}
