// Loading stack files (no root). First the realistic case: a generated 500-service file
// (environment, ports, volumes, healthchecks, depends_on, labels, networks), loaded and rendered
// as `stack config` does, median of 20 runs. Then the scale and hostile cases of issue 10 (many
// x- keys, many services, a YAML alias bomb), each loaded once in a child process so its time
// and peak memory are its own, and cut off after 60 s. Prints the figures.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "spec/loader.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kServices = 500;
constexpr int kRuns = 20;
constexpr int kCutOffSeconds = 60;

std::string realistic() {
  std::string y = "name: bench\nx-defaults: &defaults\n  restart: unless-stopped\n"
                  "  logging: {driver: json-file, options: {max-size: 10m, max-file: \"3\"}}\n"
                  "services:\n";
  for (int i = 0; i < kServices; ++i) {
    std::string n = std::to_string(i);
    y += "  svc" + n + ":\n    <<: *defaults\n    image: registry.example.com/team/app" + n +
         ":1.2.3\n    command: [\"/app/bin/server\", \"--port\", \"8080\", \"--id\", \"" + n +
         "\"]\n    environment:\n      SERVICE_ID: \"" + n +
         "\"\n      DATABASE_URL: postgres://db:5432/app\n      LOG_LEVEL: ${LOG_LEVEL:-info}\n"
         "      FEATURE_X: \"true\"\n    ports:\n      - \"" + std::to_string(20000 + i) +
         ":8080\"\n    expose: [\"9090\"]\n    volumes:\n      - ./data/" + n +
         ":/data\n      - cache:/cache:ro\n    mem_limit: 256m\n    cpus: 0.5\n"
         "    healthcheck:\n      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", "
         "\"http://localhost:8080/health\"]\n      interval: 10s\n      timeout: 2s\n"
         "      retries: 3\n    labels:\n      com.example.team: platform\n      "
         "com.example.index: \"" + n + "\"\n    networks: [front, back]\n";
    if (i > 0) y += "    depends_on:\n      svc" + std::to_string(i - 1) +
                    ":\n        condition: service_started\n";
  }
  y += "networks:\n  front:\n  back:\n    internal: true\nvolumes:\n  cache:\n";
  return y;
}

// N extension keys at the top level, and one service.
std::string x_keys(int n) {
  std::string y = "name: bench\n";
  for (int i = 0; i < n; ++i) y += "x-k" + std::to_string(i) + ": v" + std::to_string(i) + "\n";
  return y + "services:\n  web:\n    image: busybox\n";
}

// N small services, each with an environment, an unpublished port and a dependency on the
// one before it: every per-service lookup the loader makes is exercised.
std::string services(int n) {
  std::string y = "name: bench\nservices:\n";
  for (int i = 0; i < n; ++i) {
    std::string s = std::string("s") + std::to_string(i);
    y += "  " + s + ":\n    image: busybox\n    environment: {ID: \"" + std::to_string(i) +
         "\"}\n    ports: [\"80\"]\n";
    if (i > 0) y += "    depends_on: [s" + std::to_string(i - 1) + "]\n";
  }
  return y;
}

// An override file for services(N): one more variable for each, and a label.
std::string services_override(int n) {
  std::string y = "services:\n";
  for (int i = 0; i < n; ++i)
    y += "  s" + std::to_string(i) + ":\n    environment: {MORE: \"1\"}\n    labels: {x: y}\n";
  return y;
}

// N services that extend one base service and use an unset variable each.
std::string extending(int n) {
  std::string y = "name: bench\nservices:\n  base:\n    image: busybox\n"
                  "    environment: {A: \"1\"}\n";
  for (int i = 0; i < n; ++i)
    y += "  s" + std::to_string(i) + ":\n    extends: base\n    environment: {V: \"${UNSET_" +
         std::to_string(i) + "}\"}\n";
  return y;
}

// LEVELS levels of anchors, each a list of WIDTH aliases of the one below: WIDTH^LEVELS nodes.
std::string alias_bomb(int levels, int width) {
  std::string y = "name: bench\nx-l0: &l0 [lol]\n";
  for (int l = 1; l <= levels; ++l) {
    y += "x-l" + std::to_string(l) + ": &l" + std::to_string(l) + " [";
    for (int i = 0; i < width; ++i) y += (i ? ", *l" : "*l") + std::to_string(l - 1);
    y += "]\n";
  }
  return y + "services:\n  web:\n    image: busybox\n";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return (v[v.size() / 2] + v[(v.size() - 1) / 2]) / 2;
}

struct Outcome {
  double ms = 0;
  long max_rss_kb = 0;
  std::string result;  // "loaded", the first line of the error, or "cut off after 60 s"
};

