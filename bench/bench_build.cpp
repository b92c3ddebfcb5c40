// Builds (root): one Dockerfile over busybox:latest (ENV, WORKDIR, COPY of 200 files, two RUNs,
// a second COPY, config steps) built by stack's engine (src/build) cold (a fresh store), warm
// (everything cached) and after one copied file changed; and, with --podman, the same context
// by `podman build` (cold: --no-cache; warm: its layer cache; in a storage root of its own). Median of 5 runs each, in ms.
// Usage: bench_build ROOTFS [--podman | --json]  (ROOTFS: a root directory or tarball with a shell and
// seq, e.g. the tests' <build>/test-fixtures/busybox). Everything it makes is under a temp dir, removed at the end.
// For bench/run.sh: --json prints each run's times ({"cold_ms": [...], "warm_ms": [...], "one_ms": [...]});
// `bench_build --context DIR BASE` writes the same context (its Dockerfile FROM BASE) for the peers.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "build/build.h"
#include "engine/container.h"
#include "fs/image_store.h"

namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;
// STACK_BENCH_RUNS overrides it (one run of a large base is enough to see its figures).
int runs() {
  const char* v = std::getenv("STACK_BENCH_RUNS");
  return v && std::atoi(v) > 0 ? std::atoi(v) : 5;
}

