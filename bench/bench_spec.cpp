// Loading and normalising a generated 500-service stack file (environment, ports, volumes,
// healthchecks, depends_on, labels, networks), median of 20 runs; then rendering it as
// `stack config` does. Prints the figures; no root needed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "spec/loader.h"

namespace {

constexpr int kServices = 500;
constexpr int kRuns = 20;

std::string generate() {
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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return (v[v.size() / 2] + v[(v.size() - 1) / 2]) / 2;
}

}  // namespace

int main() {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("stack-bench-spec-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string text = generate();
  std::ofstream(dir / "stack.yaml") << text;
  stack::spec::LoadOptions opts;
  opts.working_dir = dir;

  std::vector<double> load_ms, render_ms;
  for (int run = 0; run < kRuns; ++run) {
    auto t0 = std::chrono::steady_clock::now();
    auto stack = stack::spec::load(opts);
    auto t1 = std::chrono::steady_clock::now();
    if (!stack) {
      std::fprintf(stderr, "bench_spec: %s\n", stack.error().message.c_str());
      return 1;
    }
    std::string yaml = stack::spec::render_yaml(stack::spec::stack_json(*stack));
    auto t2 = std::chrono::steady_clock::now();
    load_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    render_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  if (std::getenv("STACK_BENCH_KEEP") != nullptr)
    std::printf("kept %s\n", (dir / "stack.yaml").c_str());
  else
    fs::remove_all(dir);
  std::printf("stack file: %d services, %zu lines, %zu KiB\n", kServices,
              static_cast<size_t>(std::count(text.begin(), text.end(), '\n')), text.size() / 1024);
  std::printf("load + normalise (median of %d): %.1f ms\n", kRuns, median(load_ms));
  std::printf("render as stack config YAML (median of %d): %.1f ms\n", kRuns, median(render_ms));
  return 0;
}
