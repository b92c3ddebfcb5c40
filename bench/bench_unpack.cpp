// Layer unpacking throughput (root, for owners and devices): a generated 200 MB rootfs
// (200 directories of 20 files of 50 kB, half-compressible) as a plain and as a gzip layer,
// unpacked by stack (fs::unpack_layer: contained, diff_id hashed, syncfs at the end) and by GNU
// `tar -x` of the same file (without and with a syncfs after it). Median of 5 runs each,
// MB/s of the unpacked bytes. Usage: bench_unpack [WORKDIR] (default: a temp dir, removed).
// For bench/run.sh, which interleaves the runs itself: `bench_unpack --prepare WORKDIR` writes
// WORKDIR/layer.tar.gz and prints {"bytes": N}; `bench_unpack --once stack|tar|tar-syncfs LAYER
// OUT` unpacks LAYER into an emptied OUT once and prints {"seconds": S}.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "fs/layer_unpack.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr int kRuns = 5;

int sh(const std::string& cmd) {
  int r = std::system(cmd.c_str());
  return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

// Half the bytes random, half zero: about what binaries and libraries compress to.
void generate(const fs::path& root, uint64_t& bytes) {
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  std::vector<char> buf(50'000);
  for (int d = 0; d < 200; d++) {
    fs::path dir = root / "d";
    dir += std::to_string(d);
    fs::create_directories(dir);
    for (int f = 0; f < 20; f++) {
      for (size_t i = 0; i + 8 <= buf.size(); i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t v = static_cast<uint32_t>(x);
        std::memcpy(&buf[i], &v, 4);
        std::memset(&buf[i + 4], 0, 4);
      }
      fs::path file = dir / "f";
      file += std::to_string(f);
      std::ofstream(file, std::ios::binary).write(buf.data(), static_cast<std::streamsize>(buf.size()));
      bytes += buf.size();
    }
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs WORK kRuns times into a fresh directory; the median seconds.
double measure(const fs::path& work, const std::function<bool(const fs::path&)>& run) {
  std::vector<double> times;
  for (int i = 0; i < kRuns; i++) {
    fs::path out = work / "out";
    fs::remove_all(out);
    fs::create_directories(out);
    sh("sync");
    auto t0 = Clock::now();
    if (!run(out)) {
      std::fprintf(stderr, "run failed\n");
      std::exit(1);
    }
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  fs::remove_all(work / "out");
  return median(times);
}

// One unpack of LAYER into OUT (emptied first, and everything synced before the clock starts).
int once(const std::string& how, const fs::path& layer, const fs::path& out) {
  fs::remove_all(out);
  fs::create_directories(out);
  sh("sync");
  auto t0 = Clock::now();
  bool ok = false;
  if (how == "stack") {
    auto r = stack::fs::unpack_layer(layer, out);
    if (!r) std::fprintf(stderr, "%s\n", r.error().message.c_str());
    ok = bool(r);
  } else if (how == "tar" || how == "tar-syncfs") {
    std::string cmd = "tar -xf " + layer.string() + " -C " + out.string();
    if (how == "tar-syncfs") cmd += " && sync -f " + out.string();
    ok = sh(cmd) == 0;
  } else {
    std::fprintf(stderr, "bench_unpack: --once takes stack, tar or tar-syncfs, not %s\n", how.c_str());
    return 2;
  }
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  fs::remove_all(out);
  if (!ok) return 1;
  std::printf("{\"seconds\": %.6f}\n", s);
  return 0;
}

// The layer of the table run, for --once: WORK/layer.tar.gz; prints its unpacked bytes.
int prepare(const fs::path& work) {
  uint64_t bytes = 0;
  fs::create_directories(work);
  generate(work / "rootfs", bytes);
  std::string cmd = "tar -C " + (work / "rootfs").string() + " -cf " + (work / "layer.tar").string() +
                    " . && gzip -1 -f " + (work / "layer.tar").string();
  int rc = sh(cmd);
  fs::remove_all(work / "rootfs");
  if (rc != 0) return 1;
  std::printf("{\"bytes\": %llu}\n", static_cast<unsigned long long>(bytes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--prepare") return prepare(argv[2]);
  if (argc == 5 && std::string(argv[1]) == "--once") return once(argv[2], argv[3], argv[4]);
  bool own = argc < 2;
  fs::path work = own ? fs::path("/tmp/stack-bench-unpack-") : fs::path(argv[1]);
  if (own) work += std::to_string(::getpid());
  fs::create_directories(work);
  uint64_t bytes = 0;
  generate(work / "rootfs", bytes);
  std::string tar_cmd = "tar -C ";
  tar_cmd.append((work / "rootfs").string()).append(" -cf ").append((work / "layer.tar").string());
  std::string gzip_cmd = "gzip -1 -k -f ";
  gzip_cmd.append((work / "layer.tar").string());
  if (sh(tar_cmd + " .") || sh(gzip_cmd))
    return 1;
  fs::remove_all(work / "rootfs");
  std::printf("layer: %.0f MB in %d files (tar %.0f MB, gzip %.0f MB)\n", bytes / 1e6, 4000,
              fs::file_size(work / "layer.tar") / 1e6, fs::file_size(work / "layer.tar.gz") / 1e6);
  for (const char* name : {"layer.tar", "layer.tar.gz"}) {
    fs::path blob = work / name;
    double ours = measure(work, [&](const fs::path& out) {
      auto r = stack::fs::unpack_layer(blob, out);
      if (!r) std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return bool(r);
    });
    double tar = measure(work, [&](const fs::path& out) {
      return sh("tar -xf " + blob.string() + " -C " + out.string()) == 0;
    });
    double tar_sync = measure(work, [&](const fs::path& out) {
      return sh("tar -xf " + blob.string() + " -C " + out.string() + " && sync -f " +
                out.string()) == 0;
    });
    std::printf("%-13s stack %6.0f MB/s (%.2f s) | tar -x %6.0f MB/s (%.2f s) | tar -x + syncfs "
                "%6.0f MB/s (%.2f s)\n",
                name, bytes / 1e6 / ours, ours, bytes / 1e6 / tar, tar, bytes / 1e6 / tar_sync,
                tar_sync);
  }
  if (own) fs::remove_all(work);
  return 0;
}
