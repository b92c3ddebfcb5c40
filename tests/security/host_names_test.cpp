// Issue 10 item 6 on the host: a name longer than the kernel allows is refused before anything
// is made (it used to fail at start with "File name too long" and make every `down` fail), and
// the longest names allowed run and come down cleanly, with docker's hostname where the
// container's name is too long to be one.
#include <doctest/doctest.h>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

TEST_CASE("a 300-character service name is refused by up, and nothing is made on the host") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("longname");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  " + std::string(300, 's') +
            ":\n    image: busybox\n    command: [sleep, '300']\n");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code == 1);
  CHECK(up.err.find("stack.yaml:3:3: service name") != std::string::npos);
  CHECK(up.err.find("is 300 bytes long, at most 63") != std::string::npos);
  CHECK(env.leftovers(p).empty());
  CHECK(fs::is_empty(env.root() / "containers"));
}

TEST_CASE("the longest names allowed run, get docker's hostname, and come down with nothing left") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  // 63 bytes each: the container is <63>-<63>-1, 129 bytes: no hostname, no DNS label.
  std::string p = unique_project("l");
  p += std::string(63 - p.size(), 'p');
  const std::string svc(63, 's');
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  " + svc + ":\n    image: busybox\n" +
            "    command: [sleep, '300']\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto host = env.stack({"exec", "-p", p, svc, "hostname"});
  REQUIRE(host.code == 0);
  CHECK(host.out.size() == 13);  // 12 hex digits and a newline
  CHECK(host.out.find_first_not_of("0123456789abcdef\n") == std::string::npos);
  auto down = env.stack({"down", "-p", p});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(env.leftovers(p).empty());
}
