// Issue 10 items 3 and 4: loading is bounded and linear. A YAML alias bomb is refused before it
// expands, nesting and extends chains are bounded, files over the size limits are refused with
// their name and the limit, a deadline or a cancel flag stops a load, and large files load in
// time proportional to their size (they took minutes when lookups scanned).
#include <doctest/doctest.h>

#include <chrono>

#include "spec/loader.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::spec;
using Clock = std::chrono::steady_clock;

namespace {

struct Project {
  test::TempDir dir{"stack-spec-limits"};
  LoadOptions opts;
  Project() { opts.working_dir = dir.path(); }
  Project& file(const std::string& name, const std::string& text) {
    test::write_text(dir / name, text);
    return *this;
  }
  Result<Stack> load_yaml(const std::string& yaml) {
    file("stack.yaml", yaml);
    return load(opts);
  }
  std::string error_of(const std::string& yaml) {
    auto r = load_yaml(yaml);
    return r ? "LOADED" : r.error().message;
  }
};

const std::string kService = "services:\n  web:\n    image: busybox\n";

std::string alias_bomb(int levels, int width) {
  std::string y = "x-l0: &l0 [lol]\n";
  for (int l = 1; l <= levels; ++l) {
    y += "x-l" + std::to_string(l) + ": &l" + std::to_string(l) + " [";
    for (int i = 0; i < width; ++i) y += (i ? ", *l" : "*l") + std::to_string(l - 1);
    y += "]\n";
  }
  return y + kService;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

TEST_CASE("a YAML alias bomb is refused at once, with the alias that crossed the bound") {
  Project p;
  auto t0 = Clock::now();
  auto e = p.error_of(alias_bomb(9, 10));
  CHECK(seconds_since(t0) < 2);  // it spun for 40 s and took 3.7 GB
  CHECK(e ==
        "stack.yaml:6:27: aliases expand to more than 100000 nodes (at most 10 times the "
        "file's own, or 100000): refused as a YAML alias bomb");
}

TEST_CASE("anchors used as compose files use them still load") {
  Project p;
  std::string y =
      "x-defaults: &defaults\n  restart: always\n  environment: {A: '1', B: '2'}\n"
      "  labels: {team: x}\nservices:\n";
  for (int i = 0; i < 2000; ++i)
    y += "  s" + std::to_string(i) + ":\n    <<: *defaults\n    image: busybox\n";
  auto r = p.load_yaml(y);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->services.size() == 2000);
  CHECK(r->services.back().restart == "always");
  // Three levels of ten: a thousand copies, well within the bound.
  CHECK(p.error_of(alias_bomb(3, 10)) == "LOADED");
}

TEST_CASE("nesting deeper than the bound is refused with its position") {
  Project p;
  std::string deep = "x-deep: " + std::string(300, '[') + std::string(300, ']') + "\n" + kService;
  CHECK(p.error_of(deep) == "stack.yaml:1:208: nested more than 200 levels deep");
}

TEST_CASE("variables nested deeper than the bound are refused, at once and without a crash") {
  // 200,000 levels of ${A:-...} took 7 s (a scan per level) and then overflowed the stack.
  auto nested = [](int n) {
    std::string v;
    for (int i = 0; i < n; ++i) v += "${A:-";
    v += "x" + std::string(static_cast<size_t>(n), '}');
    return "services:\n  web:\n    image: busybox\n    environment:\n      X: \"" + v + "\"\n";
  };
  Project p;
  auto t0 = Clock::now();
  CHECK(p.error_of(nested(200'000)) == "stack.yaml:5:10: variables nested more than 32 deep");
  CHECK(seconds_since(t0) < 2);
  auto r = p.load_yaml(nested(32));
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->services[0].environment.at("X") == "x");
}

TEST_CASE("a chain of extends longer than the bound is refused") {
  Project p;
  std::string y = "services:\n  s0:\n    image: busybox\n";
  for (int i = 1; i <= 70; ++i)
    y += "  s" + std::to_string(i) + ":\n    extends: s" + std::to_string(i - 1) + "\n";
  auto e = p.error_of(y);
  CHECK(e.find("extends: a chain of more than 64 services") != std::string::npos);
}

TEST_CASE(
    "a stack file or an env file over its size limit is refused with its name and the limit") {
  Project p;
  std::string big = kService + "# " + std::string(kMaxStackFileBytes, 'x') + "\n";
  auto e = p.error_of(big);
  CHECK(e ==
        (p.dir / "stack.yaml").string() + " is larger than the limit of 16 MiB for stack files");

  Project q;
  q.file("app.env", "A=" + std::string(kMaxEnvFileBytes, 'x') + "\n");
  e = q.error_of(kService + "    env_file: app.env\n");
  CHECK(e == "stack.yaml:4:15: services.web.env_file: " + (q.dir / "app.env").string() +
                 " is larger than the limit of 1 MiB for env files");

  Project r;
  r.file(".env", "A=" + std::string(kMaxEnvFileBytes, 'x') + "\n");
  e = r.error_of(kService);
  CHECK(e == (r.dir / ".env").string() + " is larger than the limit of 1 MiB for env files");

  Project s;
  s.opts.files = {"-"};
  s.opts.stdin_text = big;
  auto from_stdin = load(s.opts);
  REQUIRE_FALSE(from_stdin);
  CHECK(from_stdin.error().message.find("on stdin is larger than the limit of 16 MiB") !=
        std::string::npos);
}

TEST_CASE("a deadline that passed or a cancel flag stops a load") {
  Project p;
  p.opts.deadline = Clock::now() - std::chrono::seconds(1);
  auto e = p.error_of(kService);
  CHECK(e == "loading took longer than its time budget; stopped");

  Project q;
  std::atomic<bool> cancel{true};
  q.opts.cancel = &cancel;
  std::string many;
  for (int i = 0; i < 20000; ++i) many += "x-k" + std::to_string(i) + ": v\n";
  e = q.error_of(many + kService);
  CHECK(e == "stack.yaml: loading was cancelled");  // stopped while parsing
}

TEST_CASE("loading is linear: 100,000 x- keys and 60,000 services in seconds, not minutes") {
  // Measured with the quadratic lookups: 12.9 s and 8.0 s on this project's VM; linear,
  // 0.15 s and 0.6 s. The bound leaves room for a slow, shared machine.
  Project p;
  std::string keys;
  for (int i = 0; i < 100'000; ++i) keys += "x-k" + std::to_string(i) + ": v\n";
  auto t0 = Clock::now();
  auto r = p.load_yaml("name: big\n" + keys + kService);
  CHECK(r);
  CHECK(seconds_since(t0) < 30);  // quadratic took minutes; a loaded machine takes ~7 s

  std::string services = "name: big\nservices:\n";
  for (int i = 0; i < 60'000; ++i) {
    std::string n = std::to_string(i);
    services += "  s" + n + ":\n    image: busybox\n    ports: ['80']\n";
    if (i > 0) services += "    depends_on: [s" + std::to_string(i - 1) + "]\n";
  }
  t0 = Clock::now();
  r = p.load_yaml(services);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->services.size() == 60'000);
  CHECK(seconds_since(t0) < 30);  // quadratic took minutes; a loaded machine takes ~7 s
}

TEST_CASE("a clash of published ports loads, as in compose, and up refuses it naming both services") {
  Project p;
  auto stack = p.load_yaml(
      "services:\n  a:\n    image: busybox\n    ports: ['8080:80', '9000-9010:90']\n"
      "  b:\n    image: busybox\n    ports: ['9005:80', '7000:70']\n"
      "  c:\n    image: busybox\n    ports: ['8080:81', '7000:70/udp', '9010:91']\n");
  REQUIRE_MESSAGE(stack, (stack ? "" : stack.error().message));
  auto runnable = check_supported(*stack);
  REQUIRE(!runnable);
  const std::string e = runnable.error().message;
  CHECK(e ==
        "stack.yaml:7:13: services.b.ports: host port 9005/tcp is already published by "
        "service \"a\"\n"
        "stack.yaml:10:13: services.c.ports: host port 8080/tcp is already published by "
        "service \"a\"\n"
        "stack.yaml:10:39: services.c.ports: host port 9010/tcp is already published by "
        "service \"a\"");
}
