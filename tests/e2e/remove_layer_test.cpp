// Removing a container deletes its writable layer. That ran on the daemon's loop: a layer of
// many files (a build cache, node_modules) held every API request, health check and restart
// until it was gone. The directory is now renamed aside on the loop and deleted on the worker
// pool: the API answers while the files are still going. Root.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

// Files under DIR now (entries vanishing meanwhile are skipped).
size_t count_files(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied,
                                           ec),
       end;
       !ec && it != end; it.increment(ec))
    n++;
  return n;
}

}  // namespace

TEST_CASE("the API answers while a container's 10,000-file writable layer is removed") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("rmlayer");
  env.uses(p);
  env.write("name: " + p +
            "\nservices:\n  fill:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", "
            "\"mkdir /d && i=0 && while [ $$i -lt 10000 ]; do : > /d/f$$i; i=$$((i+1)); done && "
            ": > /ready && exec sleep 3600\"]\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  const fs::path containers = env.root() / "containers";
  const fs::path ready = containers / (p + "-fill-1") / "upper/ready";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(ready)) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the layer was not filled");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const size_t full = count_files(containers);
  REQUIRE(full > 10000);

  RunResult down;
  std::thread downing([&] { down = env.stack({"down"}); });
  // The removal has begun once files go; the API is asked then, and the files left counted
  // once it has answered.
  size_t now = full;
  while ((now = count_files(containers)) >= full &&
         std::chrono::steady_clock::now() < deadline + std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto version = env.api_get("/v1/version");
  const size_t left = count_files(containers);
  downing.join();
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(now < full);
  CHECK_FALSE(version.is_null());
  INFO("files when the removal was seen to start: " << now << ", after the API answered: " << left);
  CHECK(left > 0);  // it answered while the layer was being deleted, not after
  CHECK(count_files(containers) == 0);
  CHECK(env.leftovers(p).empty());
}
