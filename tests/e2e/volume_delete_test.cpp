// `down -v` of a volume of many files: the files are deleted off the daemon's event loop, so
// every other request is answered meanwhile. The proof is by events: `ps` of another project
// returns while the volume's files are still on disk. Root.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

constexpr int kDirs = 100, kFilesPerDir = 1000;

// Entries directly in DIR (0 when it is gone).
int entries(const fs::path& dir) {
  std::error_code ec;
  int n = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    n++;
  return n;
}

// Files left under ROOT/volumes, the volume's own directory or one set aside for deletion.
long files_left(const fs::path& volumes) {
  std::error_code ec;
  long n = 0;
  for (auto it = fs::recursive_directory_iterator(volumes, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    n += it->is_regular_file(ec) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("down -v deletes a large volume off the loop: ps of another project answers meanwhile") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  const auto big = unique_project("bigvol"), other = unique_project("psother");
  env.uses(big);
  env.uses(other);
  env.write(
      "name: " + other + "\nservices:\n  a:\n    image: busybox\n    command: [sleep, '300']\n",
      "other.yaml");
  REQUIRE(env.stack({"-f", "other.yaml", "up", "-d"}).code == 0);
  env.write("name: " + big +
            "\nservices:\n  a:\n    image: busybox\n    command: [sleep, '300']\n"
            "    volumes: [data:/data]\nvolumes:\n  data: {}\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  const fs::path volumes = env.root() / "volumes", vol = volumes / (big + "_data");
  REQUIRE(fs::is_directory(vol));
  for (int d = 0; d < kDirs; d++) {
    fs::path dir = vol / ("d" + std::to_string(d));
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    for (int f = 0; f < kFilesPerDir; f++) {
      int fd = ::open((dir / std::to_string(f)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      REQUIRE(fd >= 0);
      ::close(fd);
    }
  }

  std::atomic<bool> down_done{false};
  RunResult down;
  std::thread downer([&] {
    down = env.stack({"down", "-v", "-t", "0"});
    down_done = true;
  });
  // The deletion has begun once the volume's directory is no longer whole where it was
  // (moved aside, or its entries going).
  while (entries(vol) == kDirs && !down_done) std::this_thread::yield();
  auto ps = env.stack({"-p", other, "ps", "--format", "json"});
  const long left = files_left(volumes);
  const bool finished = down_done;
  downer.join();

  CHECK_MESSAGE(ps.code == 0, ps.err);
  CHECK(ps.out.find(other) != std::string::npos);
  // Answered while the delete still ran: files of the volume were still on disk.
  CHECK(left > 0);
  CHECK_FALSE(finished);
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(files_left(volumes) == 0);
  CHECK_FALSE(fs::exists(vol));
  auto ls = env.stack({"volume", "ls"});
  CHECK(ls.code == 0);
  CHECK(ls.out.find(big) == std::string::npos);
  CHECK(env.stack({"-f", "other.yaml", "down"}).code == 0);
}