// Loads FILES of DIR in a child; its wall time, peak RSS and how it ended.
Outcome load_in_child(const fs::path& dir, const std::vector<std::string>& files) {
  int out[2];
  if (::pipe(out) != 0) return {0, 0, "pipe failed"};
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(out[0]);
    stack::spec::LoadOptions opts;
    opts.working_dir = dir;
    for (const auto& f : files) opts.files.emplace_back(f);
    auto r = stack::spec::load(opts);
    std::string msg = r ? "loaded" : r.error().message.substr(0, r.error().message.find('\n'));
    if (msg.size() > 150) {
      msg.resize(147);
      msg += "...";
    }
    ssize_t w = ::write(out[1], msg.data(), msg.size());
    (void)w;
    ::_exit(0);
  }
  ::close(out[1]);
  // The child's message arrives when it is done; a SIGALRM-free cut-off: poll its exit.
  Outcome o;
  int status = 0;
  struct rusage ru {};
  for (;;) {
    pid_t done = ::wait4(pid, &status, WNOHANG, &ru);
    if (done == pid) break;
    if (Clock::now() - t0 > std::chrono::seconds(kCutOffSeconds)) {
      ::kill(pid, SIGKILL);
      ::wait4(pid, &status, 0, &ru);
      o.result = "cut off after " + std::to_string(kCutOffSeconds) + " s";
      break;
    }
    ::usleep(2000);
  }
  o.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  o.max_rss_kb = ru.ru_maxrss;
  if (o.result.empty()) {
    char buf[256];
    ssize_t n = ::read(out[0], buf, sizeof buf);
    o.result = n > 0 ? std::string(buf, static_cast<size_t>(n))
                     : (WIFSIGNALED(status) ? std::string("killed by signal ") +
                                                  strsignal(WTERMSIG(status))
                                            : std::string("no result"));
  }
  ::close(out[0]);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  bool scale_only = argc > 1 && std::strcmp(argv[1], "--scale") == 0;
  fs::path dir = fs::temp_directory_path() / ("stack-bench-spec-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  if (!scale_only) {
    std::string text = realistic();
    std::ofstream(dir / "stack.yaml") << text;
    stack::spec::LoadOptions opts;
    opts.working_dir = dir;
    std::vector<double> load_ms, render_ms;
    for (int run = 0; run < kRuns; ++run) {
      auto t0 = Clock::now();
      auto stack = stack::spec::load(opts);
      auto t1 = Clock::now();
      if (!stack) {
        std::fprintf(stderr, "bench_spec: %s\n", stack.error().message.c_str());
        return 1;
      }
      std::string yaml = stack::spec::render_yaml(stack::spec::stack_json(*stack));
      auto t2 = Clock::now();
      load_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      render_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
    std::printf("stack file: %d services, %zu lines, %zu KiB\n", kServices,
                static_cast<size_t>(std::count(text.begin(), text.end(), '\n')),
                text.size() / 1024);
    std::printf("load + normalise (median of %d): %.1f ms\n", kRuns, median(load_ms));
    std::printf("render as stack config YAML (median of %d): %.1f ms\n", kRuns,
                median(render_ms));
  }

  using Files = std::vector<std::pair<std::string, std::string>>;  // name, content
  struct Case {
    std::string name;
    std::function<Files()> make;
  };
  auto one = [](std::string text) { return Files{{"stack.yaml", std::move(text)}}; };
  const std::vector<Case> cases = {
      {"10,000 x- keys", [&] { return one(x_keys(10'000)); }},
      {"100,000 x- keys", [&] { return one(x_keys(100'000)); }},
      {"400,000 x- keys", [&] { return one(x_keys(400'000)); }},
      {"10,000 services", [&] { return one(services(10'000)); }},
      {"100,000 services", [&] { return one(services(100'000)); }},
      {"100,000 services, 2 files",
       [&] {
         return Files{{"stack.yaml", services(100'000)},
                      {"override.yaml", services_override(100'000)}};
       }},
      {"100,000 extends, unset vars", [&] { return one(extending(100'000)); }},
      {"alias bomb, 9 levels of 10", [&] { return one(alias_bomb(9, 10)); }},
  };
  std::printf("\n%-28s %10s %10s %12s  %s\n", "case", "file KiB", "load ms", "peak RSS MiB",
              "result");
  for (const Case& c : cases) {
    Files files = c.make();
    size_t size = 0;
    std::vector<std::string> names;
    for (auto& [name, text] : files) {
      std::ofstream(dir / name, std::ios::trunc) << text;
      size += text.size();
      names.push_back(name);
      std::string().swap(text);  // the child's peak RSS is its own, not this copy
    }
    Outcome o = load_in_child(dir, names);
    std::printf("%-28s %10zu %10.0f %12.1f  %s\n", c.name.c_str(), size / 1024, o.ms,
                static_cast<double>(o.max_rss_kb) / 1024, o.result.c_str());
    std::fflush(stdout);
  }
  if (std::getenv("STACK_BENCH_KEEP") != nullptr)
    std::printf("kept %s\n", dir.c_str());
  else
    fs::remove_all(dir);
  return 0;
}