int sh(const std::string& cmd) {
  int r = std::system(cmd.c_str());
  return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

void write(const stdfs::path& p, const std::string& s) {
  stdfs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double time_ms(const std::function<bool()>& f) {
  auto t0 = Clock::now();
  if (!f()) throw std::runtime_error("a run failed");
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

const char* kDockerfile =
    "FROM %s\n"
    "ARG VERSION=1\n"
    "ENV APP=/srv/app\n"
    "WORKDIR /srv/app\n"
    "COPY app/ ./\n"
    "RUN for i in $(seq 1 200); do echo $i > gen$i; done\n"
    "RUN rm -f gen1 && echo built-$VERSION > built.txt\n"
    "COPY config.txt /etc/app.conf\n"
    "EXPOSE 8080\n"
    "CMD [\"httpd\", \"-f\", \"-p\", \"8080\"]\n";

}  // namespace

struct Options {
  bool podman = false;
  bool json = false;
};

int run(const stdfs::path& dir, const stdfs::path& rootfs, const Options& opt);

// The build context: 200 small files, a config file and the Dockerfile FROM BASE.
void write_context(const stdfs::path& ctx, const std::string& base) {
  std::string payload(4096, 'x');
  for (int i = 0; i < 200; i++) write(ctx / "app" / ("f" + std::to_string(i)), payload + std::to_string(i));
  write(ctx / "config.txt", "a=1\n");
  char df[1024];
  std::snprintf(df, sizeof df, kDockerfile, base.c_str());
  write(ctx / "Dockerfile", df);
}

void print_runs(const char* name, const std::vector<double>& v, const char* sep) {
  std::printf("\"%s\": [", name);
  for (size_t i = 0; i < v.size(); i++) std::printf("%s%.3f", i ? ", " : "", v[i]);
  std::printf("]%s", sep);
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--context") {
    write_context(argv[2], argv[3]);
    return 0;
  }
  if (argc < 2 || geteuid() != 0) {
    std::fprintf(stderr, "usage (root): bench_build ROOTFS [--podman | --json]\n"
                         "               bench_build --context DIR BASE_IMAGE\n");
    return 2;
  }
  stdfs::path rootfs = argv[1];
  Options opt;
  opt.podman = argc > 2 && std::string(argv[2]) == "--podman";
  opt.json = argc > 2 && std::string(argv[2]) == "--json";
  char tmpl[] = "/tmp/stack-bench-build-XXXXXX";
  stdfs::path dir = ::mkdtemp(tmpl);
  int rc = 1;
  try {
    rc = run(dir, rootfs, opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_build: %s\n", e.what());
  }
  // podman's overlay mount of its own storage, then everything.
  sh("grep -o '" + dir.string() + "[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount");
  stdfs::remove_all(dir);
  return rc;
}

int run(const stdfs::path& dir, const stdfs::path& rootfs, const Options& opt) {
  stdfs::path ctx = dir / "ctx";
  write_context(ctx, "busybox:latest");

  auto cgroups = stack::engine::detect_cgroup_driver().value();
  stack::engine::Engine eng{stdfs::path(STACK_BUILD_DIR) / "stack-init", *cgroups};
  std::string cg = "stack/bench-build-" + std::to_string(::getpid());
  stack::build::BuildRequest req;
  req.context = ctx;
  req.tags = {"bench-built:1"};
  req.network = stack::build::NetworkMode::kNone;
  auto build_in = [&](const stdfs::path& store_dir, bool& all_cached) {
    stack::fs::ImageStore store(store_dir);
    stack::build::BuildHost host{store, eng, dir / "builds", cg, {}, nullptr, nullptr};
    auto r = stack::build::build(req, host);
    if (!r) std::fprintf(stderr, "%s\n", r.error().message.c_str());
    all_cached = r && r->cached == 5;
    return static_cast<bool>(r);
  };
  std::vector<double> cold, warm, one;
  for (int i = 0; i < runs(); i++) {
    stdfs::path store_dir = dir / ("store" + std::to_string(i));
    {
      stack::fs::ImageStore store(store_dir);
      if (!store.import("busybox:latest", rootfs)) return 1;
    }
    bool cached = false;
    cold.push_back(time_ms([&] { return build_in(store_dir, cached); }));
    warm.push_back(time_ms([&] { return build_in(store_dir, cached) && cached; }));
    write(ctx / "config.txt", "a=" + std::to_string(i + 2) + "\n");
    one.push_back(time_ms([&] { return build_in(store_dir, cached); }));
    write(ctx / "config.txt", "a=1\n");
    stdfs::remove_all(store_dir);
  }
  if (opt.json) {
    std::printf("{");
    print_runs("cold_ms", cold, ", ");
    print_runs("warm_ms", warm, ", ");
    print_runs("one_ms", one, "}\n");
    return 0;
  }
  std::printf("stack build  cold %.0f ms  warm (all cached) %.0f ms  one COPY changed %.0f ms\n",
              median(cold), median(warm), median(one));

  if (opt.podman) {
    char df[1024];
    // podman's own storage under DIR: nothing of other users' images is touched.
    // crun refuses cgroup v1 hybrid hosts: runc with cgroupfs works here.
    std::string pm = "podman --runtime runc --cgroup-manager cgroupfs --root " + (dir / "podman-root").string() + " --runroot " +
                     (dir / "podman-run").string() + " ";
    std::string tag = "localhost/stack-bench-build";
    if (sh("tar -C " + rootfs.string() + " -cf " + (dir / "rootfs.tar").string() + " . && " + pm + "import -q " +
           (dir / "rootfs.tar").string() + " " + tag + "-base >/dev/null") != 0)
      return 1;
    std::snprintf(df, sizeof df, kDockerfile, (tag + "-base").c_str());
    write(ctx / "Dockerfile", df);
    std::string cmd = pm + "build -q --network none -t " + tag + " " + ctx.string() + " >/dev/null";
    std::vector<double> pcold, pwarm;
    for (int i = 0; i < runs(); i++) {
      pcold.push_back(time_ms([&] { return sh(pm + "build -q --no-cache --network none -t " + tag + " " + ctx.string() + " >/dev/null") == 0; }));
      pwarm.push_back(time_ms([&] { return sh(cmd) == 0; }));
    }
    std::printf("podman build cold %.0f ms  warm (all cached) %.0f ms\n", median(pcold), median(pwarm));
    sh(pm + "rmi -a -f >/dev/null 2>&1");
  }
  return 0;
}
